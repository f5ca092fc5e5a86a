"""Certificates for the lab: the "WinRM listener CA" + per-host HTTPS certificates, and a fallback store PKI.

The revocation PKI proper belongs to ``tests/lab/pki.py`` (``issue_host_certificates``); when that module is
not there, ``fallback_store_certificates`` gives each host a small self-contained Root → Issuing → host chain
so the twin's certificate stores are not empty. ECDSA P-256 keeps 500 hosts' keys cheap to generate.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crlfix lab"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _ca(
    cn: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    extensions: list[x509.ExtensionType] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    for ext in extensions or []:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _leaf(
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    fqdn: str,
    address: str | None,
    extensions: list[x509.ExtensionType] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(fqdn)]
    if address:
        names.append(x509.IPAddress(ipaddress.ip_address(address)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(fqdn))
        .issuer_name(issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    for ext in extensions or []:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer[1], hashes.SHA256()), key


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def winrm_listener_certs(ca_dir: Path, hosts: list[tuple[str, str]]) -> dict[str, tuple[Path, Path]]:
    """Create ``ca_dir/ca.pem`` and one cert/key per (fqdn, address); returns fqdn → (cert, key) paths."""
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca = _ca("crlfix lab WinRM listener CA")
    (ca_dir / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    host_dir = ca_dir / "hosts"
    host_dir.mkdir(exist_ok=True)
    out: dict[str, tuple[Path, Path]] = {}
    for fqdn, address in hosts:
        cert, key = _leaf(ca, fqdn, address)
        cert_path, key_path = host_dir / f"{fqdn}.pem", host_dir / f"{fqdn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        out[fqdn] = (cert_path, key_path)
    return out


def _der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def fallback_store_certificates(fqdns: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Root → Issuing CA → host certificate per fqdn, shaped like ``tests.lab.pki.issue_host_certificates``."""
    crl_url = "http://pki.lab.test/crl/lab-issuing.crl"
    root = _ca("crlfix lab Root CA (twin fallback)")
    issuing = _ca(
        "crlfix lab Issuing CA (twin fallback)",
        root,
        [
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier("http://pki.lab.test/crl/lab-root.crl")], None, None, None
                    )
                ]
            ),
        ],
    )
    leaf_ext = [
        x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
        ),
        x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier("http://pki.lab.test/aia/lab-issuing.crt"),
                )
            ]
        ),
    ]
    root_entry = {"der_b64": _der_b64(root[0]), "has_private_key": False}
    issuing_entry = {"der_b64": _der_b64(issuing[0]), "has_private_key": False}
    stores: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for fqdn in fqdns:
        cert = _leaf(issuing, fqdn, None, leaf_ext)[0]
        stores[fqdn] = {
            "My": [{"der_b64": _der_b64(cert), "has_private_key": True}],
            "CA": [issuing_entry],
            "Root": [root_entry],
        }
    return stores
