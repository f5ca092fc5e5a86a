"""A twin's SIP-style TLS port (5061, as Lync Server front ends use for SIP over mutual TLS).

The listener presents the host's leaf certificate from the lab PKI (``<lab_dir>/pki/hosts/<fqdn>.crt``, leaf +
issuing CA) so that a ``tls_probe`` from another twin is a real TLS handshake; it speaks no SIP. It speaks the TLS
versions the host's class enables (``tests/twin/host_classes.py``): TLS 1.0 only on a 2008 R2 (7601) host, 1.0-1.2 on
2012 R2 to 2019, 1.0-1.3 on 2022.

Mutual TLS as Lync does it on 5061 (Microsoft Learn, Lync Server certificate requirements: MTLS between servers):
the listener *requests* a client certificate and does not require one (clients and servers share the port). When
one comes, the host checks its chain's revocation with **its own** state (its WinHTTP proxy, URL cache and
ChainEngine timeouts, as ``tls_probe`` does for the other direction) before it finishes the handshake, so the
connecting host's handshake takes as long as this host's retrieval: both ends' revocation work, as in the 33019
event. Python's ``ssl`` has no
verify callback that may block, so the handshake runs over ``ssl.MemoryBIO``: in TLS 1.0-1.2 the server's last
flight (ChangeCipherSpec + Finished) is what the client waits for after sending its certificate, and the listener
holds that flight back until the check is done. In TLS 1.3 the server's Finished goes out before the client's
certificate arrives, so the client's handshake ends without waiting for the check (only its first read would);
the twin's prober never offers TLS 1.3 (PowerShell 5.1 names TLS 1.0-1.2), so the difference does not arise here.
Schannel differs in what it does with the result (Lync refuses an untrusted server and treats the rest as a client);
the listener records the outcome in ``client_checks`` and completes the handshake either way: it measures the cost.

The listener's context keeps a server session cache (OpenSSL's, with tickets), as Schannel keeps one: a client that
offers a session it made before resumes it, sends no certificate, and the listener checks nothing (``resumed``); the
revocation cost of mutual TLS is paid on full handshakes only.

Running the handshake over MemoryBIO also sends the TLS alert of a failed handshake (asyncio's own TLS transport
closes without flushing it), so a prober sharing no protocol with this host sees ``protocol version``, as a real
client sees the server's alert.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.lab.cryptoapi import check_chain_revocation
from tests.lab.schannel import accept_any_client_purpose, build_chain, server_context
from tests.twin import event_logs, revocation, service_process
from tests.twin.state import HostState

IDLE_SECONDS = 30.0
READ_SIZE = 16384
# Client certificates one service checks at once: the twin's choice (a Windows service checks each connection in a
# thread of its own process; no figure is published). A host's checks wait only for its own threads.
MAX_CHECKS = 32


def check_pool(name: str) -> ThreadPoolExecutor:
    """The threads one twin's service checks client certificates in (made as handshakes come)."""
    return ThreadPoolExecutor(max_workers=MAX_CHECKS, thread_name_prefix=f"{name} 5061")


class SipTlsListener:
    def __init__(self, address: str, port: int, certfile: Path, keyfile: Path, state: HostState,
                 checks: ThreadPoolExecutor) -> None:
        self.address, self.port = address, port
        self.state = state
        self.checks = checks  # this host's own threads for client-certificate checks (check_pool)
        self.context = server_context(certfile, keyfile, limit=state.host_class.limit)
        roots = [base64.b64decode(c["der_b64"]) for c in state.data.get("cert_stores", {}).get("Root", [])]
        if roots:
            # Request, not require: CERT_OPTIONAL asks for a certificate and checks one that comes against the roots.
            self.context.load_verify_locations(cadata=b"".join(roots))
            self.context.verify_mode = ssl.CERT_OPTIONAL
            # A peer's certificate for Server Authentication only is taken, as Lync takes it (schannel docstring).
            accept_any_client_purpose(self.context)
        self.server: asyncio.base_events.Server | None = None
        self.reopening: asyncio.TimerHandle | None = None  # a paused listener's scheduled reopening
        self.writers: set[asyncio.StreamWriter] = set()
        self.handshakes = 0
        self.resumed = 0  # handshakes that resumed a cached session: no certificate came, nothing was checked
        self.client_checks: list[dict[str, Any]] = []

    async def start(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(
                self._serve, self.address, self.port, reuse_address=True, backlog=64
            )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_side=True)
        self.writers.add(writer)
        try:
            if not await self._handshake(tls, reader, writer, incoming, outgoing):
                return
            self.handshakes += 1
            data = b""
            while True:
                incoming.write(data)
                if _closed_by_peer(tls):
                    # Answer the client's close_notify with ours, as a TLS stack does: a client's bidirectional
                    # shutdown (SSLSocket.unwrap) waits for it until its socket timeout otherwise.
                    with contextlib.suppress(ssl.SSLError):
                        tls.unwrap()
                    await _flush(outgoing, writer)
                    return
                await _flush(outgoing, writer)
                data = await asyncio.wait_for(reader.read(READ_SIZE), IDLE_SECONDS)
                if not data:
                    break
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _handshake(self, tls: ssl.SSLObject, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> bool:
        """Run the server handshake; hold the last flight back while a client certificate's revocation is checked."""
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await _flush(outgoing, writer)
                data = await asyncio.wait_for(reader.read(READ_SIZE), IDLE_SECONDS)
                if not data:
                    return False
                incoming.write(data)
            except ssl.SSLError:
                await _flush(outgoing, writer)  # the alert (protocol version, bad certificate) reaches the client
                return False
        client = tls.getpeercert(binary_form=True)
        if tls.session_reused:
            # A resumed session (RFC 5246 7.3, session ID or ticket): no Certificate message comes, the certificate of
            # the session's first handshake stands, and nothing is checked again: Schannel keeps a session's
            # credentials for its cache lifetime (SCHANNEL_CRED dwSessionLifespan, 10 h by default).
            self.resumed += 1
        elif client is not None:
            loop = asyncio.get_running_loop()
            # In this host's own threads: another host's slow checks never delay this one (a machine of its own).
            self.client_checks.append(await loop.run_in_executor(self.checks, self._check_client, client))
        await _flush(outgoing, writer)
        return True

    def _check_client(self, leaf: bytes) -> dict[str, Any]:
        """The client certificate's chain, revocation checked with this host's own CryptoAPI state."""
        world = revocation.world()
        stores = self.state.data.get("cert_stores", {})
        candidates = [base64.b64decode(c["der_b64"]) for name in ("CA", "Root") for c in stores.get(name, [])]
        per_url, per_chain = revocation.retrieval_timeouts(self.state)
        # The service's own process: its memory cache, offline list and WinHTTP session (service_process.py).
        generation = self.state.data  # a reload (a test replacing the host's state) ends what this check may write
        cache, failing = service_process.prepare(self.state)
        before = {url: dict(entry) for url, entry in cache.items()}
        started = time.monotonic()
        check = check_chain_revocation(build_chain(leaf, candidates), proxy=service_process.session_proxy(self.state),
                                       names=world.names, cache=cache, per_url_timeout=per_url,
                                       total_timeout=per_chain, policy=world.policy, cancel=revocation.SHUTDOWN,
                                       offline=frozenset(failing), now=self.state.now())  # by the host's clock
        if self.state.data is generation:
            service_process.record(self.state, before, cache, check["retrievals"])
            revocation.merge_cache(self.state, before, cache)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        # A Lync host whose side of a mutual negotiation outlasts Lync's limit logs LS IM MCU 33019 (a host without
        # the Lync Server log writes nothing): cryptoapi-research.md 2.3, the event this collection exists for.
        if self.state.data is generation:
            event_logs.lync_tls_negotiation(self.state, peer_fqdn=_subject_name(leaf), elapsed_ms=elapsed_ms)
        thumbprint = hashlib.sha1(leaf, usedforsecurity=False).hexdigest().upper()  # the certificate presented
        return {"status": check["status"], "ms": elapsed_ms, "thumbprint": thumbprint}

    async def pause(self, seconds: float) -> None:
        """The service behind the port restarted: its old process's connections and listener are gone, and the new
        process listens only ``seconds`` later (the SCM already says Running; tests/twin/service_process.py)."""
        await self.stop()
        loop = asyncio.get_running_loop()
        self.reopening = loop.call_later(seconds, lambda: loop.create_task(self._reopen()))

    async def _reopen(self) -> None:
        self.reopening = None
        with contextlib.suppress(OSError):  # the address was taken meanwhile: the port stays closed, as it would
            await self.start()

    async def stop(self) -> None:
        if self.reopening is not None:
            self.reopening.cancel()
            self.reopening = None
        server, self.server = self.server, None
        if server is None:
            return
        server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def _subject_name(leaf: bytes) -> str:
    """The client certificate's first DNS name (else its CN): the FE hostname the 33019 message names."""
    cert = x509.load_der_x509_certificate(leaf)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if names:
        return names[0].upper()
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value).upper() if common else "?"


def _closed_by_peer(tls: ssl.SSLObject) -> bool:
    """Read what arrived (the listener speaks no SIP, so it is dropped); True once the client sent close_notify."""
    try:
        while tls.read(READ_SIZE):
            pass
    except ssl.SSLWantReadError:
        return False
    except ssl.SSLZeroReturnError:
        return True
    return True  # read() answered b"": the TLS session is closed


async def _flush(outgoing: ssl.MemoryBIO, writer: asyncio.StreamWriter) -> None:
    data = outgoing.read()
    if data:
        writer.write(data)
        await writer.drain()
