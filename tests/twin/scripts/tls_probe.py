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

import base64
import functools
import hashlib
import ipaddress
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from tests.lab import schannel
from tests.lab.winhttp import resolve
from tests.twin import event_logs, identities, revocation
from tests.twin.host_classes import HostClass
from tests.twin.scripts import ScriptContext, ScriptError, require

if TYPE_CHECKING:
    from tests.twin.scripts.host_audit import TimeBox

NAME = "tls_probe"
SCHEMAS = {1}
BLOCKING = True  # handshakes and modelled retrieval waits: run in a worker thread
MAX_SAMPLES = 50
PROTOCOLS = {"TLSv1": "Tls", "TLSv1.1": "Tls11", "TLSv1.2": "Tls12", "TLSv1.3": "Tls13"}  # SslProtocols member names
# What Get-CrlfixTlsProtocols offers in Windows PowerShell 5.1 without SystemDefaultTlsVersions=1 (the twin models no
# such value): TLS 1.0-1.2 by name, never 1.3 (Microsoft Learn, "Transport Layer Security (TLS) best practices with
# the .NET Framework"). Schannel leaves out what the host's class does not enable.
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
                              "chain_status": [], "policy_errors": "None", "error": None, "handshake": None,
                              "certificate_requested": None, "certificate_sent": None}
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
           "policy_errors": None, "error": None, "handshake": None, "certificate_requested": None,
           "certificate_sent": None, "skipped": True}
UNKNOWN = frozenset({"RevocationStatusUnknown", "OfflineRevocation"})
# The flags for which the script's validation callback keeps the peer's certificate (peer_certificate_b64).
KEEPS_CERTIFICATE = UNKNOWN | {"Revoked"}


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


SERVER_AUTH, CLIENT_AUTH = "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"


def client_certificate(ctx: ScriptContext, wanted: dict[str, Any] | None) -> tuple[tuple[Path, Path] | None, dict]:
    """``Get-CrlfixClientCertificate``: (cert and key files, the document's ``client_certificate``).

    Of the host's ``My`` store, with its private key and valid now: the one with ``wanted.thumbprint``; else one for
    Server Authentication (or without EKUs) whose SAN names ``wanted.fqdn`` (the host's FQDN when not given), valid
    longest. A certificate for Client Authentication only (the machine's) is never chosen by name. The key is the lab
    PKI's file of that certificate (``<lab_dir>/pki/hosts/<fqdn>[.machine].{crt,key}``)."""
    wanted = wanted or {}
    fqdn = wanted.get("fqdn") or ctx.state.data["fqdn"]
    thumbprint = str(wanted.get("thumbprint") or "").upper()
    report: dict[str, Any] = {"thumbprint": None, "subject": None, "chosen_by": "thumbprint" if thumbprint else "fqdn",
                              "fqdn": fqdn, "error": None}
    now = ctx.state.now()  # valid now, by the host's clock
    usable = []
    for entry in ctx.state.data.get("cert_stores", {}).get("My", []):
        der = base64.b64decode(entry["der_b64"])
        cert = x509.load_der_x509_certificate(der)
        if entry.get("has_private_key") and cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            usable.append((der, cert))
    if thumbprint:
        chosen = [(der, cert) for der, cert in usable if _thumbprint(der) == thumbprint]
        missing = (f"no certificate with thumbprint {thumbprint}, a private key and a validity that includes now in "
                   "LocalMachine\\My")
    else:
        chosen = sorted(((der, cert) for der, cert in usable if _serves(cert, fqdn)),
                        key=lambda pair: pair[1].not_valid_after_utc, reverse=True)
        missing = (f"no certificate for Server Authentication whose SAN names {fqdn}, with a private key and a "
                   "validity that includes now, in LocalMachine\\My")
    if not chosen:
        return None, {**report, "error": missing}
    der, cert = chosen[0]
    report.update(thumbprint=_thumbprint(der), subject=cert.subject.rfc4514_string())
    return _key_files(der), report


def _thumbprint(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def _serves(cert: x509.Certificate, fqdn: str) -> bool:
    try:
        usages = [oid.dotted_string for oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        usages = [SERVER_AUTH]
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    return SERVER_AUTH in usages and fqdn.lower() in (name.lower() for name in names)


def _key_files(der: bytes) -> tuple[Path, Path] | None:
    """The lab PKI's cert/key files of the certificate ``der`` (a certificate the lab did not issue has none)."""
    lab_dir = revocation.world().lab_dir
    if lab_dir is None:
        return None
    for cert_path in sorted((lab_dir / "pki" / "hosts").glob("*.crt")):
        pem = cert_path.read_text()
        if ssl.PEM_cert_to_DER_cert(pem[:pem.index("-----END CERTIFICATE-----") + 25]) == der:
            key_path = cert_path.with_suffix(".key")
            return (cert_path, key_path) if key_path.exists() else None
    return None


@functools.lru_cache(maxsize=64)
def _offering(host_class: HostClass, protocols: tuple[str, ...]) -> HostClass:
    """The class with the protocols the probe offers; one object per pair, so that the client contexts of one
    command (keyed by its ``limit``) are found again and their sessions resumed."""
    return replace(host_class, tls_protocols=protocols)


def _handshake(ctx: ScriptContext, peer: dict[str, Any], timeout: float, check: bool, box: TimeBox | None,
               client_cert: tuple[Path, Path] | None, sessions: schannel.ClientSessions,
               hello: threading.Event | None, live: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """One handshake as the script's ``$handshake`` makes it; None when the time box ended first or during it.

    With a revocation flag on the chain, the peer's end-entity certificate this handshake received is kept in ``live``
    once per peer (``peer_certificate_b64``), as the script's validation callback keeps ``GetRawCertData()``."""
    world = revocation.world()
    host, port = peer["host"], peer["port"]
    per_url, per_chain = revocation.retrieval_timeouts(ctx.state)
    offered = _offering(ctx.state.host_class, offered_protocols(ctx) or ("Tls12",))
    if box is not None and box.expired():
        return None
    cache = revocation.load_cache(ctx.state)
    before = {url: dict(entry) for url, entry in cache.items()}
    raw = schannel.probe(
        _peer_text(host, port),
        sni=peer.get("sni") or host,
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
        client_cert=client_cert,
        sessions=sessions,
        hello=hello,
        now=ctx.state.now(),  # CRL validity by the host's own clock, as CryptoAPI judges it
    )
    if box is not None and box.expired():
        return None
    revocation.merge_cache(ctx.state, before, cache)
    event_logs.chain_retrievals(ctx.state, raw.get("revocation"))
    sample = _translate(raw, resolve(host, world.names), port)
    received = raw.get("peer_certificate_der")
    if live is not None and live.get("peer_certificate_b64") is None and received and KEEPS_CERTIFICATE.intersection(
            sample["chain_status"]):
        live["peer_certificate_b64"] = base64.b64encode(received).decode("ascii")
    if sample["error"] is None and sample["protocol"] is not None:
        # The tap's reading of the handshake messages (_tls.ps1): full or resumed, CertificateRequest, Certificate.
        sample.update(handshake="resumed" if raw["resumed"] else "full",
                      certificate_requested=raw["certificate_requested"], certificate_sent=raw["certificate_sent"])
        # IsMutuallyAuthenticated: a certificate credential was used and the peer has a certificate; .NET says true on
        # a resumed session too (dotnet/runtime#65563), as here.
        sample["mutual"] = client_cert is not None and (raw["certificate_sent"] or raw["resumed"])
    return sample


def _samples(ctx: ScriptContext, peer: dict[str, Any], samples: int, timeout: float, check: bool,
             stop_after_unknown: bool, box: TimeBox | None, out: list[dict[str, Any]],
             client_cert: tuple[Path, Path] | None, sessions: schannel.ClientSessions,
             hello: threading.Event | None, live: dict[str, Any]) -> None:
    """The samples of one peer, one after another (the first one sets ``hello`` when its ClientHello is out)."""
    stopped = False
    try:
        for index in range(samples):
            if stopped:
                out.append(dict(SKIPPED))
                continue
            sample = _handshake(ctx, peer, timeout, check, box, client_cert, sessions, hello if index == 0 else None,
                                live)
            if sample is None:
                out.append(box.cut_sample())  # the box ended before or during it
                stopped = True
                continue
            out.append(sample)
            stopped = stop_after_unknown and bool(UNKNOWN.intersection(sample["chain_status"]))
    finally:
        if hello is not None:
            hello.set()


def _one_sided(ctx: ScriptContext, peer: dict[str, Any], timeout: float, check: bool, box: TimeBox | None,
               sessions: schannel.ClientSessions, hello: threading.Event, live: dict[str, Any]) -> None:
    """The handshake without a client certificate, once the first sample's ClientHello is out (_tls.ps1)."""
    hello.wait(timeout if box is None else min(timeout, box.remaining()))
    sample = _handshake(ctx, peer, timeout, check, box, None, sessions, None)
    if sample is not None:
        live["one_sided"] = {"handshake_ms": sample["handshake_ms"], "error": sample["error"],
                             "handshake": sample.get("handshake")}


def probe_all(ctx: ScriptContext, args: dict[str, Any], *, stop_after_unknown: bool = False,
              box: TimeBox | None = None) -> dict[str, Any]:
    """The document body for ``args``; host_audit passes ``stop_after_unknown`` and its time box."""
    peers, samples, timeout, check = _validate(args)
    mutual = require(args, "mutual", bool, False)
    wanted = args.get("client_certificate")
    if wanted is not None and not isinstance(wanted, dict):
        raise ScriptError(f"argument 'client_certificate': expected an object or null, got {wanted!r}")
    client_cert, report = client_certificate(ctx, wanted) if mutual else (None, None)
    # [SslProtocols] 'Tls, Tls11, Tls12'.ToString(), as the script writes it; the tap compiles (no tap_error).
    document: dict[str, Any] = {"offered_protocols": ", ".join(OFFERED), "client_certificate": report,
                                "tap_error": None, "results": []}
    if not peers:
        return document
    sessions = schannel.ClientSessions()  # this command's powershell.exe
    pool = ThreadPoolExecutor(max_workers=len(peers) * (2 if client_cert else 1), thread_name_prefix="tls_probe")
    try:
        outs: list[list[dict[str, Any]]] = [[] for _peer in peers]
        lives: list[dict[str, Any]] = [{} for _peer in peers]
        jobs = []
        for peer, out, live in zip(peers, outs, lives, strict=True):
            hello = threading.Event() if client_cert else None
            jobs.append(pool.submit(_samples, ctx, peer, samples, timeout, check, stop_after_unknown, box, out,
                                    client_cert, sessions, hello, live))
            if hello is not None:
                jobs.append(pool.submit(_one_sided, ctx, peer, timeout, check, box, sessions, hello, live))
        wait(jobs, timeout=None if box is None else box.remaining())
        for job in jobs:
            if job.done():
                job.result()  # a bug in the twin must show
        for peer, out, live in zip(peers, outs, lives, strict=True):
            one_sided = live.get("one_sided")
            if client_cert and one_sided is None and box is not None:
                box.hit = True
                one_sided = {"handshake_ms": None, "error": box.text, "handshake": None}
            done = list(out)
            document["results"].append({
                "host": peer["host"], "port": peer["port"], "sni": peer.get("sni") or peer["host"],
                "samples": done if len(done) == samples else cut_samples(done, samples, stop_after_unknown, box),
                "one_sided": one_sided, "peer_certificate_b64": live.get("peer_certificate_b64")})
        return document
    finally:
        pool.shutdown(wait=box is None)


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    return probe_all(ctx, args)
