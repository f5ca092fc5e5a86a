"""``tls_probe`` schema 1: TLS handshakes with revocation checking, as Schannel does them (host-scripts.md).

Each sample is ``tests.lab.schannel.probe``: a real TCP connect and TLS handshake to the peer (another twin's
SIP-style port, or anything on loopback), then the peer's chain is checked for revocation through this host's
CryptoAPI model: its WinHTTP proxy (native view), its URL cache (read before, written through after every
sample, so a later sample finds what an earlier one cached) and its ChainEngine retrieval timeouts. Peers run
in parallel (one thread each, like the script's runspace pool); samples of one peer one after another.
Results are translated to what ``SslStream`` reports on Windows: ``SslProtocols`` names,
``X509ChainStatusFlags`` names, ``SslPolicyErrors`` text and .NET exception messages.

``host_audit``'s time box (``probe_all(box=...)``), as ``_ps1/_tls.ps1`` does it: a sample that would start after the
box ended, or ended after it, is cut (the box's text, later samples skipped); the connect and the handshake's socket
waits last at most until the box ends (on Windows the connect's ``Task.Wait`` is shortened and the socket is closed
when the box ends); a peer still running then is abandoned with its finished samples and ``cut_samples``' rest.
The box's cancel event ends the abandoned sample's modelled retrieval waits; its result and cache writes are dropped.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.lab import schannel
from tests.lab.winhttp import resolve
from tests.twin import event_logs, identities, revocation
from tests.twin.scripts import ScriptContext, ScriptError, require

if TYPE_CHECKING:
    from tests.twin.scripts.host_audit import TimeBox

NAME = "tls_probe"
SCHEMAS = {1}
BLOCKING = True  # handshakes and modelled retrieval waits: run in a worker thread
MAX_SAMPLES = 50
PROTOCOLS = {"TLSv1": "Tls", "TLSv1.1": "Tls11", "TLSv1.2": "Tls12", "TLSv1.3": "Tls13"}  # SslProtocols member names
# What Get-CrlfixTlsProtocols offers in Windows PowerShell 5.1 without SystemDefaultTlsVersions=1 (the twin models no
# such value): TLS 1.0-1.2 by name, never 1.3 (../shared/identity-evidence-research.md section 5). Schannel leaves out
# what the host's class does not enable.
OFFERED = ("Tls", "Tls11", "Tls12")
# SEC_E_ALGORITHM_MISMATCH (0x80090331), the innermost exception's message when client and server share no protocol.
NO_COMMON_PROTOCOL = "The client and server cannot communicate, because they do not possess a common algorithm"
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
                              "protocol": PROTOCOLS.get(raw["protocol"] or "", raw["protocol"]), "mutual": False,
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
    if _no_common_protocol(error):
        return {**sample, "protocol": None, "error": NO_COMMON_PROTOCOL}
    if error:
        text = CLOSED if "eof" in error.lower() or "reset" in error.lower() else error.removeprefix("TLS: ")
        return {**sample, "error": text}
    flags = [CHAIN_FLAGS[name] for name in raw["trust_status"] if name in CHAIN_FLAGS]
    return {**sample, "chain_status": flags, "policy_errors": "RemoteCertificateChainErrors" if flags else "None"}


def _no_common_protocol(error: str) -> bool:
    """OpenSSL's words (either end) for a handshake that found no protocol or cipher both ends enable.

    Schannel reports both cases with one error, SEC_E_ALGORITHM_MISMATCH. A TLS 1.0-only OpenSSL server answers a
    client that wants TLS 1.2 with a ``handshake failure`` alert (it picks TLS 1.0, then shares no cipher).
    """
    lowered = error.lower()
    return any(text in lowered for text in ("unsupported protocol", "no protocols available", "protocol version",
                                            "wrong version number", "alert handshake failure", "no shared cipher"))


def offered_protocols(ctx: ScriptContext) -> tuple[str, ...]:
    """The protocols the probe offers that the host's class enables (SslProtocols names)."""
    enabled = ctx.state.host_class.tls_protocols
    return tuple(name for name in OFFERED if name in enabled)


# A sample host_audit did not run because an earlier one of the same peer was revocation-unknown.
SKIPPED = {"tcp_connect_ms": None, "handshake_ms": None, "protocol": None, "mutual": False, "chain_status": [],
           "policy_errors": None, "error": None, "skipped": True}
UNKNOWN = frozenset({"RevocationStatusUnknown", "OfflineRevocation"})


def cut_samples(done: list[dict[str, Any]], samples: int, stop_after_unknown: bool, box: TimeBox) -> list[dict]:
    """``Complete-CrlfixCut``: a peer abandoned at the time box keeps its finished samples; the first one that did not
    finish gets the box's text (unless the peer had already stopped), the rest are skipped."""
    out = list(done)
    stopped = any(s.get("error") == box.text or s.get("skipped") for s in out)
    stopped = stopped or (stop_after_unknown and any(UNKNOWN.intersection(s["chain_status"]) for s in out))
    while len(out) < samples:
        out.append(dict(SKIPPED) if stopped else box.cut_sample())
        stopped = True
    return out


def client_certificate(ctx: ScriptContext) -> tuple[Path, Path] | None:
    """``Get-CrlfixClientCertificate``: the host's own lab-PKI leaf and key (the one in its My store), if issued."""
    lab_dir = revocation.world().lab_dir
    if lab_dir is None:
        return None
    cert, key = (lab_dir / "pki" / "hosts" / f"{ctx.state.data['fqdn']}.{ext}" for ext in ("crt", "key"))
    return (cert, key) if cert.exists() and key.exists() else None


def _probe_peer(ctx: ScriptContext, peer: dict[str, Any], samples: int, timeout: float, check: bool,
                stop_after_unknown: bool = False, box: TimeBox | None = None,
                out: list[dict[str, Any]] | None = None, mutual: bool = False,
                live: dict[str, Any] | None = None) -> dict:
    world = revocation.world()
    client_cert = client_certificate(ctx) if mutual else None
    host, port = peer["host"], peer["port"]
    sni = peer.get("sni") or host
    per_url, per_chain = revocation.retrieval_timeouts(ctx.state)
    offered = replace(ctx.state.host_class, tls_protocols=offered_protocols(ctx) or ("Tls12",))
    address = resolve(host, world.names)
    out = [] if out is None else out  # host_audit reads the finished samples from here when it abandons the peer
    live = {} if live is None else live  # and the one-sided handshake ($Live.one_sided in _tls.ps1)
    stopped = False
    one_sided = None
    for index in range(samples + (1 if client_cert else 0)):
        # Mutual TLS: one handshake more without the client certificate, first (as _tls.ps1 does it), so that whose
        # work was slow is known even when the time box cuts the samples after it.
        last = client_cert is not None and index == 0
        if len(out) >= samples:
            break  # a cut one-sided handshake took the first sample's place
        if stopped:
            out.append(dict(SKIPPED))
            continue
        if box is not None and box.expired():
            out.append(box.cut_sample())
            stopped = True
            continue
        cache = revocation.load_cache(ctx.state)
        before = {url: dict(entry) for url, entry in cache.items()}
        raw = schannel.probe(
            _peer_text(host, port),
            sni=sni,
            stores=ctx.state.data.get("cert_stores", {}),
            proxy=identities.cryptoapi_proxy(ctx.state)[1],  # as the connecting admin (KB 2623724)
            names=world.names,
            cache=cache,
            per_url_timeout=per_url,
            total_timeout=per_chain,
            connect_timeout=timeout if box is None else min(timeout, box.remaining()),
            policy=world.policy,
            cancel=box.cancel if box is not None else revocation.SHUTDOWN,
            check_revocation=check,
            limit=offered.limit,
            client_cert=None if last else client_cert,
        )
        if box is not None and box.expired():
            out.append(box.cut_sample())  # ended after the box (a cut one-sided stands for sample 1)
            stopped = True
            continue
        revocation.merge_cache(ctx.state, before, cache)
        event_logs.chain_retrievals(ctx.state, raw.get("revocation"))
        sample = _translate(raw, address, port)
        if last:
            one_sided = live["one_sided"] = {"handshake_ms": sample["handshake_ms"], "error": sample["error"]}
            continue
        # The twin's listener always requests a certificate, so one that was sent made the handshake mutual.
        sample["mutual"] = client_cert is not None and sample["error"] is None and sample["protocol"] is not None
        out.append(sample)
        stopped = stop_after_unknown and bool(UNKNOWN.intersection(out[-1]["chain_status"]))
    return {"host": host, "port": port, "sni": sni, "samples": out, "one_sided": one_sided}


def probe_all(ctx: ScriptContext, args: dict[str, Any], *, stop_after_unknown: bool = False,
              box: TimeBox | None = None) -> dict[str, Any]:
    """The document body for ``args``; host_audit passes ``stop_after_unknown`` and its time box."""
    peers, samples, timeout, check = _validate(args)
    mutual = require(args, "mutual", bool, False)
    if not peers:
        return {"offered_protocols": ", ".join(OFFERED), "results": []}
    pool = ThreadPoolExecutor(max_workers=len(peers), thread_name_prefix="tls_probe")
    try:
        outs: list[list[dict[str, Any]]] = [[] for _peer in peers]
        lives: list[dict[str, Any]] = [{} for _peer in peers]
        futures = [pool.submit(_probe_peer, ctx, peer, samples, timeout, check, stop_after_unknown, box, out, mutual,
                               live) for peer, out, live in zip(peers, outs, lives, strict=True)]
        offered = ", ".join(OFFERED)  # [SslProtocols] 'Tls, Tls11, Tls12'.ToString(), as the script writes it
        if box is None:
            return {"offered_protocols": offered, "results": [f.result() for f in futures]}
        wait(futures, timeout=box.remaining())
        results = []
        for peer, future, out, live in zip(peers, futures, outs, lives, strict=True):
            if future.done():
                results.append(future.result())
            else:
                results.append({"host": peer["host"], "port": peer["port"], "sni": peer.get("sni") or peer["host"],
                                "samples": cut_samples(list(out), samples, stop_after_unknown, box),
                                "one_sided": live.get("one_sided")})
        return {"offered_protocols": offered, "results": results}
    finally:
        pool.shutdown(wait=box is None)


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    return probe_all(ctx, args)
