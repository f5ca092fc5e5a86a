"""The certificates of the cause catalogue's scenarios: issuing CAs whose publication is broken, and a host's second
certificate whose revocation pointers lead to one cause each (tests/lab/fleet/cause_scenarios.py seeds them).

Each cause CA is a sub-CA of the lab's root (``pki.LabCA``), made on first use and kept under ``<lab_dir>/pki/causes/``;
its certificate is published at ``http://aia.public-ca.test/<slug>.crt`` and its CRL at
``http://crl.public-ca.test/<slug>.crl`` as its ``crl`` mode says, every time the lab publishes (``pki.publish``):

- ``legacy-ca`` (Lab Legacy Issuing CA), for ``crl_expired_at_source``: its CRL was signed eight days before the
  publish and its NextUpdate passed a day before it; its publishing stopped (coretekservices 2014: an offline CA that
  was not republished).
- ``branch-ca`` (Lab Branch Issuing CA), for ``endpoint_missing_at_source``: its CRL is never published, so the URL
  answers 404 from everywhere (TechNet PKI blog 2011, PKIView).
- ``renewed-ca`` (Lab Renewed Issuing CA), for ``crl_rejected``: renewed with a new key, its CRL signed with that key
  and published under the old name, so its signature does not verify with the certificate's issuer (gradenegger.eu:
  CAPI2 41, the revocation information rejected).
- ``partner-ca`` (Lab Partner Issuing CA), for ``ocsp_responder_failing``: a fresh CRL, and leaves that name the lab's
  OCSP responder (``http://ocsp.public-ca.test/partner-ca``), which has no revocation configuration for this CA and
  answers ``unauthorized`` (RFC 6960 2.3, RFC 5019 2.2.3); CryptoAPI falls back to the CRL (TechNet cc770413).

The host's second certificate (:func:`cause_certificate`) is a web site's: subject and SAN ``app.<fqdn>``, Server
Authentication, private key on the host, so the audit reads it (``My``), the identities' runs build its chain, and it is
never the service's certificate (that one has the FQDN in its SAN). Three causes need no CA of their own, only such a
certificate of the lab's issuing CA: a delta CRL named with ``+`` (``delta_crl_blocked``), an ``https://`` CDP
(``https_cdp``), only ``ldap://`` CDPs (``ldap_only_cdp``). Lab's choice: the second certificate (rather than the
service's own) keeps the other hosts' handshakes with the seeded host as they were.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tests.lab import pki

STALE_AGE = dt.timedelta(days=8)  # the legacy CA's last CRL was signed this long before a publish
STALE_OVERDUE = dt.timedelta(days=1)  # ... and its NextUpdate passed this long before it
LARGE_STORE_ROOTS = 100  # roots with ~200-byte subject names: ~20 KB of trusted issuer list, over 16 KB


@dataclasses.dataclass(frozen=True)
class CauseCA:
    slug: str
    common_name: str
    crl: str  # "fresh", "stale", "missing" or "next_key"

    @property
    def crl_url(self) -> str:
        return f"http://{pki.CRL_HOST}/{self.slug}.crl"

    @property
    def cert_url(self) -> str:
        return f"http://{pki.AIA_HOST}/{self.slug}.crt"


CAUSE_CAS = {ca.slug: ca for ca in (
    CauseCA("legacy-ca", "Lab Legacy Issuing CA", "stale"),
    CauseCA("branch-ca", "Lab Branch Issuing CA", "missing"),
    CauseCA("renewed-ca", "Lab Renewed Issuing CA", "next_key"),
    CauseCA("partner-ca", "Lab Partner Issuing CA", "fresh"),
)}
# cause code -> (issuing CA slug or None for the lab's issuing CA, CDP URLs, Freshest CRL URLs, OCSP URL)
LEAVES: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...], str | None]] = {
    "crl_expired_at_source": ("legacy-ca", (CAUSE_CAS["legacy-ca"].crl_url,), (), None),
    "endpoint_missing_at_source": ("branch-ca", (CAUSE_CAS["branch-ca"].crl_url,), (), None),
    "crl_rejected": ("renewed-ca", (CAUSE_CAS["renewed-ca"].crl_url,), (), None),
    # Its own responder URL (a path of the lab's responder): host_audit asks each responder URL about one certificate.
    "ocsp_responder_failing": ("partner-ca", (CAUSE_CAS["partner-ca"].crl_url,), (), f"{pki.OCSP_URL}partner-ca"),
    "delta_crl_blocked": (None, (pki.ISSUING_CRL_URL,), (pki.ISSUING_PLUS_DELTA_CRL_URL,), None),
    "https_cdp": (None, ("https" + pki.ISSUING_CRL_URL[len("http"):],), (), None),
    "ldap_only_cdp": (None, (pki.ISSUING_LDAP_CRL_URL,), (), None),
}


def _dir(lab_dir: Path) -> Path:
    path = Path(lab_dir) / "pki" / "causes"
    (path / "hosts").mkdir(parents=True, exist_ok=True)
    return path


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    if not path.exists():
        pki._write_key(path, pki._new_key())
    return pki._load_key(path)


def ca_material(lab: pki.LabCA, ca: CauseCA) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey,
                                                      ec.EllipticCurvePrivateKey]:
    """(the CA's certificate, its key, the key its CRL is signed with): made on first use, then loaded."""
    folder = _dir(lab.dir.parent)
    key = _key(folder / f"{ca.slug}.key")
    crl_key = _key(folder / f"{ca.slug}-next.key") if ca.crl == "next_key" else key
    crt_path = folder / f"{ca.slug}.crt"
    if crt_path.exists():
        return x509.load_pem_x509_certificate(crt_path.read_bytes()), key, crl_key
    now = dt.datetime.now(dt.UTC)
    root_ski = lab.root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (pki._ca_certificate(pki._ca_name(ca.common_name), lab.root_cert.subject, key, now,
                                dt.timedelta(days=1825), 0)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
            .add_extension(pki._cdp(pki.ROOT_CRL_URL), critical=False)
            .add_extension(pki._aia(pki.ROOT_CERT_URL, None), critical=False)
            .sign(lab.root_key, hashes.SHA256()))
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, crl_key


def _crl(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, this_update: dt.datetime,
         next_update: dt.datetime) -> bytes:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateRevocationListBuilder().issuer_name(cert.subject)
            .last_update(this_update).next_update(next_update)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def publish(lab: pki.LabCA, next_update: dt.timedelta, now: dt.datetime) -> dict[str, Path]:
    """Every cause CA's certificate and CRL into ``www/`` as its mode says (the module's table)."""
    written = {}
    for ca in CAUSE_CAS.values():
        cert, _key_, crl_key = ca_material(lab, ca)
        cert_rel = f"{pki.AIA_HOST}/{ca.slug}.crt"
        written[cert_rel] = pki.write_www(lab.dir, cert_rel, cert.public_bytes(serialization.Encoding.DER))
        crl_rel = f"{pki.CRL_HOST}/{ca.slug}.crl"
        if ca.crl == "missing":
            (lab.dir / "www" / crl_rel).unlink(missing_ok=True)
            continue
        if ca.crl == "stale":
            this_update, until = now - STALE_AGE, now - STALE_OVERDUE
        else:
            this_update, until = now - dt.timedelta(minutes=1), now + next_update
        written[crl_rel] = pki.write_www(lab.dir, crl_rel, _crl(cert, crl_key, this_update, until))
    return written


def _uris(cert: x509.Certificate, cls: type) -> list[str]:
    try:
        value = cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return []
    if cls is x509.AuthorityInformationAccess:
        return [d.access_location.value for d in value
                if d.access_method == AuthorityInformationAccessOID.OCSP]
    return [n.value for point in value for n in point.full_name or []]


def _pointers(cert: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    """A second certificate's CDP, Freshest CRL and OCSP URLs: one issued for an older spec is issued again."""
    return (_uris(cert, x509.CRLDistributionPoints), _uris(cert, x509.FreshestCRL),
            _uris(cert, x509.AuthorityInformationAccess))


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def cause_certificate(lab_dir: Path, fqdn: str, cause: str) -> dict[str, list[dict]]:
    """The host's second certificate for ``cause`` (``LEAVES``) and the CA certificate its chain needs, as store
    entries ``{"My": [...], "CA": [...]}``; issued on first use, then reused."""
    if cause not in LEAVES:
        raise ValueError(f"cause: expected one of {', '.join(LEAVES)}, got {cause!r}")
    lab = pki.LabCA(Path(lab_dir))
    slug, cdp, freshest, ocsp = LEAVES[cause]
    if slug is None:
        issuer_cert, issuer_key = lab.issuing_cert, lab.issuing_key
    else:
        issuer_cert, issuer_key, _crl_key = ca_material(lab, CAUSE_CAS[slug])
    crt_path = _dir(lab_dir) / "hosts" / f"{fqdn}.{cause}.crt"
    cert = x509.load_pem_x509_certificate(crt_path.read_bytes()) if crt_path.exists() else None
    if cert is None or _pointers(cert) != (list(cdp), list(freshest), [ocsp] if ocsp else []) \
            or cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        key, now, name = pki._new_key(), dt.datetime.now(dt.UTC), f"app.{fqdn}"
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
            .add_extension(pki._cdp(*cdp), critical=False)
            .add_extension(pki._aia(f"http://{pki.AIA_HOST}/{slug or 'issuing-ca'}.crt", ocsp), critical=False)
        )
        if freshest:
            builder = builder.add_extension(x509.FreshestCRL(list(pki._cdp(*freshest))), critical=False)
        cert = builder.sign(issuer_key, hashes.SHA256())
        pki._write_key(crt_path.with_suffix(".key"), key)
        crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return {"My": [{"der_b64": _b64(cert), "has_private_key": True}],
            "CA": [{"der_b64": _b64(issuer_cert), "has_private_key": False}]}


def intermediate_as_root(lab_dir: Path) -> dict:
    """The lab's issuing CA certificate as a Root store entry: an intermediate imported into Trusted Root, the entry
    whose issuer is not its subject (uclobby 2015, Lync certificate store checks)."""
    return {"der_b64": _b64(pki.LabCA(Path(lab_dir)).issuing_cert), "has_private_key": False}


def large_root_store(lab_dir: Path) -> list[dict]:
    """``LARGE_STORE_ROOTS`` self-signed roots with long names (a store filled by a third-party root distribution;
    lab's choice of size and names), made once per lab and kept in ``pki/causes/large-root-store.json``."""
    path = _dir(lab_dir) / "large-root-store.json"
    if path.exists():
        return json.loads(path.read_text())
    entries, now = [], dt.datetime.now(dt.UTC)
    for index in range(LARGE_STORE_ROOTS):
        key = pki._new_key()
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Lab Partner Trust Services Number {index:03d} Limited"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority Operations and Policy"),
            x509.NameAttribute(NameOID.COMMON_NAME,
                               f"Lab Partner Trust Services Root Certification Authority {index:03d}"),
        ])
        cert = pki._ca_certificate(name, name, key, now, dt.timedelta(days=3650), None).sign(key, hashes.SHA256())
        entries.append({"der_b64": _b64(cert), "has_private_key": False})
    path.write_text(json.dumps(entries))
    return entries


__all__ = ["CAUSE_CAS", "LEAVES", "CauseCA", "ca_material", "cause_certificate", "intermediate_as_root",
           "large_root_store", "publish"]
