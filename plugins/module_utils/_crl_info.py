# PRIVATE to the crlfix.windows collection; may change without notice.
"""Read revocation data: a certificate revocation list (who issued it, when it expires, base or delta, whether its
issuer signed it) and an OCSP responder's answer (the status it gave).

CryptoAPI caches a fetched CRL until its NextUpdate, so a CRL that is stale at
a given time is one Windows fetches again (and fails on without a route to the
distribution point); that makes ``stale`` the property a verification step
cares about most.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import (
    HAS_CRYPTOGRAPHY,
    require_cryptography,
)
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    CertificateInput,
    CertificateParseError,
    decode_der_or_pem,
    display_name,
    iso_utc,
    load_certificate,
    name_key,
)

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.x509 import ocsp

_PEM_CRL = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----")

CrlInput = t.Union[str, bytes, "x509.CertificateRevocationList"]


class CrlParseError(ValueError):
    """The input is not a CRL we can read; the message names the field and the value."""


@dataclasses.dataclass(frozen=True)
class CrlInfo:
    """The facts of one CRL. Times are timezone-aware UTC."""

    issuer: str
    issuer_key: tuple[tuple[tuple[str, str], ...], ...]
    this_update: datetime.datetime
    next_update: datetime.datetime | None
    crl_number: int | None
    is_delta: bool
    base_crl_number: int | None
    revoked_count: int
    aki: str | None

    def is_stale(self, now: datetime.datetime) -> bool:
        """True when ``now`` is past NextUpdate.

        A CRL without NextUpdate (allowed by X.509, not by RFC 5280) never goes
        stale: Windows keeps using it, so there is nothing to refetch.
        """
        return self.next_update is not None and _aware(now) > self.next_update

    def as_dict(self, *, now: datetime.datetime | None = None) -> dict[str, t.Any]:
        """The ``crl_info`` filter's result; ``stale`` is judged at ``now`` (default: the current time)."""
        now = _aware(now) if now is not None else datetime.datetime.now(datetime.UTC)
        return {
            "issuer": self.issuer,
            "this_update": iso_utc(self.this_update),
            "next_update": iso_utc(self.next_update) if self.next_update is not None else None,
            "crl_number": self.crl_number,
            "is_delta": self.is_delta,
            "base_crl_number": self.base_crl_number,
            "revoked_count": self.revoked_count,
            "aki": self.aki,
            "stale": self.is_stale(now),
            "checked_at": iso_utc(now),
        }


def _aware(value: datetime.datetime) -> datetime.datetime:
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def load_crl(data: CrlInput, *, field: str = "crl") -> x509.CertificateRevocationList:
    """Load a CRL from PEM text, base64 DER or bytes."""
    require_cryptography()
    if isinstance(data, x509.CertificateRevocationList):
        return data
    try:
        raw, is_pem = decode_der_or_pem(data, field=field, pem_pattern=_PEM_CRL)
    except CertificateParseError as exc:
        raise CrlParseError(str(exc)) from None
    try:
        return x509.load_pem_x509_crl(raw) if is_pem else x509.load_der_x509_crl(raw)
    except ValueError as exc:
        raise CrlParseError(f"{field}: not a valid X.509 CRL ({exc})") from None


def _extension(crl: x509.CertificateRevocationList, ext_type: type, field: str) -> t.Any:
    try:
        return crl.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise CrlParseError(f"{field}: malformed {ext_type.__name__} extension ({exc})") from None


def crl_info(data: CrlInput, *, field: str = "crl") -> CrlInfo:
    """Load ``data`` and describe it.

    Raises:
        CrlParseError: not a CRL, or a malformed extension.
        MissingCryptographyError: ``cryptography`` is not usable on the controller.
    """
    crl = load_crl(data, field=field)
    number = _extension(crl, x509.CRLNumber, field)
    delta = _extension(crl, x509.DeltaCRLIndicator, field)
    aki = _extension(crl, x509.AuthorityKeyIdentifier, field)
    try:
        revoked_count = len(crl)
    except ValueError as exc:
        raise CrlParseError(f"{field}: malformed revoked certificates list ({exc})") from None
    return CrlInfo(
        issuer=display_name(crl.issuer),
        issuer_key=name_key(crl.issuer),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        crl_number=number.crl_number if number is not None else None,
        is_delta=delta is not None,
        base_crl_number=delta.crl_number if delta is not None else None,
        revoked_count=revoked_count,
        aki=aki.key_identifier.hex().upper() if aki is not None and aki.key_identifier else None,
    )


def verify_crl_signature(crl: CrlInput, issuer: CertificateInput) -> tuple[bool, str]:
    """Check that ``issuer`` signed ``crl``; return ``(ok, reason)``.

    The issuer name must match the CRL issuer (RFC 5280 6.3.3 (b)) and the
    signature must verify with the issuer's public key. ``reason`` says why
    not, for the task result; it is empty when ``ok``.
    """
    crl_obj = load_crl(crl, field="crl")
    cert = load_certificate(issuer, field="issuer")
    if name_key(crl_obj.issuer) != name_key(cert.subject):
        return False, (f"CRL issuer {display_name(crl_obj.issuer)!r} is not the certificate subject "
                       f"{display_name(cert.subject)!r}")
    try:
        ok = crl_obj.is_signature_valid(cert.public_key())
    except (UnsupportedAlgorithm, InvalidSignature, TypeError, ValueError) as exc:
        return False, f"cannot verify the CRL signature: {exc}"
    return (True, "") if ok else (False, "the CRL signature does not verify with the issuer's public key")


def ocsp_answer(body: bytes) -> dict[str, t.Any]:
    """What an OCSP responder answered: ``status`` (``successful``, ``malformed_request``, ``internal_error``,
    ``try_later``, ``sig_required``, ``unauthorized``; RFC 6960 4.2.1) and, when successful, the certificate's
    ``cert_status`` (``good``, ``revoked``, ``unknown``).

    Raises:
        CrlParseError: the body is not an OCSPResponse.
    """
    require_cryptography()
    try:
        answer = ocsp.load_der_ocsp_response(body)
    except ValueError as exc:
        raise CrlParseError(f"ocsp: the body ({len(body)} bytes) is not an OCSP response ({exc})") from None
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return {"status": answer.response_status.name.lower(), "cert_status": None}
    return {"status": "successful", "cert_status": answer.certificate_status.name.lower()}


__all__ = ["CrlInfo", "CrlParseError", "crl_info", "load_crl", "ocsp_answer", "verify_crl_signature"]
