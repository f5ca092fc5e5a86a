"""The lab's "public" PKI: a root CA, an issuing (intermediate) CA, one leaf per twin host, real signed CRLs.

Layout under ``<lab_dir>/pki/`` (CA keys persist, so a second call reuses the same CAs and host leaves):

- ``root.key``/``root.crt``, ``issuing-ca.key``/``issuing-ca.crt``, ``state.json`` (CRL number, revocations)
- ``hosts/<fqdn>.key`` (PKCS#8 PEM) and ``hosts/<fqdn>.crt`` (leaf PEM followed by the intermediate PEM, the
  chain a TLS server sends)
- ``www/<name>/<file>``: what the CRL server publishes, one folder per public name (see ``publish``).

Which leaves get which revocation pointers is a pure function of the FQDN (``leaf_profile``), so the twin and
the tests can tell without reading certificates.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

CRL_HOST = "crl.public-ca.test"
AIA_HOST = "aia.public-ca.test"
OCSP_HOST = "ocsp.public-ca.test"
PUBLIC_NAMES = (CRL_HOST, AIA_HOST, OCSP_HOST)

ROOT_CN = "Lab Public Root CA"
ISSUING_CN = "Lab Public Issuing CA"
ROOT_CRL_URL = f"http://{CRL_HOST}/root.crl"
ROOT_CERT_URL = f"http://{AIA_HOST}/root.crt"
ISSUING_CRL_URL = f"http://{CRL_HOST}/issuing-ca.crl"
ISSUING_DELTA_CRL_URL = f"http://{CRL_HOST}/issuing-ca-delta.crl"
ISSUING_CERT_URL = f"http://{AIA_HOST}/issuing-ca.crt"
OCSP_URL = f"http://{OCSP_HOST}/"
# The delta CRL under the name AD CS gives it by default (<CaName><CRLNameSuffix><DeltaCRLAllowed>.crl: a '+' for a
# delta), which IIS's request filtering refuses without allowDoubleEscaping (TechNet dd379478): the same delta CRL as
# ISSUING_DELTA_CRL_URL, published under both names.
ISSUING_PLUS_DELTA_CRL_URL = f"http://{CRL_HOST}/issuing-ca+.crl"
# Windows' root certificate list (the AuthRoot CTL that root auto-update downloads; Microsoft Learn, "Configure trusted
# roots and disallowed certificates"): the lab's CRL server answers for this name through squid.
CTL_HOST = "ctldl.windowsupdate.com"
CTL_PATH = "/msdownload/update/v3/static/trustedr/en/authrootstl.cab"
CTL_URL = f"http://{CTL_HOST}{CTL_PATH}"
# The lab's stand-in for the CTL: reachability is what the lab shows, not a signed list (lab's choice).
CTL_BODY = b"MSCF lab stand-in for authrootstl.cab: not a signed certificate trust list\n"
# What an enterprise CA (AD CS) writes by default into its CDP: an ldap URL without a host, resolved by the
# client against its own domain's directory. The lab's "public" CA has no such directory object anywhere.
ISSUING_LDAP_CRL_URL = (
    "ldap:///CN=Lab%20Public%20Issuing%20CA,CN=pubca,CN=CDP,CN=Public%20Key%20Services,CN=Services,"
    "CN=Configuration,DC=public-ca,DC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint"
)

PROFILE_HTTP = "http"
PROFILE_HTTP_DELTA = "http+delta"
PROFILE_LDAP_ONLY = "ldap-only"
DEFAULT_NEXT_UPDATE = dt.timedelta(hours=1)
_BACKDATE = dt.timedelta(days=1)  # tolerate clock skew between "hosts", as real CAs do


def leaf_profile(fqdn: str) -> str:
    """Which CDP a host's leaf carries; deterministic and independent of the rest of the fleet.

    Rule, on the first DNS label:
    - contains ``ldaponly`` -> ``ldap-only``; contains ``delta`` -> ``http+delta`` (tests name such hosts);
    - ``lync*`` -> ``http``: the seed's Lync front ends carry public-CA certificates, and a public CA
      publishes its CRLs over HTTP only (never to an LDAP directory);
    - ``adfs01`` -> ``ldap-only``: an AD FS farm whose certificate comes from an internal enterprise CA that
      publishes to Active Directory only, so every lab of three hosts or more has one such finding;
    - otherwise ``sha256(fqdn.lower())`` modulo 10: 0 -> ``ldap-only`` (about 1 host in 10), 1-3 ->
      ``http+delta`` (about 3 in 10), else ``http``.
    """
    label = fqdn.split(".", 1)[0].lower()
    if "ldaponly" in label:
        return PROFILE_LDAP_ONLY
    if "delta" in label:
        return PROFILE_HTTP_DELTA
    if label.startswith("lync"):
        return PROFILE_HTTP
    if label == "adfs01":
        return PROFILE_LDAP_ONLY
    bucket = int(hashlib.sha256(fqdn.lower().encode()).hexdigest(), 16) % 10
    if bucket == 0:
        return PROFILE_LDAP_ONLY
    return PROFILE_HTTP_DELTA if bucket <= 3 else PROFILE_HTTP


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: key generation is cheap enough for a 500-host fleet; Schannel accepts ECDSA server certificates.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _cdp(*urls: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in urls]
    )


def _aia(ca_issuers: str, ocsp: str | None) -> x509.AuthorityInformationAccess:
    uri = x509.UniformResourceIdentifier
    descs = [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, uri(ca_issuers))]
    if ocsp:
        descs.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp)))
    return x509.AuthorityInformationAccess(descs)


def _ca_name(common_name: str) -> x509.Name:
    organization = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab Public CA")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), organization])


def _ca_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
    path_length: int | None,
) -> x509.CertificateBuilder:
    """A CA certificate (root or issuing) up to the extensions only an issued CA has."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


class LabCA:
    """The root and issuing CA of one lab directory (created on first use, then loaded)."""

    def __init__(self, lab_dir: Path) -> None:
        self.dir = Path(lab_dir) / "pki"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "hosts").mkdir(exist_ok=True)
        if not (self.dir / "issuing-ca.crt").exists():
            self._create()
        self.root_key = _load_key(self.dir / "root.key")
        self.root_cert = x509.load_pem_x509_certificate((self.dir / "root.crt").read_bytes())
        self.issuing_key = _load_key(self.dir / "issuing-ca.key")
        self.issuing_cert = x509.load_pem_x509_certificate((self.dir / "issuing-ca.crt").read_bytes())

    def _create(self) -> None:
        now = _utcnow()
        root_key, issuing_key = _new_key(), _new_key()
        root_name, issuing_name = _ca_name(ROOT_CN), _ca_name(ISSUING_CN)
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = _ca_certificate(root_name, root_name, root_key, now, dt.timedelta(days=3650), None).sign(
            root_key, hashes.SHA256()
        )
        issuing = (
            _ca_certificate(issuing_name, root_name, issuing_key, now, dt.timedelta(days=1825), 0)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
            .add_extension(_cdp(ROOT_CRL_URL), critical=False)
            .add_extension(_aia(ROOT_CERT_URL, None), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        for name, key, cert in (("root", root_key, root), ("issuing-ca", issuing_key, issuing)):
            _write_key(self.dir / f"{name}.key", key)
            (self.dir / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (self.dir / "state.json").write_text(json.dumps({"crl_number": 0, "revoked": []}, indent=1))

    # -- leaves ---------------------------------------------------------------------------------------------
    def leaf(self, fqdn: str) -> x509.Certificate:
        """The host's service certificate (the one its 5061 port presents), issued on first request and reused
        afterwards (key and cert on disk); EKUs as :func:`service_usages` says."""
        return self._issue(fqdn, f"{fqdn}", service_usages(fqdn))

    def machine(self, fqdn: str) -> x509.Certificate:
        """The host's machine certificate: Client Authentication only (AD CS's "Workstation Authentication"
        template), SAN the host's FQDN, beside the service certificate of a Lync-style host (:func:`has_machine`)."""
        return self._issue(fqdn, f"{fqdn}.machine", [ExtendedKeyUsageOID.CLIENT_AUTH])

    def _issue(self, fqdn: str, stem: str, usages: list[x509.ObjectIdentifier]) -> x509.Certificate:
        if not fqdn or "/" in fqdn or fqdn.startswith("."):
            raise ValueError(f"fqdns: invalid host name {fqdn!r}")
        key_path, crt_path = self.dir / "hosts" / f"{stem}.key", self.dir / "hosts" / f"{stem}.crt"
        if crt_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(crt_path.read_bytes())
            if (cert.issuer == self.issuing_cert.subject and cert.not_valid_after_utc > _utcnow()
                    and list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == usages):
                return cert
        key, now, profile = _new_key(), _utcnow(), leaf_profile(fqdn)
        if profile == PROFILE_LDAP_ONLY:
            cdp = _cdp(ISSUING_LDAP_CRL_URL)
        else:
            cdp = _cdp(ISSUING_CRL_URL)
        issuing_ski = self.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(self.issuing_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuing_ski), critical=False)
            .add_extension(cdp, critical=False)
            .add_extension(_aia(ISSUING_CERT_URL, OCSP_URL), critical=False)
        )
        if profile == PROFILE_HTTP_DELTA:
            builder = builder.add_extension(x509.FreshestCRL(list(_cdp(ISSUING_DELTA_CRL_URL))), critical=False)
        cert = builder.sign(self.issuing_key, hashes.SHA256())
        _write_key(key_path, key)
        crt_path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM) + self.issuing_cert.public_bytes(serialization.Encoding.PEM)
        )
        return cert

    # -- revocation -----------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    def revoke(self, serial: int, *, delta_only: bool = False) -> None:
        """Record a revocation; ``delta_only`` lists it only in the delta CRL (revoked since the last base)."""
        state = self._state()
        state["revoked"] = [r for r in state["revoked"] if r["serial"] != serial]
        state["revoked"].append({"serial": serial, "date": _utcnow().isoformat(), "delta_only": delta_only})
        (self.dir / "state.json").write_text(json.dumps(state, indent=1))

    def publish(self, next_update: dt.timedelta, now: dt.datetime | None = None) -> dict[str, Path]:
        """Sign fresh CRLs (new CRL number) and write them and the CA certificates into ``www/``."""
        now = now or _utcnow()
        state = self._state()
        state["crl_number"] += 1
        number = state["crl_number"]
        (self.dir / "state.json").write_text(json.dumps(state, indent=1))
        revoked = [(r["serial"], dt.datetime.fromisoformat(r["date"]), r["delta_only"]) for r in state["revoked"]]

        def crl(issuer_cert, issuer_key, entries, extra) -> bytes:
            ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            b = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(issuer_cert.subject)
                .last_update(now - dt.timedelta(minutes=1))
                .next_update(now + next_update)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            )
            for ext, critical in extra:
                b = b.add_extension(ext, critical=critical)
            for serial, date in entries:
                b = b.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(date).build()
                )
            return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

        files = {
            f"{CRL_HOST}/root.crl": crl(self.root_cert, self.root_key, [], [(x509.CRLNumber(number), False)]),
            f"{CRL_HOST}/issuing-ca.crl": crl(
                self.issuing_cert,
                self.issuing_key,
                [(s, d) for s, d, delta in revoked if not delta],
                # No Freshest CRL extension in the base CRL (AD CS would add one): CryptoAPI follows it from the
                # base CRL too, and then every leaf would need the delta, not only the http+delta ones.
                [(x509.CRLNumber(number), False)],
            ),
            f"{CRL_HOST}/issuing-ca-delta.crl": crl(
                self.issuing_cert,
                self.issuing_key,
                [(s, d) for s, d, delta in revoked if delta],
                [(x509.CRLNumber(number), False), (x509.DeltaCRLIndicator(number), True)],
            ),
            f"{AIA_HOST}/root.crt": self.root_cert.public_bytes(serialization.Encoding.DER),
            f"{CTL_HOST}{CTL_PATH}": CTL_BODY,
            f"{AIA_HOST}/issuing-ca.crt": self.issuing_cert.public_bytes(serialization.Encoding.DER),
        }
        files[f"{CRL_HOST}/issuing-ca+.crl"] = files[f"{CRL_HOST}/issuing-ca-delta.crl"]
        written = {rel: write_www(self.dir, rel, data) for rel, data in files.items()}
        (self.dir / "www" / OCSP_HOST).mkdir(parents=True, exist_ok=True)
        from tests.lab import cause_pki  # the cause catalogue's CAs publish with the lab's (they import this module)

        written.update(cause_pki.publish(self, next_update, now))
        return written


def write_www(pki_dir: Path, rel: str, data: bytes) -> Path:
    """Publish ``data`` as ``www/<rel>`` (``<name>/<path>``), atomically: the CRL server never serves half a file."""
    path = pki_dir / "www" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def has_machine(fqdn: str) -> bool:
    """Lync-style hosts (first label ``lync*``) hold a machine certificate beside their service certificate."""
    return fqdn.split(".", 1)[0].lower().startswith("lync")


def service_usages(fqdn: str) -> list[x509.ObjectIdentifier]:
    """The service certificate's EKUs: Server Authentication only on a Lync-style host (Lync Server's certificates
    need no other: Microsoft Learn, "Certificate requirements for internal servers in Lync Server 2010"; the machine
    certificate beside it is the one for Client Authentication), both elsewhere."""
    if has_machine(fqdn):
        return [ExtendedKeyUsageOID.SERVER_AUTH]
    return [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def issue_host_certificates(lab_dir: Path, fqdns: list[str]) -> dict[str, dict[str, list[dict]]]:
    """Issue (or reuse) a leaf per FQDN and return each host's LocalMachine stores in ``cert_inventory`` form.

    ``My`` holds the service certificate (with its private key) and, on a Lync-style host, the machine certificate
    after it; ``CA`` the issuing CA, ``Root`` the root. Key and chain PEM land in
    ``<lab_dir>/pki/hosts/<fqdn>.{key,crt}`` (``<fqdn>.machine.{key,crt}`` for the machine certificate). CRLs
    are published (``DEFAULT_NEXT_UPDATE``) when none exist yet.
    """
    if isinstance(fqdns, str):
        raise TypeError(f"fqdns: expected a list of host names, got the string {fqdns!r}")
    ca = LabCA(Path(lab_dir))
    if not (ca.dir / "www" / CRL_HOST / "issuing-ca.crl").exists():
        ca.publish(DEFAULT_NEXT_UPDATE)
    stores: dict[str, dict[str, list[dict]]] = {}
    for fqdn in fqdns:
        mine = [ca.leaf(fqdn)] + ([ca.machine(fqdn)] if has_machine(fqdn) else [])
        stores[fqdn] = {
            "My": [{"der_b64": _b64(cert), "has_private_key": True} for cert in mine],
            "CA": [{"der_b64": _b64(ca.issuing_cert), "has_private_key": False}],
            "Root": [{"der_b64": _b64(ca.root_cert), "has_private_key": False}],
        }
    return stores


def publish(lab_dir: Path, *, next_update: dt.timedelta, now: dt.datetime | None = None) -> dict[str, Path]:
    """(Re)write CRLs (base, delta, root) and CA certificates under ``<lab_dir>/pki/www/<public name>/``.

    Files: ``crl.public-ca.test/{root,issuing-ca,issuing-ca-delta}.crl`` (DER) and
    ``aia.public-ca.test/{root,issuing-ca}.crt`` (DER). ThisUpdate is ``now`` minus one minute; NextUpdate is
    ``now + next_update`` (use a short one to show expiry).
    """
    if next_update <= dt.timedelta(0):
        raise ValueError(f"next_update: must be positive, got {next_update!r}")
    return LabCA(Path(lab_dir)).publish(next_update, now)


def revoke_host(lab_dir: Path, fqdn: str, *, delta_only: bool = False) -> int:
    """Revoke the host's current leaf (listed at the next ``publish``); returns its serial number."""
    ca = LabCA(Path(lab_dir))
    serial = ca.leaf(fqdn).serial_number
    ca.revoke(serial, delta_only=delta_only)
    return serial
