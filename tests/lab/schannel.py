"""Schannel as a client that checks revocation (``SslStream`` with ``checkCertificateRevocation: true``), and a
small TLS server for the twins' SIP-style port (5061).

The probe makes a real TCP connection and a real TLS handshake (stdlib ``ssl``, trusting the host's Root store,
SNI and host-name check on), then builds the peer's chain and checks its revocation with
``tests.lab.cryptoapi.check_chain_revocation``. On Windows the revocation check runs inside the handshake
(certificate validation happens before the client's Finished/when the credentials are validated); here it runs
right after the TLS library's own handshake, and ``handshake_ms`` is the sum of both, which is what a caller of
``AuthenticateAsClient`` measures. The peer's intermediate is taken from the handshake when the stdlib exposes it
(``get_verified_chain``, Python 3.13+), else from the host's CA store (the chain Windows would build from its
stores before fetching AIA, which the lab does not model).
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab.cryptoapi import DEFAULT_CHAIN_TIMEOUT, DEFAULT_URL_TIMEOUT, check_chain_revocation
from tests.lab.winhttp import (
    DEFAULT_POLICY,
    ERROR_WINHTTP_TIMEOUT,
    OutboundPolicy,
    WinHttpProxy,
    blackhole_wait,
    resolve,
)

SIP_TLS_PORT = 5061
# The wire observer of each handshake in flight, by its SSLSocket (_observe routes the context's messages here).
_WIRES: dict[int, _Wire] = {}


def _ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def _store_ders(stores: dict, name: str) -> list[bytes]:
    return [base64.b64decode(c["der_b64"]) for c in stores.get(name, [])]


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode("ascii")


def build_chain(leaf_der: bytes, candidates: list[bytes]) -> list[bytes]:
    """Leaf first, then each issuer found among ``candidates`` by subject name, up to a self-signed root."""
    by_subject = {x509.load_der_x509_certificate(d).subject: d for d in candidates}
    chain, current = [leaf_der], x509.load_der_x509_certificate(leaf_der)
    while current.issuer != current.subject and current.issuer in by_subject and len(chain) < 8:
        der = by_subject[current.issuer]
        chain.append(der)
        current = x509.load_der_x509_certificate(der)
    return chain


class ClientSessions:
    """What one client process keeps between its TLS handshakes, as .NET Framework does: a client context per
    credential (``SslSessionsCache``'s credential handles) and the session each credential last made with a target
    (Schannel's client cache), so that the next handshake to the same target with the same credential offers it and
    resumes when the server agrees ("The Framework caches SSL sessions as they are created and attempts to reuse a
    cached session for a new request", the SslStream documentation quoted in dotnet/runtime#65563). One per script run:
    each command is a new ``powershell.exe``.

    Not modelled: .NET starting a certificate credential's first handshake anonymously (SecureChannel.
    AcquireClientCredentials), which would resume an anonymous session to the same target; the scripts never make
    an anonymous handshake to a peer before its first certificate handshake has sent its ClientHello.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: dict[Any, ssl.SSLContext] = {}
        self._sessions: dict[tuple[str, Any], ssl.SSLSession] = {}

    def context(self, key: Any, make: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        with self._lock:
            if key not in self._contexts:
                self._contexts[key] = make()
            return self._contexts[key]

    def session(self, target: str, credential: Any) -> ssl.SSLSession | None:
        with self._lock:
            return self._sessions.get((target.lower(), credential))

    def keep(self, target: str, credential: Any, session: ssl.SSLSession | None) -> None:
        if session is not None:
            with self._lock:
                self._sessions[(target.lower(), credential)] = session


class _Wire:
    """What the handshake messages on the wire showed (the collection's handshake tap, _tls.ps1, reads the same from
    the TLS records): the server's CertificateRequest, the client's non-empty Certificate, the ClientHello sent."""

    def __init__(self, hello: threading.Event | None) -> None:
        self.hello = hello
        self.requested: bool | None = None
        self.sent: bool | None = None

    def message(self, direction: str, content_type: int, message_type: int, data: bytes) -> None:
        if content_type != 22:  # handshake messages only
            return
        if direction == "write" and message_type == 1 and self.hello is not None:
            self.hello.set()
        elif direction == "read" and message_type == 13:
            self.requested = True
        elif direction == "write" and message_type == 11 and len(data) >= 7:
            self.sent = int.from_bytes(data[4:7], "big") > 0


def _observe(context: ssl.SSLContext, wires: dict[int, _Wire]) -> None:
    """Route the context's handshake messages to the wire of their connection (``SSLContext._msg_callback``, the
    stdlib's debugging hook; without it the fields stay unknown)."""
    def callback(conn, direction, _version, content_type, message_type, data):
        wire = wires.get(id(conn))
        if wire is not None:
            wire.message(direction, int(content_type), int(message_type), bytes(data))
    if hasattr(context, "_msg_callback"):
        context._msg_callback = callback


def parse_peer(peer: str) -> tuple[str, int]:
    host, sep, port = peer.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"peer: expected 'host:port', got {peer!r}")
    return host, int(port)


def probe(peer: str, **options: Any) -> dict:
    """:func:`handshake`; ``hello`` is set when it returns, so a handshake that failed before its ClientHello does not
    hold whatever waits for that ClientHello."""
    try:
        return handshake(peer, **options)
    finally:
        if options.get("hello") is not None:
            options["hello"].set()


def handshake(
    peer: str,
    *,
    sni: str,
    stores: dict,
    proxy: WinHttpProxy,
    names: dict[str, str],
    cache: dict,
    per_url_timeout: float = DEFAULT_URL_TIMEOUT,
    total_timeout: float = DEFAULT_CHAIN_TIMEOUT,
    connect_timeout: float = 5.0,
    policy: OutboundPolicy | None = None,
    client_cert: tuple[Path, Path] | None = None,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
    check_revocation: bool = True,
    max_version: ssl.TLSVersion | None = None,
    limit: Callable[[ssl.SSLContext], ssl.SSLContext] | None = None,
    sessions: ClientSessions | None = None,
    hello: threading.Event | None = None,
) -> dict:
    """One TLS handshake from a host (its cert ``stores``, WinHTTP ``proxy``, URL ``cache``) to ``peer``.

    Returns ``peer, sni, tcp_connect_ms, handshake_ms, tls_ms, revocation_ms, protocol, chain_status``
    (ok / revoked / revocation_offline / untrusted, None when no handshake happened), ``trust_status``,
    ``revocation`` (the full ``check_chain_revocation`` result) and ``error``. Never raises for network
    failures. ``client_cert`` = (cert PEM, key PEM) for mutual TLS, as Lync servers do on 5061.
    ``check_revocation`` false skips the revocation check (``SslStream`` with ``checkCertificateRevocation``
    false): ``chain_status`` is then ``ok`` and ``revocation`` None. ``max_version`` caps the client's TLS
    version (Schannel offers TLS 1.3 only from build 20348); ``limit`` sets the client's protocols instead (a twin's
    host class, ``tests/twin/host_classes.HostClass.limit``). ``sessions``: the process's cached sessions
    (:class:`ClientSessions`): the handshake offers the one this credential made with ``sni`` and reports
    ``resumed``; the revocation check of the server's chain runs on a resumed handshake too, as .NET Framework's
    SslStream validates the remote certificate after every handshake (_SslState.CompleteHandshake). ``hello`` is set
    once the ClientHello is sent. Also ``certificate_requested``/``certificate_sent`` as the handshake messages showed
    them (None: unknown), and ``peer_certificate_der``, the end-entity certificate the peer sent (DER).
    """
    host, port = parse_peer(peer)
    result = {
        "peer": peer,
        "sni": sni,
        "tcp_connect_ms": None,
        "handshake_ms": None,
        "tls_ms": None,
        "revocation_ms": None,
        "protocol": None,
        "chain_status": None,
        "trust_status": [],
        "revocation": None,
        "error": None,
        "resumed": None,
        "certificate_requested": None,
        "certificate_sent": None,
        "peer_certificate_der": None,
    }
    address = resolve(host, names)
    if address is None:
        result["error"] = f"peer: cannot resolve {host!r}"
        return result
    start = time.monotonic()
    if not (policy or DEFAULT_POLICY).reachable(address):
        blackhole_wait(connect_timeout, cancel)
        result.update(tcp_connect_ms=_ms(start), error=f"TCP connect: {ERROR_WINHTTP_TIMEOUT}")
        return result
    try:
        sock = socket.create_connection((address, port), timeout=connect_timeout)
    except OSError as exc:
        result.update(tcp_connect_ms=_ms(start), error=f"TCP connect to {address}:{port} failed: {exc}")
        return result
    result["tcp_connect_ms"] = _ms(start)
    roots = _store_ders(stores, "Root")
    credential = (str(client_cert[0]), str(client_cert[1])) if client_cert else None

    def make_context() -> ssl.SSLContext:
        made = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        made.minimum_version = ssl.TLSVersion.TLSv1_2
        if max_version is not None:
            made.maximum_version = max_version
        if limit is not None:
            limit(made)
        if roots:
            made.load_verify_locations(cadata="".join(_pem(d) for d in roots))
        if client_cert:
            made.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
        _observe(made, _WIRES)
        return made

    ctx = make_context() if sessions is None else sessions.context((credential, tuple(roots), max_version, limit),
                                                                   make_context)
    wire, wire_id = _Wire(hello), None
    hs_start = time.monotonic()
    try:
        with ctx.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False) as tls:
            tls.settimeout(connect_timeout)
            offered = sessions.session(sni, credential) if sessions is not None else None
            if offered is not None:
                try:
                    tls.session = offered
                except (ValueError, ssl.SSLError):
                    pass  # not resumable any more: a full handshake
            wire_id = id(tls)
            _WIRES[wire_id] = wire
            try:
                tls.do_handshake()
            except ssl.SSLCertVerificationError as exc:
                result.update(
                    tls_ms=_ms(hs_start),
                    handshake_ms=_ms(hs_start),
                    chain_status="untrusted",
                    error=f"TLS: certificate verification failed: {exc.verify_message}",
                )
                return result
            result["tls_ms"] = _ms(hs_start)
            result["protocol"] = tls.version()
            result["resumed"] = tls.session_reused
            # TLS 1.0-1.2 (the probes never offer 1.3): a resumed handshake has no CertificateRequest and sends no
            # Certificate (RFC 5246 7.3).
            result["certificate_requested"] = bool(wire.requested)
            result["certificate_sent"] = bool(wire.sent)
            if sessions is not None:
                sessions.keep(sni, credential, tls.session)
            leaf = tls.getpeercert(binary_form=True)
            result["peer_certificate_der"] = leaf
            verified = getattr(tls, "get_verified_chain", None)
            candidates = [c if isinstance(c, bytes) else c.public_bytes() for c in verified()] if verified else []
            chain = build_chain(leaf, candidates + _store_ders(stores, "CA") + roots)
            if not check_revocation:
                result.update(handshake_ms=_ms(hs_start), revocation_ms=0, chain_status="ok")
                return result
            rev_start = time.monotonic()
            check = check_chain_revocation(
                chain,
                proxy=proxy,
                names=names,
                cache=cache,
                now=now,
                per_url_timeout=per_url_timeout,
                total_timeout=total_timeout,
                policy=policy,
                cancel=cancel,
            )
            result.update(
                revocation_ms=_ms(rev_start),
                handshake_ms=_ms(hs_start),
                chain_status=check["status"],
                trust_status=check["trust_status"],
                revocation=check,
            )
            try:
                tls.unwrap()
            except (OSError, ssl.SSLError):
                pass
    except (OSError, ssl.SSLError) as exc:
        result.update(handshake_ms=result["handshake_ms"] or _ms(hs_start), error=f"TLS: {exc}")
    finally:
        if wire_id is not None:
            _WIRES.pop(wire_id, None)
    return result


# X509_PURPOSE_ANY (openssl/x509v3.h): verify a chain without tying its leaf to one use.
X509_PURPOSE_ANY = 7


def accept_any_client_purpose(context: ssl.SSLContext) -> None:
    """Let a server context take a client certificate whatever its EKUs say, as a Lync server takes its peers'.

    OpenSSL checks a client certificate for the Client Authentication EKU; Schannel leaves client certificates to the
    application ("Schannel does not validate client's certificates", Microsoft Learn, "Performing Authentication Using
    Schannel"), and Lync's certificates need only Server Authentication (Microsoft Learn, "Certificate requirements
    for internal servers in Lync Server 2010"). The stdlib has no setting for it: ``SSL_CTX_set_purpose`` is called
    through ctypes on the context's ``SSL_CTX`` (CPython's ``PySSLContext`` holds it right after the object header;
    the symbol resolves through the ``_ssl`` module's own libssl). Raises when it cannot be set.
    """
    import _ssl  # noqa: PLC0415 - only the twin's listener needs it
    import ctypes  # noqa: PLC0415

    library = ctypes.CDLL(_ssl.__file__)
    library.SSL_CTX_set_purpose.argtypes = [ctypes.c_void_p, ctypes.c_int]
    library.SSL_CTX_set_purpose.restype = ctypes.c_int
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or library.SSL_CTX_set_purpose(pointer, X509_PURPOSE_ANY) != 1:
        raise RuntimeError("SSL_CTX_set_purpose(X509_PURPOSE_ANY) failed on the listener's context")


def server_context(certfile: Path, keyfile: Path, *, client_ca: Path | None = None,
                   limit: Callable[[ssl.SSLContext], ssl.SSLContext] | None = None) -> ssl.SSLContext:
    """Server-side context for a twin's TLS port (``certfile`` = leaf + intermediate PEM, as pki writes it).

    With ``client_ca`` the server requests and verifies a client certificate (mutual TLS, like Lync's 5061).
    Usable with ``asyncio.start_server(..., ssl=server_context(...))`` as well as with ``TlsServer``. ``limit`` sets
    the protocols the server speaks (a twin's host class), else TLS 1.2 and up.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if limit is not None:
        limit(ctx)
    ctx.load_cert_chain(str(certfile), str(keyfile))
    if client_ca:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class TlsServer:
    """A threaded TLS listener on ``address:port``: completes handshakes, then waits for the client to close."""

    def __init__(
        self,
        address: str,
        port: int,
        certfile: Path,
        keyfile: Path,
        *,
        client_ca: Path | None = None,
        idle_timeout: float = 30.0,
    ) -> None:
        self.address, self.port, self.idle_timeout = address, port, idle_timeout
        self.context = server_context(certfile, keyfile, client_ca=client_ca)
        self.handshakes = 0
        self._stop = threading.Event()
        self._sock: socket.socket | None = None

    def start(self) -> TlsServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"TlsServer: cannot listen on {self.address}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]  # port 0 picks a free one
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.idle_timeout)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                while not self._stop.is_set() and tls.recv(4096):
                    pass
        except (OSError, ssl.SSLError):
            pass  # a client that hangs up mid-handshake or without close_notify is normal here

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> TlsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
