# PRIVATE to the crlfix.windows collection; may change without notice.
"""Read one X.509 certificate: identity, validity and the revocation endpoints it points to.

The endpoints are what CryptoAPI fetches over WinHTTP while it builds a chain:
CRL distribution points (HTTP and LDAP full names), Freshest CRL (delta CRL),
AIA OCSP responders and AIA CA Issuers certificates. URLs are returned exactly
as written in the certificate and in certificate order, because that is the
order Windows tries them in.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import re
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import (
    HAS_CRYPTOGRAPHY,
    require_cryptography,
)

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import AuthorityInformationAccessOID

# The attribute labels X509Certificate2.Subject / certutil print (X500DistinguishedName);
# attributes without a label show as OID.<dotted>.
_NAME_LABELS: dict[str, str] = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "S", "2.5.4.9": "STREET", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.12": "T", "2.5.4.4": "SN", "2.5.4.42": "G", "2.5.4.43": "I", "2.5.4.5": "SERIALNUMBER",
    "1.2.840.113549.1.9.1": "E", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}
_NEEDS_QUOTES = re.compile(r'[,+=";<>#\n]|^\s|\s$')
# Any PEM armour counts as PEM, so a CRL or key handed over by mistake gets "not a valid X.509 certificate".
_PEM_CERT = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----")

CertificateInput = t.Union[str, bytes, "x509.Certificate"]


class CertificateParseError(ValueError):
    """The input is not a certificate we can read; the message names the field and the value."""


@dataclasses.dataclass(frozen=True)
class RevocationEndpoints:
    """URLs of one certificate, each list in certificate order."""

    crl: tuple[str, ...] = ()
    delta_crl: tuple[str, ...] = ()
    ocsp: tuple[str, ...] = ()
    ca_issuers: tuple[str, ...] = ()

    KINDS: t.ClassVar[tuple[str, ...]] = ("crl", "delta_crl", "ocsp", "ca_issuers")

    def as_dict(self) -> dict[str, list[str]]:
        return {kind: list(getattr(self, kind)) for kind in self.KINDS}

    def is_empty(self) -> bool:
        return not any(getattr(self, kind) for kind in self.KINDS)


@dataclasses.dataclass(frozen=True)
class CertificateInfo:
    """What the collection needs to know about one certificate.

    ``subject_key``/``issuer_key`` are normalised names (case and whitespace
    folded per RFC 5280 7.1) used to match an issuer; ``subject``/``issuer`` are
    the display strings in the order Windows shows them (``CN=…, O=…, C=…``).
    """

    subject: str
    issuer: str
    subject_key: tuple[tuple[tuple[str, str], ...], ...]
    issuer_key: tuple[tuple[tuple[str, str], ...], ...]
    thumbprint: str
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    ski: str | None
    aki: str | None
    ekus: tuple[str, ...] | None
    is_ca: bool
    self_signed: bool
    endpoints: RevocationEndpoints
    subject_bytes: int = 0  # the DER subject name's length: what a TLS server's CA list carries for it

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "subject": self.subject, "issuer": self.issuer, "thumbprint": self.thumbprint, "serial": self.serial,
            "not_before": iso_utc(self.not_before), "not_after": iso_utc(self.not_after),
            "ski": self.ski, "aki": self.aki, "ekus": None if self.ekus is None else list(self.ekus),
            "is_ca": self.is_ca, "self_signed": self.self_signed, **self.endpoints.as_dict(),
        }


def iso_utc(value: datetime.datetime) -> str:
    """``2026-11-26T03:57:40Z``: the time format of every document and result of the collection."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_der_or_pem(data: str | bytes, *, field: str, pem_pattern: re.Pattern[bytes]) -> tuple[bytes, bool]:
    """Return ``(bytes, is_pem)`` for PEM text, base64 DER text, or raw bytes.

    Base64 may be wrapped and carry whitespace (certutil -encode, Windows'
    "Base-64 encoded X.509 (.CER)" export); anything else is refused.
    """
    if isinstance(data, str):
        raw = data.encode("utf-8", errors="strict")
        if pem_pattern.search(raw):
            return raw, True
        compact = "".join(data.split())
        if not compact:
            raise CertificateParseError(f"{field}: empty value")
        try:
            return base64.b64decode(compact, validate=True), False
        except (binascii.Error, ValueError):
            raise CertificateParseError(
                f"{field}: neither PEM nor base64 DER: {data[:60]!r}{'…' if len(data) > 60 else ''}"
            ) from None
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
        if not raw:
            raise CertificateParseError(f"{field}: empty value")
        return raw, bool(pem_pattern.search(raw[:200]))
    raise CertificateParseError(f"{field}: expected PEM text, base64 DER or bytes, got {type(data).__name__}")


def load_certificate(data: CertificateInput, *, field: str = "certificate") -> x509.Certificate:
    """Load one certificate; PEM input yields its first certificate."""
    require_cryptography()
    if HAS_CRYPTOGRAPHY and isinstance(data, x509.Certificate):
        return data
    raw, is_pem = decode_der_or_pem(data, field=field, pem_pattern=_PEM_CERT)
    try:
        return x509.load_pem_x509_certificate(raw) if is_pem else x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise CertificateParseError(f"{field}: not a valid X.509 certificate ({exc})") from None


def _display_value(value: str | bytes) -> str:
    text = value if isinstance(value, str) else value.hex()
    return f'"{text}"' if _NEEDS_QUOTES.search(text) else text


def display_name(name: x509.Name) -> str:
    """The name as ``X509Certificate2.Subject`` prints it: most specific RDN first, ``, `` between."""
    parts = []
    for rdn in reversed(name.rdns):
        attrs = [f"{_NAME_LABELS.get(a.oid.dotted_string, 'OID.' + a.oid.dotted_string)}={_display_value(a.value)}"
                 for a in rdn]
        parts.append(" + ".join(attrs))
    return ", ".join(parts)


def name_key(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    """A comparable form of ``name``: RFC 5280 7.1 says compare case-insensitively, whitespace folded."""
    key = []
    for rdn in name.rdns:
        attrs = []
        for attr in rdn:
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            attrs.append((attr.oid.dotted_string, " ".join(value.split()).casefold()))
        key.append(tuple(sorted(attrs)))
    return tuple(key)


def _extension(cert: x509.Certificate, ext_type: type, field: str) -> t.Any:
    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # a malformed extension: cryptography parses them lazily
        raise CertificateParseError(f"{field}: malformed {ext_type.__name__} extension ({exc})") from None


def _uris(general_names: t.Iterable[t.Any] | None) -> list[str]:
    # Directory names (relative to the CRL issuer) cannot be fetched by URL; only URIs count.
    return [gn.value for gn in general_names or () if isinstance(gn, x509.UniformResourceIdentifier)]


def _distribution_point_urls(points: t.Iterable[t.Any] | None) -> tuple[str, ...]:
    urls: list[str] = []
    for point in points or ():
        urls.extend(_uris(point.full_name))
    return tuple(urls)


def endpoints_of(cert: x509.Certificate, *, field: str = "certificate") -> RevocationEndpoints:
    """The revocation and issuer URLs written in ``cert``."""
    crl = _distribution_point_urls(_extension(cert, x509.CRLDistributionPoints, field))
    delta = _distribution_point_urls(_extension(cert, x509.FreshestCRL, field))
    ocsp: list[str] = []
    ca_issuers: list[str] = []
    for desc in _extension(cert, x509.AuthorityInformationAccess, field) or ():
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            ocsp.extend(_uris([desc.access_location]))
        elif desc.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
            ca_issuers.extend(_uris([desc.access_location]))
    return RevocationEndpoints(crl=crl, delta_crl=delta, ocsp=tuple(ocsp), ca_issuers=tuple(ca_issuers))


def revocation_endpoints(data: CertificateInput, *, field: str = "certificate") -> RevocationEndpoints:
    """Load ``data`` and return its endpoints (what the ``x509_revocation_endpoints`` filter returns)."""
    return endpoints_of(load_certificate(data, field=field), field=field)


def _is_self_signed(cert: x509.Certificate, ski: str | None, aki: str | None) -> bool:
    if name_key(cert.subject) != name_key(cert.issuer):
        return False
    try:
        cert.verify_directly_issued_by(cert)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False
    except UnsupportedAlgorithm:
        # Cannot check the signature (e.g. an algorithm cryptography lacks): trust the key identifiers.
        return aki is None or ski is None or aki == ski


def certificate_info(data: CertificateInput, *, field: str = "certificate") -> CertificateInfo:
    """Load ``data`` and describe it.

    Raises:
        CertificateParseError: not a certificate, or one of its extensions is malformed.
        MissingCryptographyError: ``cryptography`` is not usable on the controller.
    """
    cert = load_certificate(data, field=field)
    ski_ext = _extension(cert, x509.SubjectKeyIdentifier, field)
    aki_ext = _extension(cert, x509.AuthorityKeyIdentifier, field)
    eku_ext = _extension(cert, x509.ExtendedKeyUsage, field)
    bc_ext = _extension(cert, x509.BasicConstraints, field)
    ski = ski_ext.digest.hex().upper() if ski_ext is not None else None
    aki = aki_ext.key_identifier.hex().upper() if aki_ext is not None and aki_ext.key_identifier else None
    try:
        subject, issuer = cert.subject, cert.issuer
        subject_text, issuer_text = display_name(subject), display_name(issuer)
    except ValueError as exc:
        raise CertificateParseError(f"{field}: malformed subject or issuer name ({exc})") from None
    serial = format(cert.serial_number, "X")
    return CertificateInfo(
        subject=subject_text,
        issuer=issuer_text,
        subject_key=name_key(subject),
        issuer_key=name_key(issuer),
        subject_bytes=len(subject.public_bytes()),
        # SHA-1 of the DER encoding, upper-case hex: what certlm.msc and Get-ChildItem Cert:\ show.
        thumbprint=hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest().upper(),
        serial=serial if len(serial) % 2 == 0 else "0" + serial,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        ski=ski,
        aki=aki,
        ekus=None if eku_ext is None else tuple(oid.dotted_string for oid in eku_ext),
        is_ca=bool(bc_ext is not None and bc_ext.ca),
        self_signed=_is_self_signed(cert, ski, aki),
        endpoints=endpoints_of(cert, field=field),
    )


def revocation_summary(data: CertificateInput, *, field: str = "certificate") -> dict[str, t.Any]:
    """Who a certificate is and where its revocation status is published: ``subject``, ``thumbprint``, ``crl_urls``
    (its CRL distribution points), ``ocsp_urls`` and ``http_crl``, whether any CRL location is http or https.

    Without one, only a directory can serve the CRL (``ldap:///``, the AD CS default, is looked up in the reader's own
    domain), so no host outside that domain can fetch it (Microsoft KB 884115). Raises :class:`CertificateParseError`
    naming ``field``.
    """
    info = certificate_info(data, field=field)
    return {"subject": info.subject, "thumbprint": info.thumbprint, "crl_urls": list(info.endpoints.crl),
            "ocsp_urls": list(info.endpoints.ocsp),
            "http_crl": any(url.lower().startswith(("http://", "https://")) for url in info.endpoints.crl)}


# Friendly EKU names accepted by the filters: the RFC 5280 / OpenSSL short names and the
# spellings certlm.msc shows in "Enhanced Key Usage".
EKU_NAMES: dict[str, str] = {
    "serverAuth": "1.3.6.1.5.5.7.3.1", "Server Authentication": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2", "Client Authentication": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3", "Code Signing": "1.3.6.1.5.5.7.3.3",
    "emailProtection": "1.3.6.1.5.5.7.3.4", "Secure Email": "1.3.6.1.5.5.7.3.4",
    "timeStamping": "1.3.6.1.5.5.7.3.8", "Time Stamping": "1.3.6.1.5.5.7.3.8",
    "OCSPSigning": "1.3.6.1.5.5.7.3.9", "OCSP Signing": "1.3.6.1.5.5.7.3.9",
    "smartcardLogon": "1.3.6.1.4.1.311.20.2.2", "Smart Card Logon": "1.3.6.1.4.1.311.20.2.2",
    "pkInitKDC": "1.3.6.1.5.2.3.5", "KDC Authentication": "1.3.6.1.5.2.3.5",
    "anyExtendedKeyUsage": "2.5.29.37.0", "Any Purpose": "2.5.29.37.0",
}
_EKU_LOOKUP = {name.casefold(): oid for name, oid in EKU_NAMES.items()}
_OID = re.compile(r"^[0-2](?:\.(?:0|[1-9][0-9]*))+$")
ANY_EKU = "2.5.29.37.0"


def eku_oid(value: str, *, field: str = "ekus") -> str:
    """A dotted OID for an EKU given as OID or friendly name (``serverAuth``, ``Server Authentication``)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: expected an OID or EKU name, got {value!r}")
    text = value.strip()
    if _OID.match(text):
        return text
    try:
        return _EKU_LOOKUP[text.casefold()]
    except KeyError:
        known = sorted(EKU_NAMES, key=str.casefold)
        raise ValueError(f"{field}: unknown EKU {value!r}; use a dotted OID or one of {', '.join(known)}") from None


__all__ = [
    "ANY_EKU",
    "EKU_NAMES",
    "CertificateInfo",
    "CertificateParseError",
    "RevocationEndpoints",
    "certificate_info",
    "decode_der_or_pem",
    "display_name",
    "eku_oid",
    "endpoints_of",
    "iso_utc",
    "load_certificate",
    "name_key",
    "revocation_endpoints",
    "revocation_summary",
]
