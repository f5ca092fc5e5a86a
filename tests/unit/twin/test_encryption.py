"""The twin's message encryption (tests/twin/encryption.py), modelled on pywinrm's ``winrm/tests/test_encryption.py``.

The first tests use a session whose "sealing" is base64 with a fixed signature, as pywinrm's do, so the framing
can be checked byte for byte (MS-WSMV 2.2.9.1.1). The last ones seal with a real NTLM session key, between
pywinrm's own client ``Encryption`` (over requests-ntlm's session security) and the twin, without a network.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import spnego
from requests_ntlm.requests_ntlm import ShimSessionSecurity
from winrm.encryption import Encryption

from tests.twin import encryption

SIGNATURE = b"1234"
SEALED = b"dW5lbmNyeXB0ZWQgbWVzc2FnZQ=="  # base64 of b"unencrypted message": what the fake context "seals"
HEAD = (
    b"--Encrypted Boundary\r\n"
    b"\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
    b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=19\r\n"
    b"--Encrypted Boundary\r\n"
    b"\tContent-Type: application/octet-stream\r\n"
)


@dataclass
class Wrapped:
    header: bytes
    data: bytes


class FakeSessionSecurity:
    """pywinrm's TestSessionSecurity with pyspnego's ``wrap_winrm``/``unwrap_winrm`` names."""

    def wrap_winrm(self, data: bytes) -> Wrapped:
        return Wrapped(SIGNATURE, base64.b64encode(data))

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        if header != SIGNATURE:
            raise spnego.exceptions.BadMICError(context_msg="signature does not match")
        return base64.b64decode(data)


def framed(signature: bytes = SIGNATURE, sealed: bytes = SEALED, end: bytes = b"--Encrypted Boundary--\r\n") -> bytes:
    return HEAD + struct.pack("<i", len(signature)) + signature + sealed + end


def test_seal_frames_the_message():
    assert encryption.seal(FakeSessionSecurity(), b"unencrypted message") == framed()
    assert encryption.CONTENT_TYPE == (
        'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
    )


@pytest.mark.parametrize(
    "end", [b"--Encrypted Boundary--\r\n", b"--Encrypted Boundary\r\n"], ids=["end-hyphens", "pywinrm-0.4-end"]
)
def test_unseal_reads_the_frame(end):
    assert encryption.unseal(FakeSessionSecurity(), framed(end=end)) == b"unencrypted message"


def test_unseal_joins_every_sealed_part_in_order():
    """pywinrm's CredSSP chunking sends one part pair per 16 KiB; each octet-stream part is sealed on its own."""
    second = framed(sealed=base64.b64encode(b" and more"), end=b"")
    body = framed(end=b"") + second + b"--Encrypted Boundary--\r\n"
    assert encryption.unseal(FakeSessionSecurity(), body) == b"unencrypted message and more"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<s:Envelope/>", "no encrypted part"),
        (HEAD.replace(b"application/octet-stream", b"text/plain") + SEALED, "no encrypted part"),
        (HEAD + b"\x04\x00", "encrypted part too short"),
    ],
    ids=["plain-body", "no-octet-stream-part", "short-length-field"],
)
def test_unseal_refuses_a_body_without_a_sealed_part(body, error):
    with pytest.raises(ValueError, match=error):
        encryption.unseal(FakeSessionSecurity(), body)


def test_unseal_passes_on_a_bad_signature():
    with pytest.raises(spnego.exceptions.SpnegoError):
        encryption.unseal(FakeSessionSecurity(), framed(signature=b"9999"))


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (encryption.CONTENT_TYPE, True),
        ('Multipart/Encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"', True),
        ("application/soap+xml;charset=UTF-8", False),
        ("", False),
    ],
)
def test_is_encrypted(content_type, expected):
    assert encryption.is_encrypted(content_type) is expected


@pytest.fixture
def ntlm_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A completed NTLM exchange in memory: (pywinrm client session, twin-side server context)."""
    users = tmp_path / "ntlm-users"
    users.write_text(":ansible:Lab-secret\n")  # the lab writes this form too (tests/lab/fleet/build.py)
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    client = spnego.client("ansible", "Lab-secret", hostname="twin", protocol="ntlm")
    server = spnego.server(protocol="ntlm")
    token = client.step()
    while not (client.complete and server.complete):
        token = server.step(token)
        if token is not None:
            token = client.step(token)
    return ClientSession(client), server


class ClientSession:
    """What pywinrm's ``Encryption`` uses of its requests session: the NTLM session security, ``prepare_request``."""

    def __init__(self, context: spnego.ContextProxy) -> None:
        self.auth = SimpleNamespace(session_security=ShimSessionSecurity(context))

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        return request.prepare()


def test_pywinrm_request_unseals_in_the_twin(ntlm_pair):
    session, server = ntlm_pair
    soap = b"<s:Envelope>" + b"x" * 5000 + b"</s:Envelope>"
    request = Encryption(session, "ntlm").prepare_encrypted_request(session, "http://twin:5985/wsman", soap)
    assert encryption.is_encrypted(request.headers["Content-Type"])
    assert encryption.unseal(server, request.body) == soap


def test_twin_response_unseals_in_pywinrm_with_its_length_check(ntlm_pair):
    session, server = ntlm_pair
    soap = "<s:Envelope>réponse</s:Envelope>".encode()
    response = requests.Response()
    response.headers["Content-Type"] = encryption.CONTENT_TYPE
    response._content = encryption.seal(server, soap)
    response.request = requests.Request("POST", "http://twin:5985/wsman").prepare()
    assert Encryption(session, "ntlm").parse_encrypted_response(response) == soap


def test_a_tampered_request_is_refused(ntlm_pair):
    session, server = ntlm_pair
    request = Encryption(session, "ntlm").prepare_encrypted_request(session, "http://twin:5985/wsman", b"<soap/>")
    tampered = request.body[:-30] + bytes([request.body[-30] ^ 1]) + request.body[-29:]
    with pytest.raises(spnego.exceptions.SpnegoError):
        encryption.unseal(server, tampered)
