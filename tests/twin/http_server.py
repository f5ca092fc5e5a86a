"""One twin's WinRM listeners: HTTP/1.1 on 5985 and HTTPS on 5986, NTLM/Basic auth, message encryption.

Behaviour modelled on Windows' WinRM service as seen by pywinrm/requests-ntlm/pypsrp:
- 401 with ``WWW-Authenticate: Negotiate`` (and ``Basic realm="WSMAN"`` where Basic may be used) when a request
  has no acceptable credentials; NTLM tokens may be sent with the ``Negotiate`` or ``NTLM`` scheme.
- NTLM authenticates the TCP connection (HTTP.sys connection-based auth): later requests on it carry no header.
- Over HTTP, SOAP must be sealed: ``multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"``
  (MS-WSMV 2.2.9.1.1; pywinrm ``winrm/encryption.py``). Plain SOAP over HTTP, and Basic over HTTP, are refused
  with 401 unless the host's ``AllowUnencrypted`` is true. Over HTTPS plain SOAP is accepted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import ssl
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spnego
import spnego.channel_bindings
import spnego.exceptions

from tests.twin.sip_listener import SipTlsListener
from tests.twin.state import HostState
from tests.twin.wsman import WinRSService

BOUNDARY = b"--Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
MAX_HEADER = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}


@dataclass
class HostSpec:
    name: str
    address: str
    http_port: int
    https_port: int
    state_path: Path
    cert_path: Path
    key_path: Path
    # The SIP-style TLS port with the host's lab-PKI leaf (issue 4); None: no such listener.
    tls_port: int | None = None
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None


@dataclass
class ConnState:
    ctx: Any = None  # spnego server context (NTLM is per TCP connection)
    user: str | None = None


@dataclass
class Twin:
    spec: HostSpec
    state: HostState
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "http_requests": 0,
            "shell_commands": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "auth_failures": 0,
        }
    )
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    ssl_context: ssl.SSLContext | None = None
    cbt_app_data: bytes = b""
    service: WinRSService = field(init=False)
    sip: SipTlsListener | None = None

    def __post_init__(self) -> None:
        self.service = WinRSService(self.state, self.spec.address, self.counters)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.spec.cert_path, self.spec.key_path)
        self.ssl_context = ctx
        der = ssl.PEM_cert_to_DER_cert(self.spec.cert_path.read_text())
        # RFC 5929 tls-server-end-point: SHA-256 of the certificate (its signature hash is SHA-256 here).
        self.cbt_app_data = b"tls-server-end-point:" + hashlib.sha256(der).digest()

    @property
    def listening(self) -> bool:
        return bool(self.servers)

    async def start(self) -> None:
        if self.servers:
            return
        http = await asyncio.start_server(
            lambda r, w: self._serve(r, w, False),
            self.spec.address,
            self.spec.http_port,
            reuse_address=True,
            backlog=64,
        )
        https = await asyncio.start_server(
            lambda r, w: self._serve(r, w, True),
            self.spec.address,
            self.spec.https_port,
            ssl=self.ssl_context,
            reuse_address=True,
            backlog=64,
        )
        self.servers = [http, https]
        spec = self.spec
        if spec.tls_port and spec.tls_cert_path and spec.tls_cert_path.exists():
            self.sip = SipTlsListener(
                spec.address, spec.tls_port, spec.tls_cert_path, spec.tls_key_path, self.state.os_build
            )
            await self.sip.start()

    async def stop(self) -> None:
        """Close the listeners and drop every open connection: the host has gone away."""
        servers, self.servers = self.servers, []
        for server in servers:
            server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        if self.sip is not None:
            await self.sip.stop()
            self.sip = None
        self.service.reset()

    def reload(self) -> None:
        """Load the state file again (tests edit it; a restarted host reads what was on disk)."""
        self.state.data = HostState.load(self.spec.state_path).data

    # -- HTTP ---------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, https: bool) -> None:
        self.writers.add(writer)
        conn = ConnState()
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            while True:
                try:
                    first = await reader.readexactly(1)
                    if not first.isalpha():
                        # e.g. a TLS ClientHello on the HTTP port: HTTP.sys answers 400 and closes.
                        await self._reply(writer, 400, b"", {"Connection": "close"})
                        return
                    head = first + await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, headers = _parse_head(head)
                if request_line is None:
                    await self._reply(writer, 400, b"", {})
                    return
                method, path = request_line
                length_text = headers.get("content-length", "0")
                if not length_text.isdigit():
                    await self._reply(writer, 411, b"", {})
                    return
                length = int(length_text)
                if length > MAX_BODY:
                    await self._reply(writer, 413, b"", {})
                    return
                body = await reader.readexactly(length) if length else b""
                self.counters["http_requests"] += 1
                self.counters["bytes_in"] += len(head) + len(body)
                status, payload, extra = await self._handle(method, path, headers, body, conn, https, peer[0])
                await self._reply(writer, status, payload, extra)
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self.writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, Any]) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Server: Microsoft-HTTPAPI/2.0"]
        for key, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key}: {item}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.counters["bytes_out"] += len(data)
        writer.write(data)
        await writer.drain()

    def _challenge_headers(self, https: bool, token: str | None = None, scheme: str = "Negotiate") -> dict[str, Any]:
        if token is not None:
            return {"WWW-Authenticate": f"{scheme} {token}"}
        offers = ["Negotiate"]
        winrm = self.state.data["winrm"]
        if winrm.get("Basic") and (https or winrm.get("AllowUnencrypted")):
            offers.append('Basic realm="WSMAN"')
        return {"WWW-Authenticate": offers}

    async def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, conn: ConnState, https: bool, client_ip: str
    ) -> tuple[int, bytes, dict[str, Any]]:
        if path.split("?", 1)[0].lower() != "/wsman":
            return 404, b"", {}
        if method != "POST":
            return 405, b"", {}
        winrm = self.state.data["winrm"]
        allow_plain = https or bool(winrm.get("AllowUnencrypted"))
        auth = headers.get("authorization", "")
        scheme, _sep, token = auth.partition(" ")
        basic_user: str | None = None
        if scheme.lower() in ("negotiate", "ntlm"):
            try:
                raw = base64.b64decode(token, validate=True)
            except (binascii.Error, ValueError):
                return self._deny(https)
            if conn.ctx is None or conn.ctx.complete:
                protocol = "ntlm" if raw.startswith(b"NTLMSSP\x00") else "negotiate"
                cbt = spnego.channel_bindings.GssChannelBindings(application_data=self.cbt_app_data) if https else None
                conn.ctx, conn.user = spnego.server(protocol=protocol, channel_bindings=cbt), None
            try:
                out = conn.ctx.step(raw)
            except spnego.exceptions.SpnegoError:
                conn.ctx = None
                return self._deny(https)
            if not conn.ctx.complete:
                return 401, b"", self._challenge_headers(https, base64.b64encode(out or b"").decode(), scheme)
            user = self._allowed(conn.ctx.client_principal or "")
            if user is None:
                conn.ctx = None
                return self._deny(https)
            conn.user = user
            if out:
                # SPNEGO's last leg (accept-completed + mechListMIC) rides on the response, as with IIS/HTTP.sys.
                status, payload, extra = await self._process(headers, body, conn, https, client_ip, None)
                return status, payload, {**extra, "WWW-Authenticate": f"{scheme} {base64.b64encode(out).decode()}"}
        elif scheme.lower() == "basic":
            if not winrm.get("Basic") or not allow_plain:
                return self._deny(https)
            try:
                user_pass = base64.b64decode(token, validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return self._deny(https)
            basic_user = self._basic_ok(user_pass)
            if basic_user is None:
                return self._deny(https)
        elif conn.user is None:
            return 401, b"", self._challenge_headers(https)
        return await self._process(headers, body, conn, https, client_ip, basic_user)

    async def _process(
        self, headers: dict[str, str], body: bytes, conn: ConnState, https: bool, client_ip: str, basic_user: str | None
    ) -> tuple[int, bytes, dict[str, Any]]:
        allow_plain = https or bool(self.state.data["winrm"].get("AllowUnencrypted"))
        owner = basic_user or conn.user or ""
        content_type = headers.get("content-type", "")
        sealed = content_type.lower().startswith("multipart/encrypted")
        if sealed:
            if basic_user is not None or conn.ctx is None or not conn.ctx.complete:
                return 400, b"", {}
            try:
                xml = _unwrap(conn.ctx, body)
            except (ValueError, spnego.exceptions.SpnegoError):
                return 400, b"", {}
        else:
            if not body:
                return 200, b"", {}  # authentication-only request (pywinrm setup_encryption)
            if not allow_plain:
                self.counters["auth_failures"] += 1
                return 401, b"", self._challenge_headers(https)
            xml = body
        scheme_name = "https" if https else "http"
        port = self.spec.https_port if https else self.spec.http_port
        endpoint = f"{scheme_name}://{self.spec.address}:{port}/wsman"
        status, reply = await self.service.handle(xml, owner, client_ip, endpoint)
        if sealed:
            return (
                status,
                _wrap(conn.ctx, reply),
                {"Content-Type": f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'},
            )
        return status, reply, {"Content-Type": "application/soap+xml;charset=UTF-8"}

    def _deny(self, https: bool) -> tuple[int, bytes, dict[str, Any]]:
        self.counters["auth_failures"] += 1
        return 401, b"", self._challenge_headers(https)

    def _users(self) -> list[dict[str, str]]:
        return list(self.state.data["winrm"].get("users", []))

    def _allowed(self, principal: str) -> str | None:
        domain, _sep, user = principal.rpartition("\\")
        for entry in self._users():
            if entry["user"].lower() == user.lower() and (
                not entry.get("domain") or entry["domain"].lower() == domain.lower()
            ):
                return principal
        return None

    def _basic_ok(self, user_pass: str) -> str | None:
        name, sep, password = user_pass.partition(":")
        if not sep:
            return None
        domain, _sep, user = name.rpartition("\\")
        for entry in self._users():
            if (
                entry["user"].lower() == user.lower()
                and entry["password"] == password
                and (not domain or not entry.get("domain") or entry["domain"].lower() == domain.lower())
            ):
                return name
        return None


def _parse_head(head: bytes) -> tuple[tuple[str, str] | None, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:
        return None, {}
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None, {}
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return (parts[0], parts[1]), headers


def _unwrap(ctx: Any, body: bytes) -> bytes:
    """Decrypt every ``application/octet-stream`` part (MS-WSMV 2.2.9.1.1 framing)."""
    message = b""
    for part in body.split(BOUNDARY)[1:]:
        marker = b"application/octet-stream\r\n"
        idx = part.find(marker)
        if idx < 0:
            continue
        data = part[idx + len(marker) :]
        if len(data) < 4:
            raise ValueError("encrypted part too short")
        (sig_len,) = struct.unpack("<I", data[:4])
        header, sealed = data[4 : 4 + sig_len], data[4 + sig_len :]
        message += ctx.unwrap_winrm(header, sealed)
    if not message:
        raise ValueError("no encrypted part")
    return message


def _wrap(ctx: Any, message: bytes) -> bytes:
    result = ctx.wrap_winrm(message)
    return (
        BOUNDARY + b"\r\n"
        b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(message)).encode()
        + b"\r\n"
        + BOUNDARY
        + b"\r\n"
        b"\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<I", len(result.header))
        + result.header
        + result.data
        + BOUNDARY
        + b"--\r\n"
    )
