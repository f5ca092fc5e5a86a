"""One twin: a Windows host's lifecycle and the listeners it runs, built from its state file.

A ``Twin`` owns what one host serves on its loopback address:

- the WinRM service: HTTP on 5985 and HTTPS on 5986 (``http_server.WinRMEndpoint``: authentication,
  message encryption, WS-Management/WinRS), sharing one WinRS service, so shells outlive connections;
- the SIP-style TLS port 5061 with the host's lab-PKI leaf (``sip_listener.SipTlsListener``), when the lab
  issued one.

``start`` is the host booting (listeners open, state read from disk), ``stop`` the host dying (listeners and
connections closed, shells lost), ``reload`` re-reading the state file a test edited. A new network service of
the host gets its listener here, beside the others; new per-host data goes in the state file (``state.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.twin import service_process
from tests.twin.auth import Authenticator
from tests.twin.executor import DOCUMENT_SIZES
from tests.twin.http_server import WinRMEndpoint
from tests.twin.sip_listener import SipTlsListener, check_pool
from tests.twin.state import HostState
from tests.twin.winrs import WinRSService, command_pool

COUNTERS = ("http_requests", "shell_commands", "bytes_in", "bytes_out", "auth_failures",
            *(f"doc_{part}" for part in DOCUMENT_SIZES))


@dataclass
class HostSpec:
    """Where one host listens and the files it is made of (from the lab's ``fleet.json``)."""

    name: str
    address: str
    http_port: int
    https_port: int
    state_path: Path
    cert_path: Path  # the WinRM HTTPS listener's certificate (PEM) and key
    key_path: Path
    # The SIP-style TLS port with the host's lab-PKI leaf; None: no such listener.
    tls_port: int | None = None
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None


class Twin:
    """One Windows host on its loopback address; ``counters`` are what the lab's metrics report for it."""

    def __init__(self, spec: HostSpec, state: HostState) -> None:
        self.spec = spec
        self.state = state
        self.counters = dict.fromkeys(COUNTERS, 0)
        # The host's own threads, as a machine has its own processes: its commands and its service's certificate
        # checks wait only for these, never for another twin's (tests/twin/README.md, "One machine each").
        self.commands = command_pool(spec.name)
        self.checks = check_pool(spec.name)
        self.service = WinRSService(state, spec.address, self.counters, self.commands)
        der = ssl.PEM_cert_to_DER_cert(spec.cert_path.read_text())
        # RFC 5929 tls-server-end-point: SHA-256 of the certificate (its signature hash is SHA-256 here).
        channel_binding = b"tls-server-end-point:" + hashlib.sha256(der).digest()
        self.winrm = WinRMEndpoint(
            spec.address,
            {False: spec.http_port, True: spec.https_port},
            state,
            Authenticator(state, channel_binding, self.counters),
            self.service,
            self.counters,
        )
        self.https_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.https_context.load_cert_chain(spec.cert_path, spec.key_path)
        self.servers: list[asyncio.base_events.Server] = []
        self.sip: SipTlsListener | None = None

    @property
    def listening(self) -> bool:
        return bool(self.servers)

    async def start(self) -> None:
        """Open the host's listeners; an address already taken raises ``OSError`` naming address and port."""
        if self.servers:
            return
        spec = self.spec
        loop = asyncio.get_running_loop()
        # The host boots: its services start new processes (tests/twin/service_process.py), written in its own thread.
        await loop.run_in_executor(self.commands, service_process.boot, self.state)
        try:
            self.servers.append(await self._listen(spec.http_port, lambda r, w: self.winrm.serve(r, w, False)))
            self.servers.append(
                await self._listen(spec.https_port, lambda r, w: self.winrm.serve(r, w, True), self.https_context)
            )
            if spec.tls_port and spec.tls_cert_path and spec.tls_cert_path.exists():
                self.sip = SipTlsListener(
                    spec.address, spec.tls_port, spec.tls_cert_path, spec.tls_key_path, self.state, self.checks
                )
                try:
                    await self.sip.start()
                except OSError as exc:
                    raise _cannot_listen(spec.address, spec.tls_port, exc) from exc
                sip = self.sip
                service_process.watch_restarts(self.state, lambda delay: loop.call_soon_threadsafe(
                    lambda: loop.create_task(sip.pause(delay))))
        except OSError:
            await self.stop()
            raise

    async def _listen(self, port: int, handler, context: ssl.SSLContext | None = None) -> asyncio.base_events.Server:
        try:
            return await asyncio.start_server(
                handler, self.spec.address, port, ssl=context, reuse_address=True, backlog=64
            )
        except OSError as exc:
            raise _cannot_listen(self.spec.address, port, exc) from exc

    async def stop(self) -> None:
        """Close the listeners and drop every open connection: the host has gone away."""
        servers, self.servers = self.servers, []
        for server in servers:
            server.close()
        self.winrm.drop_connections()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        service_process.watch_restarts(self.state, None)
        if self.sip is not None:
            await self.sip.stop()
            self.sip = None
        self.service.reset()

    def reload(self) -> None:
        """Load the state file again (tests edit it; a restarted host reads what was on disk)."""
        self.state.data = HostState.load(self.spec.state_path).data


def _cannot_listen(address: str, port: int, exc: OSError) -> OSError:
    # asyncio's text names a tuple; the lab's launcher shows this one line to whoever started the lab.
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return OSError(exc.errno, f"cannot listen on {address}:{port}: {reason}")
