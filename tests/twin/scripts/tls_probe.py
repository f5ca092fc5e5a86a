"""``tls_probe`` schema 1: TLS handshakes with revocation checking, as Schannel does them (host-scripts.md).

Each sample is ``tests.lab.schannel.probe``: a real TCP connect and TLS handshake to the peer (another twin's
SIP-style port, or anything on loopback), then the peer's chain is checked for revocation through this host's
CryptoAPI model: its WinHTTP proxy (native view), its URL cache (read before, written through after every
sample, so a later sample finds what an earlier one cached) and its ChainEngine retrieval timeouts. Peers run
in parallel (one thread each, like the script's runspace pool); samples of one peer one after another.
Results are translated to what ``SslStream`` reports on Windows: ``SslProtocols`` names,
``X509ChainStatusFlags`` names, ``SslPolicyErrors`` text and .NET exception messages.
"""

from __future__ import annotations

import ipaddress
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.lab import schannel
from tests.lab.winhttp import resolve
from tests.twin import revocation
from tests.twin.scripts import ScriptContext, ScriptError, require

NAME = "tls_probe"
SCHEMAS = {1}
BLOCKING = True  # handshakes and modelled retrieval waits: run in a worker thread
MAX_PEERS = 64
MAX_SAMPLES = 50
PROTOCOLS = {"TLSv1.2": "Tls12", "TLSv1.3": "Tls13"}  # SslProtocols member names
# CERT_TRUST_* bits -> X509ChainStatusFlags names (wincrypt.h / .NET X509ChainStatusFlags, same values).
CHAIN_FLAGS = {
    "CERT_TRUST_IS_REVOKED": "Revoked",
    "CERT_TRUST_REVOCATION_STATUS_UNKNOWN": "RevocationStatusUnknown",
    "CERT_TRUST_IS_OFFLINE_REVOCATION": "OfflineRevocation",
}
# .NET messages (SocketException / AuthenticationException / IOException) as the contract quotes them.
REFUSED = "No connection could be made because the target machine actively refused it {address}:{port}"
CONNECT_TIMEOUT = "The TCP connection timed out"
NO_SUCH_HOST = "No such host is known"
CLOSED = "Authentication failed because the remote party has closed the transport stream."


def _validate(args: dict[str, Any]) -> tuple[list[dict[str, Any]], int, float, bool]:
    peers = require(args, "peers", list)
    if len(peers) > MAX_PEERS:
        raise ScriptError(f"argument 'peers': at most {MAX_PEERS} peers, got {len(peers)}")
    for index, peer in enumerate(peers):
        if not isinstance(peer, dict) or not isinstance(peer.get("host"), str) or not peer["host"]:
            raise ScriptError(f"argument 'peers[{index}]': expected {{host, port, sni}}, got {peer!r}")
        port = peer.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ScriptError(f"argument 'peers[{index}].port': expected 1-65535, got {port!r}")
    samples = require(args, "samples", int, 3)
    if isinstance(samples, bool) or not 1 <= samples <= MAX_SAMPLES:
        raise ScriptError(f"argument 'samples': expected 1-{MAX_SAMPLES}, got {samples!r}")
    timeout_ms = require(args, "timeout_ms", int, 20000)
    if isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise ScriptError(f"argument 'timeout_ms': expected a positive integer, got {timeout_ms!r}")
    return peers, samples, timeout_ms / 1000, require(args, "check_revocation", bool, True)


def _peer_text(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def _translate(raw: dict[str, Any], address: str | None, port: int) -> dict[str, Any]:
    sample: dict[str, Any] = {"tcp_connect_ms": raw["tcp_connect_ms"], "handshake_ms": raw["handshake_ms"],
                              "protocol": PROTOCOLS.get(raw["protocol"] or "", raw["protocol"]),
                              "chain_status": [], "policy_errors": "None", "error": None}
    error = raw["error"] or ""
    if error.startswith("peer: cannot resolve"):
        return {**sample, "tcp_connect_ms": None, "error": NO_SUCH_HOST}
    if error.startswith("TCP connect"):
        text = REFUSED.format(address=address, port=port) if "refused" in error.lower() else CONNECT_TIMEOUT
        return {**sample, "tcp_connect_ms": None, "handshake_ms": None, "error": text}
    if raw["chain_status"] == "untrusted":
        # Windows: the validation callback sees the errors and accepts (the probe measures, not enforces).
        if "mismatch" in error.lower():
            return {**sample, "policy_errors": "RemoteCertificateNameMismatch"}
        return {**sample, "chain_status": ["UntrustedRoot"], "policy_errors": "RemoteCertificateChainErrors"}
    if error:
        text = CLOSED if "eof" in error.lower() or "reset" in error.lower() else error.removeprefix("TLS: ")
        return {**sample, "error": text}
    flags = [CHAIN_FLAGS[name] for name in raw["trust_status"] if name in CHAIN_FLAGS]
    return {**sample, "chain_status": flags, "policy_errors": "RemoteCertificateChainErrors" if flags else "None"}


# A sample host_audit did not run because an earlier one of the same peer was revocation-unknown.
SKIPPED = {"tcp_connect_ms": None, "handshake_ms": None, "protocol": None, "chain_status": [], "policy_errors": None,
           "error": None, "skipped": True}
UNKNOWN = frozenset({"RevocationStatusUnknown", "OfflineRevocation"})


def _probe_peer(ctx: ScriptContext, peer: dict[str, Any], samples: int, timeout: float, check: bool,
                stop_after_unknown: bool = False) -> dict:
    world = revocation.world()
    host, port = peer["host"], peer["port"]
    sni = peer.get("sni") or host
    per_url, per_chain = revocation.retrieval_timeouts(ctx.state)
    max_version = None if ctx.state.os_build >= revocation.TLS13_MIN_BUILD else ssl.TLSVersion.TLSv1_2
    address = resolve(host, world.names)
    out: list[dict[str, Any]] = []
    stopped = False
    for _sample in range(samples):
        if stopped:
            out.append(dict(SKIPPED))
            continue
        cache = revocation.load_cache(ctx.state)
        before = {url: dict(entry) for url, entry in cache.items()}
        raw = schannel.probe(
            _peer_text(host, port),
            sni=sni,
            stores=ctx.state.data.get("cert_stores", {}),
            proxy=revocation.host_proxy(ctx.state),
            names=world.names,
            cache=cache,
            per_url_timeout=per_url,
            total_timeout=per_chain,
            connect_timeout=timeout,
            policy=world.policy,
            cancel=revocation.SHUTDOWN,
            check_revocation=check,
            max_version=max_version,
        )
        revocation.merge_cache(ctx.state, before, cache)
        out.append(_translate(raw, address, port))
        stopped = stop_after_unknown and bool(UNKNOWN.intersection(out[-1]["chain_status"]))
    return {"host": host, "port": port, "sni": sni, "samples": out}


def probe_all(ctx: ScriptContext, args: dict[str, Any], *, stop_after_unknown: bool = False) -> dict[str, Any]:
    """The document body for ``args``; host_audit passes ``stop_after_unknown``."""
    peers, samples, timeout, check = _validate(args)
    if not peers:
        return {"results": []}
    with ThreadPoolExecutor(max_workers=len(peers), thread_name_prefix="tls_probe") as pool:
        futures = [pool.submit(_probe_peer, ctx, peer, samples, timeout, check, stop_after_unknown) for peer in peers]
        return {"results": [f.result() for f in futures]}


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    return probe_all(ctx, args)
