# PRIVATE to the crlfix.windows collection; may change without notice.
"""tls_probe: TLS handshakes with revocation checking measured on the host, judged on the controller.

The host runs ``_ps1/tls_probe.ps1`` (docs/dev/host-scripts.md, ``tls_probe``).
Why these .NET APIs (Microsoft Learn, .NET Framework 4.x as Windows PowerShell 5.1 uses it):

- ``SslStream.AuthenticateAsClient(String, X509CertificateCollection, SslProtocols, Boolean)``: the last argument,
  ``checkCertificateRevocation``, makes the Schannel client build the server's chain with online revocation
  checking, i.e. CryptoAPI downloads the CRLs through WinHTTP and the machine proxy, exactly what a Lync/Exchange
  service does; the 15 s hang of the outage happens inside this call.
- ``RemoteCertificateValidationCallback``: receives the built ``X509Chain``; its ``ChainStatus`` carries the
  ``X509ChainStatusFlags`` names (Learn, "X509ChainStatusFlags Enum": ``RevocationStatusUnknown`` = 64,
  ``OfflineRevocation`` = 16777216). The callback accepts every certificate, so the probe measures instead of
  enforcing. It is a PowerShell scriptblock; that works because the synchronous ``AuthenticateAsClient`` calls it on
  the calling thread, which has a runspace.
- The callback's ``certificate`` is the peer's end-entity certificate: when the chain's revocation is unknown or
  revoked, the host keeps its DER once per peer (``X509Certificate.GetRawCertData``, base64), so that
  :func:`peer_certificate` can read where its CRLs are published (``unknown_because``).
- ``TcpClient.ConnectAsync(host, port).Wait(timeout)`` times the TCP connect on its own and bounds it;
  ``ReceiveTimeout``/``SendTimeout`` bound the handshake's socket reads (not CryptoAPI's retrieval, which has its
  own timeouts: 15 s per URL, 20 s per chain by default).
- A runspace pool runs one PowerShell instance per peer, so peers are probed in parallel; the samples of one peer
  run one after the other (a second sample sees what the first one left in CryptoAPI's cache, like a real service).
- .NET Framework caches TLS sessions per process and resumes one whenever the peer agrees (the SslStream
  documentation quoted in dotnet/runtime#65563): samples 2..n of a peer are usually resumed, and a resumed handshake
  sends no client certificate, so the peer checks nothing of ours. The host labels each sample ``handshake``
  ``full`` or ``resumed`` from the TLS records themselves (a tap under the SslStream: RFC 5246 7.3, RFC 8446 4.2.11;
  .NET does not say, and ``IsMutuallyAuthenticated`` stays true on a resumed session). Only full handshakes (and
  unlabelled ones, from hosts that cannot tell) give latency.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import MissingCryptographyError
from ansible_collections.crlfix.windows.plugins.module_utils._latency_stats import (
    EMPTY_SUMMARY,
    REVOCATION_UNKNOWN_FLAGS,
    VERDICTS,
    is_revocation_unknown,
    latency_verdict,
    slow_because,
    summarize,
    unknown_because,
)
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    CertificateParseError,
    revocation_summary,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    HostScriptError,
    is_time_box_error,
    run_host_script,
)

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

MAX_SAMPLES = 50
MAX_TIMEOUT_MS = 600000
# The innermost exception's message when client and server share no protocol: SEC_E_ALGORITHM_MISMATCH (0x80090331,
# Microsoft Learn, "Schannel error codes"), e.g. a Lync 2010 peer on 2008 R2 (TLS 1.0 only) and a host that disabled
# TLS 1.0. The sentence is Windows' FormatMessage text (English hosts only: localized hosts report it in their language
# and the peer then shows as an error without protocol_mismatch).
NO_COMMON_PROTOCOL = "The client and server cannot communicate, because they do not possess a common algorithm"

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]+)$")


class PeerError(ValueError):
    """A peer is not acceptable; the message names the field and the value."""


@dataclasses.dataclass(frozen=True)
class Peer:
    host: str
    port: int
    sni: str

    @property
    def display(self) -> str:
        """``host:port``, with brackets around an IPv6 literal."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def as_host_args(self) -> dict[str, t.Any]:
        return {"host": self.host, "port": self.port, "sni": self.sni}


def validate_host(value: t.Any, *, field: str) -> str:
    """Return a DNS name, IPv4 or IPv6 literal (brackets removed)."""
    if not isinstance(value, str) or not value:
        raise PeerError(f"{field}: expected a host name or IP address, got {value!r}")
    host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise PeerError(f"{field}: not a valid IPv6 address: {value!r}") from None
    if not _DNS_NAME.match(host):
        raise PeerError(f"{field}: not a valid host name or IP address: {value!r}")
    return host


def validate_port(value: t.Any, *, field: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise PeerError(f"{field}: port must be an integer from 1 to 65535, got {value!r}")
    return value


def parse_peer(value: t.Any, *, field: str) -> Peer:
    """``host:port``, ``[IPv6]:port`` or ``{host, port, sni}``; SNI defaults to the host."""
    if isinstance(value, str):
        match = _HOST_PORT.match(value)
        if not match:
            hint = " (an IPv6 address needs brackets: [2001:db8::1]:5061)" if value.count(":") > 1 else ""
            raise PeerError(f"{field}: expected host:port or [IPv6]:port, got {value!r}{hint}")
        host = validate_host(match.group("v6") or match.group("host"), field=field)
        if match.group("v6") and ":" not in host:
            raise PeerError(f"{field}: brackets are only for IPv6 addresses, got {value!r}")
        return Peer(host=host, port=validate_port(match.group("port"), field=field), sni=host)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"host", "port", "sni"})
        if unknown:
            raise PeerError(f"{field}: unknown keys {unknown}; a peer dict has host, port and sni")
        if "host" not in value or "port" not in value:
            raise PeerError(f"{field}: a peer dict needs 'host' and 'port', got {value!r}")
        host = validate_host(value["host"], field=f"{field}.host")
        port = validate_port(value["port"], field=f"{field}.port")
        sni = value.get("sni")
        sni = host if sni is None else validate_host(sni, field=f"{field}.sni")
        return Peer(host=host, port=port, sni=sni)
    raise PeerError(f"{field}: expected host:port or a {{host, port, sni}} dict, got {value!r}")


def normalize_peers(value: t.Any, *, field: str = "peers") -> list[Peer]:
    if not isinstance(value, list) or not value:
        raise PeerError(f"{field}: expected a non-empty list of peers, got {value!r}")
    return [parse_peer(item, field=f"{field}[{index}]") for index, item in enumerate(value)]


def _int_option(args: t.Mapping[str, t.Any], name: str, low: int, high: int) -> int:
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PeerError(f"{name}: must be an integer from {low} to {high}, got {value!r}")
    return value


def _union(lists: t.Iterable[t.Iterable[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen.setdefault(str(name), None)
    return list(seen)


def _skip_late_cuts(samples: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Samples cut by the audit's time box after an earlier sample of the peer finished become skipped."""
    out, finished = [], False
    for sample in samples:
        error = sample.get("error")
        if finished and is_time_box_error(error):
            out.append({"skipped": True, "cut_by_time_box": True})
            continue
        finished = finished or (not error and not sample.get("skipped") and sample.get("handshake_ms") is not None)
        out.append(sample)
    return out


def _rejection(sample: t.Mapping[str, t.Any]) -> str | None:
    """Why a service would refuse the handshake this sample completed, or None when it would accept it.

    The probe's validation callback accepts every certificate so that it can measure (host-scripts.md, tls_probe);
    the ``SslPolicyErrors`` it saw say what a service's default validation would have refused (Microsoft Learn,
    "SslPolicyErrors Enum"). A chain whose only flaw is unknown revocation is the outage this collection measures
    (verdict ``revocation_unknown``), not a rejection.
    """
    if sample.get("error") or sample.get("skipped") or sample.get("handshake_ms") is None:
        return None
    policy = {name.strip() for name in str(sample.get("policy_errors") or "None").split(",")} - {"None", ""}
    if "RemoteCertificateNameMismatch" in policy:
        return "the certificate does not match the name probed (RemoteCertificateNameMismatch)"
    if "RemoteCertificateNotAvailable" in policy:
        return "the peer sent no certificate (RemoteCertificateNotAvailable)"
    flaws = [flag for flag in sample.get("chain_status") or [] if flag not in REVOCATION_UNKNOWN_FLAGS | {"NoError"}]
    if "RemoteCertificateChainErrors" in policy and flaws:
        return f"the certificate chain is not trusted ({', '.join(str(flag) for flag in flaws)})"
    return None


def peer_certificate(value: t.Any, *, field: str) -> dict[str, t.Any] | None:
    """The peer's certificate as the host kept it (``peer_certificate_b64``, base64 DER, only from a chain whose
    revocation was unknown or revoked), read: ``_x509_endpoints.revocation_summary`` and ``error`` null; None when
    none was sent. One that cannot be read keeps only ``error``, naming ``field``; the DER itself is not kept."""
    if value is None:
        return None
    try:
        return {**revocation_summary(value, field=field), "error": None}
    except (CertificateParseError, MissingCryptographyError) as exc:
        return {"subject": None, "thumbprint": None, "crl_urls": [], "ocsp_urls": [], "http_crl": None,
                "error": str(exc)}


HANDSHAKE_FULL = "full"
HANDSHAKE_RESUMED = "resumed"


def _completed(sample: t.Mapping[str, t.Any]) -> bool:
    return not sample.get("error") and not sample.get("skipped") and sample.get("handshake_ms") is not None


def _measures_latency(sample: t.Mapping[str, t.Any]) -> bool:
    """A completed handshake that was not a resumed session: full, or unlabelled (a host that could not tell says
    null; an older script says nothing). A resumed one skipped the peer's certificate and revocation work."""
    return _completed(sample) and sample.get("handshake") != HANDSHAKE_RESUMED


def _presented(sample: t.Mapping[str, t.Any]) -> bool:
    """This host's certificate went to the peer: the tap saw it sent; without the tap, what .NET said."""
    sent = sample.get("certificate_sent")
    return sent is True if isinstance(sent, bool) else sample.get("mutual") is True


def interpret_peer(peer: Peer, host: t.Mapping[str, t.Any], *, max_handshake_ms: int) -> dict[str, t.Any]:
    """Turn one ``tls_probe`` result into the module's per-peer result.

    A sample ``host_audit`` skipped (``"skipped": true``: an earlier sample of the peer was revocation-unknown
    and the next would only wait the same chain timeout) has no timings and no error: it counts neither as a
    handshake nor as a failure, so the peer's verdict is the first sample's ``revocation_unknown``.

    A handshake that completed but that a service would refuse (a certificate for another name, an untrusted chain:
    ``policy_errors``, :func:`_rejection`) is a failed sample too: the peer's verdict is ``error``, never ``pass``.

    A sample ``host_audit``'s time box cut off (``error`` "not finished within the audit's time box of <n> ms",
    the samples after it skipped) is a failed sample when it is the peer's first, so the peer's verdict is
    ``error`` and ``errors`` names the time box. A later sample cut off after an earlier one finished counts as
    skipped: it started late, so being cut says nothing about its speed, and the finished samples judge the peer
    (a slow-but-passing peer is not failed by the audit's box). A cut first sample is not ``revocation_unknown``:
    that verdict reports flags CryptoAPI set on a finished chain, and nobody saw this chain finish; the handshake
    may as well have been waiting on a silent peer. The CRL results of the same command say whether the
    revocation endpoints answered.
    """
    samples = host.get("samples")
    if not isinstance(samples, list):
        raise HostScriptError(f"tls_probe: the result for {peer.display} has no samples list")
    samples = [s if isinstance(s, dict) else {"error": f"malformed sample {s!r}"} for s in samples]
    samples = _skip_late_cuts(samples)
    handshake = [s.get("handshake_ms") if not s.get("error") else None for s in samples]
    kinds = [s.get("handshake") if _completed(s) and s.get("handshake") in (HANDSHAKE_FULL, HANDSHAKE_RESUMED)
             else None for s in samples]
    errors = [f"sample {i + 1}: {s.get('error') or _rejection(s)}" for i, s in enumerate(samples)
              if s.get("error") or _rejection(s)]
    if not samples:
        errors.append("the host ran no sample")
    measured = [s for s in samples if _measures_latency(s)]
    completed = [s for s in samples if _completed(s)]
    if completed and not measured:
        # Every completed handshake resumed a session an earlier handshake of this process left (psrp keeps the
        # process between commands): none showed the peer's own work, so no latency can be judged.
        errors.append("no full handshake: every completed sample resumed an earlier TLS session, so none measured "
                      "the peer's check of this host's certificate")
    chain_status = _union(s.get("chain_status") or [] for s in samples)
    revocation_unknown = is_revocation_unknown(chain_status)
    summary = summarize(s.get("handshake_ms") for s in measured)
    protocols = _union([s["protocol"]] for s in samples if s.get("protocol"))
    mismatch = any(str(s.get("error") or "").startswith(NO_COMMON_PROTOCOL) for s in samples)
    mutual = bool(measured) and all(_presented(s) for s in measured)
    one_sided = host.get("one_sided") if isinstance(host.get("one_sided"), dict) else {}
    one_sided_ms = one_sided.get("handshake_ms") if not one_sided.get("error") else None
    verdict = latency_verdict(summary=summary, failed_samples=len(errors), revocation_unknown=revocation_unknown,
                              max_handshake_ms=max_handshake_ms)
    certificate = peer_certificate(host.get("peer_certificate_b64"), field=f"{peer.display}: peer_certificate_b64")
    return {
        "peer": peer.display,
        "host": peer.host,
        "port": peer.port,
        "sni": peer.sni,
        "samples_ms": handshake,
        # Per sample: full, resumed, or null (not completed, or a host that could not tell); only the full and the
        # unlabelled completed ones count in min/median/p95/max and the verdict (full_handshakes says how many).
        "handshakes": kinds,
        "full_handshakes": sum(1 for kind in kinds if kind == HANDSHAKE_FULL),
        "resumed_handshakes": sum(1 for kind in kinds if kind == HANDSHAKE_RESUMED),
        "tcp_connect_ms": [s.get("tcp_connect_ms") for s in samples],
        **(summary.as_dict() if summary else EMPTY_SUMMARY),
        # Samples of one peer negotiate the same protocol; the first one stands for all.
        "protocol": protocols[0] if protocols else None,
        # No TLS version both ends enable: the peer speaks only what this host disabled (or the other way round).
        "protocol_mismatch": mismatch,
        "chain_status": chain_status,
        "policy_errors": _union([s["policy_errors"]] for s in samples if s.get("policy_errors")),
        "revocation_unknown": revocation_unknown,
        "errors": errors,
        "verdict": verdict,
        # Mutual TLS (docs/fix-crl.md, "Mutual TLS"): every handshake that measured latency presented this host's
        # certificate to the peer; the one-sided handshake beside them, without it, shows the peer's own part.
        "mutual": mutual,
        "one_sided_ms": one_sided_ms if isinstance(one_sided_ms, int) else None,
        "one_sided_handshake": one_sided.get("handshake") if one_sided.get("handshake") in (
            HANDSHAKE_FULL, HANDSHAKE_RESUMED) else None,
        "slow_because": slow_because(verdict, mutual, one_sided_ms, max_handshake_ms,
                                     cut_only=bool(errors) and all(is_time_box_error(e) for e in errors)),
        # The certificate the peer presented, read where a revocation flag made the host keep it (peer_certificate),
        # and whose state a revocation_unknown is: the peer certificate's (no http/https CRL location) or this host's.
        "peer_certificate": certificate,
        "unknown_because": unknown_because(verdict, certificate["http_crl"] if certificate else None),
    }


_THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")


def client_certificate_args(*, thumbprint: str | None = None, fqdn: str | None = None) -> dict[str, str] | None:
    """The ``client_certificate`` argument: which certificate a mutual probe presents (host-scripts.md, tls_probe).

    ``thumbprint``: the SHA-1 thumbprint of the certificate bound to the host's service, when known; ``fqdn``: the
    name the service's certificate must hold in its SAN (default on the host: its own FQDN). None: both defaults.
    """
    args: dict[str, str] = {}
    if thumbprint is not None:
        if not isinstance(thumbprint, str) or not _THUMBPRINT.match(thumbprint.replace(" ", "")):
            raise PeerError(f"client_certificate.thumbprint: expected 40 hexadecimal digits, got {thumbprint!r}")
        args["thumbprint"] = thumbprint.replace(" ", "").upper()
    if fqdn is not None:
        args["fqdn"] = validate_host(fqdn, field="client_certificate.fqdn")
    return args or None


def host_args(peers: t.Sequence[Peer], *, samples: int, timeout_ms: int, check_revocation: bool,
              mutual: bool = False, client_certificate: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
    """The ``tls_probe`` arguments (docs/dev/host-scripts.md); ``mutual`` only when true (absent: one-sided), and with
    it ``client_certificate`` (:func:`client_certificate_args`) when given."""
    args = {"peers": [p.as_host_args() for p in peers], "samples": samples, "timeout_ms": timeout_ms,
            "check_revocation": bool(check_revocation)}
    if mutual:
        args["mutual"] = True
        if client_certificate:
            args["client_certificate"] = dict(client_certificate)
    return args


def interpret_document(peers: t.Sequence[Peer], document: t.Mapping[str, t.Any], *,
                       max_handshake_ms: int) -> dict[str, t.Any]:
    """The module result from a checked ``tls_probe`` document (``changed`` is always false).

    Raises:
        HostScriptError: the document does not answer exactly ``peers``, in order.
    """
    host_results = document.get("results")
    if not isinstance(host_results, list) or len(host_results) != len(peers):
        count = len(host_results) if isinstance(host_results, list) else 0
        raise HostScriptError(f"tls_probe answered with {count} results for {len(peers)} peers")
    results = []
    for index, (peer, host) in enumerate(zip(peers, host_results, strict=True)):
        if not isinstance(host, dict) or host.get("host") != peer.host or host.get("port") != peer.port:
            raise HostScriptError(f"tls_probe: results[{index}] is not the answer for {peer.display}")
        results.append(interpret_peer(peer, host, max_handshake_ms=max_handshake_ms))
    worst = [r["max_ms"] for r in results if r["max_ms"] is not None]
    offered = document.get("offered_protocols")
    presented = document.get("client_certificate")
    return {
        "changed": False,
        # What the host offered, as SslProtocols prints it ("None": the OS's own defaults; host-scripts.md tls_probe).
        "offered_protocols": offered if isinstance(offered, str) else None,
        # Mutual TLS: the certificate presented (thumbprint, subject, chosen_by, fqdn) or why none was (error);
        # null without mutual or from an older script.
        "client_certificate": dict(presented) if isinstance(presented, dict) else None,
        "results": results,
        "all_pass": all(r["verdict"] == "pass" for r in results),
        "worst_ms": max(worst) if worst else None,
        "max_handshake_ms": max_handshake_ms,
        "summary": {"total": len(results), **{v: sum(1 for r in results if r["verdict"] == v) for v in VERDICTS}},
    }


def run_tls_probe(connection: ConnectionBase, args: t.Mapping[str, t.Any], *, task_action: str) -> dict[str, t.Any]:
    """Validate ``args``, run ``tls_probe`` once for all peers and build the result (``changed`` is always false)."""
    peers = normalize_peers(args["peers"])
    samples = _int_option(args, "probe_samples", 1, MAX_SAMPLES)
    timeout_ms = _int_option(args, "probe_timeout_ms", 1, MAX_TIMEOUT_MS)
    max_handshake_ms = _int_option(args, "max_handshake_ms", 1, MAX_TIMEOUT_MS)
    presented = client_certificate_args(thumbprint=args.get("client_thumbprint"))
    document = run_host_script(connection, "tls_probe", host_args(peers, samples=samples, timeout_ms=timeout_ms,
                               check_revocation=args["check_revocation"], mutual=bool(args.get("mutual_tls")),
                               client_certificate=presented), task_action=task_action)
    return interpret_document(peers, document, max_handshake_ms=max_handshake_ms)


__all__ = ["Peer", "PeerError", "client_certificate_args", "host_args", "interpret_document", "interpret_peer",
           "normalize_peers", "parse_peer", "peer_certificate", "run_tls_probe", "validate_host", "validate_port"]
