"""Generate the certificates and CRLs the unit tests need (never committed, built per test session).

The shapes follow what an AD CS enterprise PKI writes into its certificates
(Microsoft Learn, "Configure the CDP and AIA extensions on CA1"): an HTTP CRL
distribution point next to an ``ldap:///CN=…?certificateRevocationList?base?objectClass=cRLDistributionPoint``
one, a Freshest CRL (``<CaName>+.crl``), AIA CA Issuers and an OCSP responder.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

HTTP_CRL = "http://pki.lab.test/crl/Lab-Issuing-CA.crl"
LDAP_CRL = ("ldap:///CN=Lab-Issuing-CA,CN=PKI01,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,"
            "DC=lab,DC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint")
HTTP_DELTA = "http://pki.lab.test/crl/Lab-Issuing-CA+.crl"
OCSP = "http://ocsp.lab.test/ocsp"
ISSUING_AIA = "http://pki.lab.test/aia/Lab-Issuing-CA.crt"
ROOT_CRL = "http://pki.lab.test/crl/Lab-Root-CA.crl"
ROOT_AIA = "http://pki.lab.test/aia/Lab-Root-CA.crt"
LDAP_AIA = ("ldap:///CN=Lab-Issuing-CA,CN=AIA,CN=Public Key Services,CN=Services,CN=Configuration,DC=lab,DC=test"
            "?cACertificate?base?objectClass=certificationAuthority")
ORPHAN_CRL = "http://pki.elsewhere.test/crl/Orphan-CA.crl"


@dataclasses.dataclass(frozen=True)
class Issued:
    """A generated certificate with its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    @property
    def der_b64(self) -> str:
        return base64.b64encode(self.der).decode("ascii")

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(Encoding.PEM).decode("ascii")

    @property
    def thumbprint(self) -> str:
        return hashlib.sha1(self.der).hexdigest().upper()


def _name(cn: str, org: str = "Lab") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _dps(urls: t.Sequence[str]) -> list[x509.DistributionPoint]:
    return [x509.DistributionPoint([x509.UniformResourceIdentifier(u) for u in urls], None, None, None)] if urls else []


def make_certificate(
    cn: str,
    *,
    now: datetime.datetime,
    issuer: Issued | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    is_ca: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    crl: t.Sequence[str] = (),
    delta_crl: t.Sequence[str] = (),
    ocsp: t.Sequence[str] = (),
    ca_issuers: t.Sequence[str] = (),
    ekus: t.Sequence[x509.ObjectIdentifier] | None = None,
    bare: bool = False,
    org: str = "Lab",
) -> Issued:
    """A certificate for ``cn`` signed by ``issuer`` (self-signed when ``None``).

    ``bare`` leaves out every extension (no key identifiers either), like an old
    or hand-made certificate; chain building must then match on the name alone.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = _name(cn, org)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(days=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=365))
    )
    if not bare:
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        aki_source = issuer.key.public_key() if issuer else key.public_key()
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_source), critical=False)
        if crl:
            builder = builder.add_extension(x509.CRLDistributionPoints(_dps(crl)), critical=False)
        if delta_crl:
            builder = builder.add_extension(x509.FreshestCRL(_dps(delta_crl)), critical=False)
        access = [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u))
                  for u in ocsp]
        access += [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u))
                   for u in ca_issuers]
        if access:
            builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def make_crl(
    issuer: Issued,
    *,
    this_update: datetime.datetime,
    next_update: datetime.datetime,
    number: int | None = 1,
    delta_of: int | None = None,
    revoked_serials: t.Sequence[int] = (),
    signer: Issued | None = None,
) -> x509.CertificateRevocationList:
    """A CRL of ``issuer`` (signed by ``signer``'s key when given, to make a bad signature)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update).build())
    return builder.sign((signer or issuer).key, hashes.SHA256())


@dataclasses.dataclass
class LabPki:
    """Every certificate and CRL of the test PKI, all relative to ``now``."""

    now: datetime.datetime
    root: Issued
    issuing: Issued
    issuing_old: Issued
    leaf: Issued
    ldap_leaf: Issued
    bare_leaf: Issued
    expired_leaf: Issued
    expiring_leaf: Issued
    self_signed: Issued
    orphan_ca: Issued
    orphan_leaf: Issued
    base_crl: x509.CertificateRevocationList
    delta_crl: x509.CertificateRevocationList
    stale_crl: x509.CertificateRevocationList
    forged_crl: x509.CertificateRevocationList


def build_lab_pki(now: datetime.datetime) -> LabPki:
    day = datetime.timedelta(days=1)
    server = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    root = make_certificate("Lab Root CA", now=now, is_ca=True, not_after=now + 3650 * day)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    ca_kwargs: dict[str, t.Any] = {"crl": [ROOT_CRL], "ca_issuers": [ROOT_AIA]}
    issuing = make_certificate("Lab Issuing CA", now=now, issuer=root, key=issuing_key, is_ca=True,
                               not_after=now + 1825 * day, **ca_kwargs)
    # The same CA before renewal with the same key: same name and key identifier, expired. Chain
    # building must prefer the valid one.
    issuing_old = make_certificate("Lab Issuing CA", now=now, issuer=root, key=issuing_key, is_ca=True,
                                   not_before=now - 1000 * day, not_after=now - 10 * day, **ca_kwargs)
    leaf = make_certificate("lync.lab.test", now=now, issuer=issuing, ekus=server, crl=[HTTP_CRL, LDAP_CRL],
                            delta_crl=[HTTP_DELTA], ocsp=[OCSP], ca_issuers=[ISSUING_AIA])
    ldap_leaf = make_certificate("legacy.lab.test", now=now, issuer=issuing, ekus=server, crl=[LDAP_CRL],
                                 ca_issuers=[LDAP_AIA])
    bare_leaf = make_certificate("bare.lab.test", now=now, issuer=issuing, bare=True)
    expired_leaf = make_certificate("expired.lab.test", now=now, issuer=issuing, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH],
                                    crl=[HTTP_CRL], not_before=now - 400 * day, not_after=now - 5 * day)
    expiring_leaf = make_certificate("soon.lab.test", now=now, issuer=issuing, ekus=server, crl=[HTTP_CRL],
                                     not_after=now + 10 * day)
    self_signed = make_certificate("WMSvc-LAB01", now=now, ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    orphan_ca = make_certificate("Orphan CA", now=now, is_ca=True, org="Elsewhere")
    orphan_leaf = make_certificate("orphan.lab.test", now=now, issuer=orphan_ca, ekus=server, crl=[ORPHAN_CRL])
    base_crl = make_crl(issuing, this_update=now - day, next_update=now + 7 * day, number=7,
                        revoked_serials=[1001, 1002])
    delta_crl = make_crl(issuing, this_update=now - day, next_update=now + day, number=8, delta_of=7,
                         revoked_serials=[1003])
    stale_crl = make_crl(issuing, this_update=now - 10 * day, next_update=now - 3 * day, number=3)
    forged_crl = make_crl(issuing, this_update=now - day, next_update=now + day, number=9, signer=orphan_ca)
    return LabPki(now, root, issuing, issuing_old, leaf, ldap_leaf, bare_leaf, expired_leaf, expiring_leaf,
                  self_signed, orphan_ca, orphan_leaf, base_crl, delta_crl, stale_crl, forged_crl)


def inventory_document(
    stores: t.Mapping[str, t.Sequence[Issued | tuple[Issued, bool] | dict[str, t.Any]]],
    *,
    computer_name: str = "LAB-FE01",
    missing_stores: t.Sequence[str] = (),
    winhttp: t.Any = None,
) -> dict[str, t.Any]:
    """A ``cert_inventory`` document (docs/dev/host-scripts.md) as the host prints it.

    Entries are ``Issued`` (no private key), ``(Issued, has_private_key)``, or a raw dict for malformed input.
    """
    out: dict[str, list[dict[str, t.Any]]] = {}
    for name, entries in stores.items():
        out[name] = []
        for entry in entries:
            if isinstance(entry, dict):
                out[name].append(entry)
                continue
            issued, has_key = entry if isinstance(entry, tuple) else (entry, False)
            out[name].append({"der_b64": issued.der_b64, "has_private_key": has_key})
    return {"script": "cert_inventory", "schema": 1, "computer_name": computer_name, "stores": out,
            "missing_stores": list(missing_stores), "winhttp": winhttp}
