"""One twin's WinRM HTTP endpoint: HTTP/1.1 framing on 5985 (HTTP) and 5986 (HTTPS), as HTTP.sys serves WinRM.

What pywinrm's transport (``winrm/transport.py``) and pypsrp's ``wsman.py`` talk to: keep-alive connections,
``POST /wsman`` only, ``Server: Microsoft-HTTPAPI/2.0``. Each request is authenticated (``auth.py``), unsealed
when it is encrypted (``encryption.py``), handed to the WinRS service (``winrs.py``) and its answer sealed the
same way. Over HTTP, plain SOAP is refused with 401 unless the host's ``AllowUnencrypted`` is true; over HTTPS
it is accepted. An authenticated POST with an empty body (pywinrm's ``setup_encryption``) answers 200, empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import spnego.exceptions

from tests.twin import encryption
from tests.twin.auth import Authenticator, Connection, Reply
from tests.twin.state import HostState
from tests.twin.winrs import WinRSService

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


class WinRMEndpoint:
    """Serves the connections of one host's two WinRM listeners; counts requests and bytes in ``counters``."""

    def __init__(
        self,
        address: str,
        ports: dict[bool, int],
        state: HostState,
        auth: Authenticator,
        service: WinRSService,
        counters: dict[str, int],
    ) -> None:
        self.address = address
        self.ports = ports  # https? -> port, for the endpoint address the WinRS service reports
        self.state = state
        self.auth = auth
        self.service = service
        self.counters = counters
        self.writers: set[asyncio.StreamWriter] = set()

    def drop_connections(self) -> None:
        """Abort every open connection (the host went away mid-conversation)."""
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, https: bool) -> None:
        self.writers.add(writer)
        conn = Connection()
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
                request_line, headers = parse_head(head)
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

    async def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, conn: Connection, https: bool, client: str
    ) -> Reply:
        if path.split("?", 1)[0].lower() != "/wsman":
            return 404, b"", {}
        if method != "POST":
            return 405, b"", {}
        verdict = self.auth.accept(headers.get("authorization", ""), conn, https)
        if verdict.refusal is not None:
            return verdict.refusal
        status, payload, extra = await self._process(headers, body, conn, https, client, verdict.basic_user)
        if verdict.final_token is not None:
            extra = {**extra, "WWW-Authenticate": verdict.final_token}
        return status, payload, extra

    async def _process(
        self, headers: dict[str, str], body: bytes, conn: Connection, https: bool, client: str, basic_user: str | None
    ) -> Reply:
        sealed = encryption.is_encrypted(headers.get("content-type", ""))
        if sealed:
            if basic_user is not None or conn.context is None or not conn.context.complete:
                return 400, b"", {}
            try:
                xml = encryption.unseal(conn.context, body)
            except (ValueError, spnego.exceptions.SpnegoError):
                return 400, b"", {}
        else:
            if not body:
                return 200, b"", {}  # authentication-only request (pywinrm setup_encryption)
            if not (https or self.state.data["winrm"].get("AllowUnencrypted")):
                self.counters["auth_failures"] += 1
                return 401, b"", self.auth.challenge(https)
            xml = body
        endpoint = f"{'https' if https else 'http'}://{self.address}:{self.ports[https]}/wsman"
        status, reply = await self.service.handle(xml, basic_user or conn.user or "", client, endpoint)
        if sealed:
            return status, encryption.seal(conn.context, reply), {"Content-Type": encryption.CONTENT_TYPE}
        return status, reply, {"Content-Type": encryption.SOAP_CONTENT_TYPE}


def parse_head(head: bytes) -> tuple[tuple[str, str] | None, dict[str, str]]:
    """``(method, path)`` and lower-cased headers of a request head; ``None`` for a malformed request line."""
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
