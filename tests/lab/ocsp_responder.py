"""The public CA's OCSP responder, as the CRL server serves it for ``ocsp.public-ca.test`` (RFC 6960).

A request comes as ``GET <responder URL>/<url-encoding of the base64 of the DER OCSPRequest>`` (RFC 6960 Appendix A.1)
or as ``POST`` with the DER body (``application/ocsp-request``); the answer is an ``OCSPResponse``
(``application/ocsp-response``) with HTTP 200 whatever its status, as responders answer (RFC 6960 A.1.2, RFC 5019 2.2).
Built with cryptography's OCSP builder:

- a request that does not parse, or asks for no certificate: ``malformedRequest``;
- a certificate of a CA the responder has no revocation configuration for (only the lab's issuing CA is configured; the
  cause catalogue's ``partner-ca`` is not): ``unauthorized`` (RFC 6960 2.3; RFC 5019 2.2.3, "the responder is not
  authoritative");
- else ``successful``, signed by the issuing CA itself (a CA-designated responder is the CA, RFC 6960 4.2.2.2):
  ``good``, or ``revoked`` for a serial the lab revoked (``pki.revoke_host``); this update now, next update an hour on.

Modes a test sets (``set_mode``; ``<lab_dir>/crl-server/ocsp.json``, read on every request like the CRL server's
faults): ``internalError``, ``tryLater``, ``unauthorized`` and ``malformedRequest`` answer every request with that
status (a responder whose signing certificate or database broke, TechNet cc770413); ``good`` (or no mode) answers as
above.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.lab import pki

CONTENT_TYPE = "application/ocsp-response"
MODES = ("good", "malformedRequest", "internalError", "tryLater", "unauthorized")
NEXT_UPDATE = dt.timedelta(hours=1)
_FAILURES = {"malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
             "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
             "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
             "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED}


def _mode_file(lab_dir: Path) -> Path:
    return Path(lab_dir) / "crl-server" / "ocsp.json"


def set_mode(lab_dir: Path, mode: str) -> None:
    """Make the responder answer every request with ``mode`` (``good``: as a working responder does)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    path = _mode_file(lab_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"mode": mode}))
    tmp.replace(path)


def read_mode(lab_dir: Path) -> str:
    try:
        mode = json.loads(_mode_file(lab_dir).read_text()).get("mode")
    except (FileNotFoundError, ValueError, AttributeError):
        return "good"
    return mode if mode in MODES else "good"


def request_from_path(path: str) -> bytes:
    """The DER request of a GET: the last path segment, URL-decoded, base64-decoded; ValueError when it is none."""
    encoded = unquote(path.rsplit("/", 1)[-1])
    if not encoded:
        raise ValueError("no request in the URL")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the URL's last segment is not base64: {exc}") from None


def _failure(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def _revoked(lab: pki.LabCA) -> dict[int, dt.datetime]:
    state = json.loads((lab.dir / "state.json").read_text())
    return {r["serial"]: dt.datetime.fromisoformat(r["date"]) for r in state.get("revoked", [])}


def respond(lab_dir: Path, request_der: bytes | None, now: dt.datetime | None = None) -> bytes:
    """The DER ``OCSPResponse`` for ``request_der`` (None: the request could not be read)."""
    mode = read_mode(lab_dir)
    if mode in _FAILURES:
        return _failure(_FAILURES[mode])
    try:
        request = ocsp.load_der_ocsp_request(request_der or b"")
    except ValueError:
        return _failure(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    lab = pki.LabCA(Path(lab_dir))
    issuer = lab.issuing_cert
    algorithm = request.hash_algorithm
    digest = hashes.Hash(algorithm)
    digest.update(issuer.subject.public_bytes())
    name_hash = digest.finalize()
    key_hash = _key_hash(issuer, algorithm)
    if (request.issuer_name_hash, request.issuer_key_hash) != (name_hash, key_hash):
        return _failure(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    now = now or dt.datetime.now(dt.UTC)
    revoked_at = _revoked(lab).get(request.serial_number)
    status = ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD
    builder = (ocsp.OCSPResponseBuilder()
               .add_response_by_hash(issuer_name_hash=name_hash, issuer_key_hash=key_hash,
                                     serial_number=request.serial_number, algorithm=algorithm, cert_status=status,
                                     this_update=now - dt.timedelta(minutes=1), next_update=now + NEXT_UPDATE,
                                     revocation_time=revoked_at, revocation_reason=None)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer))
    return builder.sign(lab.issuing_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """The hash of the issuer's subjectPublicKey BIT STRING's value (RFC 6960 4.1.1, issuerKeyHash)."""
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }: the BIT STRING is the last element,
    # its first content byte the count of unused bits.
    digest = hashes.Hash(algorithm)
    digest.update(_last_bit_string(spki))
    return digest.finalize()


def _last_bit_string(der: bytes) -> bytes:
    offset, end = _header(der, 0)
    last = b""
    while offset < end:
        tag = der[offset]
        start, stop = _header(der, offset)
        if tag == 0x03:
            last = der[start + 1:stop]
        offset = stop
    return last


def _header(der: bytes, offset: int) -> tuple[int, int]:
    """(content start, content end) of the element at ``offset``."""
    length = der[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[start:start + count], "big")
        start += count
    return start, start + length


__all__ = ["CONTENT_TYPE", "MODES", "read_mode", "request_from_path", "respond", "set_mode"]
