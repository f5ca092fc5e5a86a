"""The lab's "WinRM listener CA" and one HTTPS listener certificate per twin (port 5986).

On Windows an HTTPS listener needs a certificate whose subject matches the host name; clients validate it
against a CA they trust (``ansible_winrm_ca_trust_path``, pywinrm ``ca_trust_path``, pypsrp
``cert_validation``). Each lab makes its own CA, so a test can validate for real. ECDSA P-256 keeps 500
hosts' keys cheap to generate. The certificates the twins hold in their stores (and present on 5061) are the
revocation PKI's, ``tests/lab/pki.py``: this CA publishes no CRL and is never revocation-checked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
CA_NAME = "crlfix lab WinRM listener CA"

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crlfix lab"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
    )


def _ca() -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _certificate(CA_NAME, key, _name(CA_NAME))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _leaf(ca: Issued, fqdn: str, address: str) -> Issued:
    """Subject and SAN: the host's FQDN, plus its address (clients that connect by IP validate that)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(fqdn), x509.IPAddress(ipaddress.ip_address(address))]
    builder = (
        _certificate(fqdn, key, ca[0].subject)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    return builder.sign(ca[1], hashes.SHA256()), key


def winrm_listener_certs(ca_dir: Path, hosts: list[tuple[str, str]]) -> dict[str, tuple[Path, Path]]:
    """Create ``ca_dir/ca.pem`` and one cert/key per (fqdn, address); returns fqdn → (cert, key) paths."""
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca = _ca()
    (ca_dir / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    host_dir = ca_dir / "hosts"
    host_dir.mkdir(exist_ok=True)
    out: dict[str, tuple[Path, Path]] = {}
    for fqdn, address in hosts:
        cert, key = _leaf(ca, fqdn, address)
        cert_path, key_path = host_dir / f"{fqdn}.pem", host_dir / f"{fqdn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        out[fqdn] = (cert_path, key_path)
    return out
