"""Message encryption of WinRM over HTTP: the server's half of MS-WSMV 2.2.9.1.1 (SPNEGO/NTLM session keys).

Over plain HTTP, Windows' WinRM service accepts SOAP only sealed with the session key of the connection's NTLM
or SPNEGO authentication, framed as MIME parts::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <4-byte little-endian signature length><signature><sealed data>--Encrypted Boundary--\\r\\n

pywinrm (``winrm/encryption.py``) and pypsrp (``pypsrp/encryption.py``) build and read exactly this; the twin
seals its answers the same way so both clients' own parsers (including pywinrm's length check) read them.
The session key belongs to the authentication layer: a ``SessionSecurity`` is pyspnego's server context.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

BOUNDARY = b"--Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
_OCTET_STREAM = b"application/octet-stream\r\n"


class SessionSecurity(Protocol):
    """What sealing needs from an authenticated context (pyspnego's ``ContextProxy`` has both)."""

    def wrap_winrm(self, data: bytes) -> Any:
        """Seal ``data``; the result has ``.header`` (the signature) and ``.data`` (the sealed bytes)."""

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        """Verify ``header`` and unseal ``data``; raises when either was tampered with."""


def is_encrypted(content_type: str) -> bool:
    """True for a sealed request (any ``multipart/encrypted`` body; the protocol parameter is not checked)."""
    return content_type.lower().startswith("multipart/encrypted")


def unseal(context: SessionSecurity, body: bytes) -> bytes:
    """The SOAP message of a sealed request: every ``application/octet-stream`` part unsealed, in order.

    Raises ``ValueError`` when there is no sealed part or a part is shorter than its signature length field;
    the context raises its own error for a bad signature (the caller answers 400 to both).
    """
    message = b""
    for part in body.split(BOUNDARY)[1:]:
        index = part.find(_OCTET_STREAM)
        if index < 0:
            continue
        data = part[index + len(_OCTET_STREAM) :]
        if len(data) < 4:
            raise ValueError("encrypted part too short")
        (signature_length,) = struct.unpack("<I", data[:4])
        signature, sealed = data[4 : 4 + signature_length], data[4 + signature_length :]
        message += context.unwrap_winrm(signature, sealed)
    if not message:
        raise ValueError("no encrypted part")
    return message


def seal(context: SessionSecurity, message: bytes) -> bytes:
    """A sealed response body for ``message`` (send it with ``CONTENT_TYPE``)."""
    wrapped = context.wrap_winrm(message)
    return (
        BOUNDARY + b"\r\n"
        b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
        b"\tOriginalContent: type=" + SOAP_CONTENT_TYPE.encode() + b";Length=" + str(len(message)).encode() + b"\r\n"
        + BOUNDARY + b"\r\n"
        b"\tContent-Type: " + _OCTET_STREAM
        + struct.pack("<I", len(wrapped.header))
        + wrapped.header
        + wrapped.data
        + BOUNDARY
        + b"--\r\n"
    )
