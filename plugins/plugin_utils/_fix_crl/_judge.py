# PRIVATE to the crlfix.windows collection; may change without notice.
"""Judge a measurement (CRL retrieval + TLS probes) and decide whether a change that failed it stays.

A measurement's parts are the results ``crl_retrieval_check`` and ``tls_probe`` would return, ``None`` when there
was nothing to measure (no HTTP(S) endpoint, no peer), or the exception that cost the part (an ``ExpectedFailure``
of the audit, or the lost connection). The judged phase keeps a failed part as ``{"msg": ...}``, as the record
shows it. The summary is one line per check that names the first URL or peer that failed, so the reason in the
report says where to look.
"""

from __future__ import annotations

import typing as t

from jinja2 import Environment
from jinja2.filters import do_truncate

# Gateway errors are the proxy's own answers: they prove the host reached a proxy, not the CRL server.
_GATEWAY_STATUSES = (502, 503, 504)
_JINJA = Environment(autoescape=False)  # reasons are plain text, never HTML


def truncate(text: t.Any, length: int) -> str:
    """Jinja's own ``truncate`` filter (word boundary, ``...``, leeway 5), so reasons stay short at a word boundary."""
    return do_truncate(_JINJA, str(text), length, leeway=5)


def _first_line(message: t.Any) -> str:
    lines = str(message or "no message").splitlines()
    return truncate(lines[0] if lines else "no message", 300)


# One measured part: the feature's result, None (nothing to measure) or what made it fail.
MeasuredPart: t.TypeAlias = t.Mapping[str, t.Any] | Exception | None


def _crl_text(crl: MeasuredPart, requirement: str) -> str:
    if crl is None:
        return "no HTTP(S) revocation endpoints"
    if isinstance(crl, Exception):
        return "CRL check failed: " + _first_line(crl)
    summary = crl.get("summary") or {}
    text = f"CRL: {summary.get(requirement)}/{summary.get('total')} endpoints {requirement}"
    bad = next((r for r in crl.get("results") or [] if r.get(requirement) is not True), None)
    if bad is not None and bad.get("url") is not None:
        text += f" ({bad['url']}: {truncate(bad.get('error') or 'failed', 150)})"
    invalid = crl.get("invalid_endpoints") or []
    if invalid:  # reported, not fetched, and not held against the proxy
        first = invalid[0]
        text += (f", {len(invalid)} invalid endpoint(s) not checked ({truncate(first.get('url'), 100)}: "
                 f"{truncate(first.get('reason'), 150)})")
    return text


def _tls_text(tls: MeasuredPart, max_handshake_ms: int) -> str:
    if tls is None:
        return "no TLS peers"
    if isinstance(tls, Exception):
        return "TLS probe failed: " + _first_line(tls)
    results = tls.get("results") or []
    passing = sum(1 for r in results if r.get("verdict") == "pass")
    peer_slow = [r for r in results if r.get("slow_because") == "peer"]
    worst, unfinished = tls.get("worst_ms"), tls.get("unfinished_ms")
    if unfinished is not None and (worst is None or worst < unfinished):
        shown = f"over {unfinished} ms (cut by the audit's time box)"
    else:
        shown = f"{worst} ms" if worst is not None else "n/a"
    text = f"TLS: {passing}/{len(results)} peers pass, worst handshake {shown} (limit {max_handshake_ms} ms)"
    if peer_slow:
        text += (f"; {len(peer_slow)} slow only with this host's certificate, not counted: the peer cannot check it "
                 f"({peer_slow[0].get('peer', '?')})")
    bad = next((r for r in results if not _counts_as_pass(r)), None)
    if bad is not None:
        errors = bad.get("errors") or []
        detail = f", {truncate(errors[0], 150)}" if errors else ""
        if bad.get("protocol_mismatch"):
            detail = f", {_mismatch_text(tls.get('offered_protocols'))}"
        text += f" ({bad.get('peer', '?')}: {bad.get('verdict', '?')}{detail})"
    return text


# --- TLS protocols and mutual TLS (issue 11 item 4; docs/fix-crl.md "Mutual TLS") ---
PROTOCOL_MISMATCH = "protocol_mismatch"


def _counts_as_pass(result: t.Mapping[str, t.Any]) -> bool:
    """A peer that passed, or one slow only because the peer cannot check this host's certificate (its own state is
    broken): that peer's fix, not this host's, so it neither fails this host nor rolls its change back."""
    return result.get("verdict") == "pass" or result.get("slow_because") == "peer"


def _mismatch_text(offered: t.Any) -> str:
    shown = "the OS's defaults" if offered in (None, "None") else str(offered)
    return (f"no TLS protocol in common: the peer speaks only protocols this host has disabled (this host offered "
            f"{shown}; a Lync 2010 peer on Windows Server 2008 R2 speaks TLS 1.0 only)")


def tls_findings(tls: MeasuredPart) -> list[tuple[str, str]]:
    """``(code, detail)`` of each finding a TLS part holds: ``protocol_mismatch`` per peer that shares no protocol."""
    if tls is None or isinstance(tls, Exception):
        return []
    return [(PROTOCOL_MISMATCH, f"{r.get('peer', '?')}: {_mismatch_text(tls.get('offered_protocols'))}")
            for r in tls.get("results") or [] if r.get("protocol_mismatch")]
# --- end TLS protocols and mutual TLS ---


def _kept(part: MeasuredPart) -> dict[str, t.Any] | None:
    if part is None:
        return None
    return {"msg": str(part)} if isinstance(part, Exception) else dict(part)


def judge_phase(crl: MeasuredPart, tls: MeasuredPart, *, requirement: str, max_handshake_ms: int,
                lost: bool = False) -> dict[str, t.Any]:
    """``{crl, tls, crl_ok, tls_ok, passed, summary}`` of one phase (before, after, after_rollback)."""
    crl_ok = crl is None or (not isinstance(crl, Exception) and bool(crl.get(f"all_{requirement}")))
    tls_ok = tls is None or (not isinstance(tls, Exception)
                             and all(_counts_as_pass(r) for r in tls.get("results") or []))
    return {
        "crl": _kept(crl),
        "tls": _kept(tls),
        "crl_ok": crl_ok,
        "tls_ok": tls_ok,
        "passed": crl_ok and tls_ok and not lost,
        "summary": f"{_crl_text(crl, requirement)}; {_tls_text(tls, max_handshake_ms)}",
    }


def _passing_items(check: t.Mapping[str, t.Any] | None, requirement: str) -> set[str]:
    check = check or {}
    items = set()
    for result in (check.get("crl") or {}).get("results") or []:
        if result.get(requirement):
            items.add(f"endpoint {result.get('url')}")
    for result in (check.get("tls") or {}).get("results") or []:
        if _counts_as_pass(result):
            items.add(f"peer {result.get('peer')}")
    return items


def compare_before_after(checks: t.Mapping[str, t.Any], *, requirement: str,
                         baseline_allowed: bool) -> dict[str, t.Any]:
    """Every endpoint and peer before vs after a change: what got worse, what got better, does the proxy work.

    The proxy path works when some endpoint got an HTTP answer that is not a gateway error, or there is no
    HTTP endpoint at all (then the probes alone decide).
    """
    before, after = checks.get("before"), checks.get("after")
    was, now = _passing_items(before, requirement), _passing_items(after, requirement)
    after_results = ((after or {}).get("crl") or {}).get("results") or []
    answers = [r.get("http_status") for r in after_results
               if r.get("http_status") is not None and r.get("http_status") not in _GATEWAY_STATUSES]
    return {
        "baseline": baseline_allowed and before is not None and "passed" in before,
        "worse": sorted(was - now),
        "better": sorted(now - was),
        "proxy_path_works": bool(answers) or not after_results,
    }


def keep_decision(comparison: t.Mapping[str, t.Any]) -> tuple[bool, str | None]:
    """(keep the change?, why not). Kept only when it made nothing worse and the new proxy path works."""
    if comparison["baseline"] and not comparison["worse"] and comparison["proxy_path_works"]:
        return True, None
    if comparison["worse"]:
        return False, "it made worse: " + ", ".join(comparison["worse"][:5])
    if not comparison["proxy_path_works"]:
        return False, "no endpoint got an HTTP answer through the new proxy"
    return False, "there is no measurement from before the change to compare with (fix_crl_measure_before)"


__all__ = ["PROTOCOL_MISMATCH", "MeasuredPart", "compare_before_after", "judge_phase", "keep_decision", "tls_findings",
           "truncate"]
