"""A twin's SIP-style TLS port (5061, as Lync Server front ends use for SIP over mutual TLS).

The listener presents the host's leaf certificate from the lab PKI (``<lab_dir>/pki/hosts/<fqdn>.crt``, leaf +
issuing CA) so that a ``tls_probe`` from another twin is a real TLS handshake. It completes the handshake and
then waits for the client to hang up; it speaks no SIP. It does not ask for a client certificate: the probe's
``SslStream.AuthenticateAsClient`` sends none (a Lync peer would, and would check its revocation too: the
server side's revocation check is not modelled). It speaks the TLS versions the host's class enables
(``tests/twin/host_classes.py``): TLS 1.0 only on a 2008 R2 (7601) host, 1.0-1.2 on 2012 R2 to 2019, 1.0-1.3 on 2022.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

from tests.lab.schannel import server_context
from tests.twin.host_classes import HostClass

IDLE_SECONDS = 30.0


class SipTlsListener:
    def __init__(self, address: str, port: int, certfile: Path, keyfile: Path, host_class: HostClass) -> None:
        self.address, self.port = address, port
        self.context = server_context(certfile, keyfile, limit=host_class.limit)
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.handshakes = 0

    async def start(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(
                self._serve, self.address, self.port, ssl=self.context, reuse_address=True, backlog=64
            )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1  # asyncio calls us once the TLS handshake has completed
        self.writers.add(writer)
        try:
            while await asyncio.wait_for(reader.read(4096), IDLE_SECONDS):
                pass
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
