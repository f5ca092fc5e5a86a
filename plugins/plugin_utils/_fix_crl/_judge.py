# PRIVATE to the crlfix.windows collection; may change without notice.
"""The judge: one phase's measurements in, one frozen verdict out; and whether a change that failed its proof stays.

A phase (``before``, ``after``, ``after_rollback``) measures the proxy path from fresh processes: the CRL retrieval
through the machine WinHTTP proxy, the TLS handshakes with the peers, each service identity's chain. :func:`judge_phase`
turns that :class:`Measurement` into a :class:`PhaseVerdict` (passed, one summary line per check naming the first URL
or peer that failed, the phase's findings in record order). The host's own running service is judged apart
(``_service_verdict``): it never fails the proxy path nor rolls a change back. Nothing changes a verdict once made;
``_decide`` turns the verdicts into the host's status.

A measured part is the result ``crl_retrieval_check`` or ``tls_probe`` would return, ``None`` when there was nothing
to measure (no HTTP(S) endpoint, no peer), or the exception that cost the part.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _findings
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import ServiceMeasurement
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._findings import Finding
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import is_time_box_error

# Gateway errors are the proxy's own answers: they prove the host reached a proxy, not the CRL server.
_GATEWAY_STATUSES = (502, 503, 504)

MeasuredPart: t.TypeAlias = t.Mapping[str, t.Any] | Exception | None


def truncate(text: t.Any, length: int) -> str:
    """``text`` cut at a word boundary near ``length`` characters, ``...`` marking the cut (a text at most 5 over the
    length is left whole): the rule of Jinja's ``truncate`` filter, without a template environment."""
    text = str(text)
    if len(text) <= length + 5:
        return text
    return text[:max(length - 3, 0)].rsplit(" ", 1)[0] + "..."


def first_line(message: t.Any, length: int = 300) -> str:
    lines = str(message or "no message").splitlines()
    return truncate(lines[0] if lines else "no message", length)


@dataclasses.dataclass(frozen=True)
class Criteria:
    """What a phase must show to pass: every endpoint ``requirement`` (reachable or usable), handshakes under
    ``max_handshake_ms``."""

    requirement: str
    max_handshake_ms: int


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One phase's measurements, as the audit parsed them (``identities``: ``_identities.summarise``'s entries, None
    when not read; ``lost``: the connection dropped while measuring)."""

    crl: MeasuredPart = None
    tls: MeasuredPart = None
    identities: t.Mapping[str, t.Mapping[str, t.Any]] | None = None
    caller: t.Mapping[str, t.Any] | None = None  # the connecting account and its path (_identities.summarise)
    desired: t.Mapping[str, t.Any] | None = None  # what the inventory intends (the plan's desired value)
    lost: bool = False


@dataclasses.dataclass(frozen=True)
class PhaseVerdict:
    """The verdict of one phase; :meth:`as_check` is the record's ``checks[phase]``."""

    crl_ok: bool
    tls_ok: bool
    identities_ok: bool | None
    passed: bool
    summary: str
    findings: tuple[Finding, ...]
    crl: dict[str, t.Any] | None
    tls: dict[str, t.Any] | None

    def as_check(self) -> dict[str, t.Any]:
        return {"crl": self.crl, "tls": self.tls, "crl_ok": self.crl_ok, "tls_ok": self.tls_ok,
                "identities_ok": self.identities_ok, "passed": self.passed, "summary": self.summary}


def counts_as_pass(result: t.Mapping[str, t.Any]) -> bool:
    """A peer that passed, one slow only because the peer cannot check this host's certificate (its own state is
    broken), or one whose own certificate names no HTTP CRL location (no host outside its domain can check it, KB
    884115): that peer's fix, not this host's, so it neither fails this host nor rolls its change back."""
    return (result.get("verdict") == "pass" or result.get("slow_because") == "peer"
            or result.get("unknown_because") == "peer_certificate")


def _crl_text(crl: MeasuredPart, requirement: str) -> str:
    if crl is None:
        return "no HTTP(S) revocation endpoints"
    if isinstance(crl, Exception):
        return "CRL check failed: " + first_line(crl)
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
        return "TLS probe failed: " + first_line(tls)
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
    unverifiable = [r for r in results if r.get("unknown_because") == "peer_certificate"]
    if unverifiable:
        text += (f"; {len(unverifiable)} with a certificate that names no HTTP CRL location, not counted: the peer's "
                 f"certificate ({unverifiable[0].get('peer', '?')})")
    bad = next((r for r in results if not counts_as_pass(r)), None)
    if bad is not None:
        errors = bad.get("errors") or []
        detail = f", {truncate(errors[0], 150)}" if errors else ""
        if bad.get("protocol_mismatch"):
            detail = f", {_findings.mismatch_text(tls.get('offered_protocols'))}"
        text += f" ({bad.get('peer', '?')}: {bad.get('verdict', '?')}{detail})"
    return text


def chain_failures(identities: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[str]:
    """One text per identity whose chain failed (the proof as that account does not pass); an identity whose proof did
    not run (``chain_ok`` null) is not a failure."""
    out = []
    for name, entry in identities.items():
        if entry.get("chain_ok") is False:
            took = f" after {entry['chain_ms']} ms" if entry.get("chain_ms") is not None else ""
            out.append(f"as {name}{took}: {entry.get('error') or 'the chain fails'}")
    return out


def _kept(part: MeasuredPart) -> dict[str, t.Any] | None:
    if part is None:
        return None
    return {"msg": str(part)} if isinstance(part, Exception) else dict(part)


def judge_phase(measurement: Measurement, criteria: Criteria) -> PhaseVerdict:
    """The verdict of one phase: passed when every endpoint meets the requirement, every peer passes (or is slow only
    because of its own state) and every identity's chain that ran passes, and the connection held."""
    crl, tls, identities = measurement.crl, measurement.tls, measurement.identities
    crl_ok = crl is None or (not isinstance(crl, Exception) and bool(crl.get(f"all_{criteria.requirement}")))
    tls_ok = tls is None or (not isinstance(tls, Exception)
                             and all(counts_as_pass(r) for r in tls.get("results") or []))
    summary = f"{_crl_text(crl, criteria.requirement)}; {_tls_text(tls, criteria.max_handshake_ms)}"
    identities_ok = None
    if isinstance(identities, t.Mapping):
        failures = chain_failures(identities)
        identities_ok = not failures
        if failures:
            summary += f"; CryptoAPI {'; '.join(failures)}"
    findings = [*_findings.refusal_findings(crl), *_findings.protocol_findings(tls)]
    if isinstance(identities, t.Mapping):
        findings += _findings.path_findings(identities, measurement.caller, measurement.desired)
    return PhaseVerdict(crl_ok=crl_ok, tls_ok=tls_ok, identities_ok=identities_ok,
                        passed=crl_ok and tls_ok and identities_ok is not False and not measurement.lost,
                        summary=summary, findings=_findings.ordered(findings), crl=_kept(crl), tls=_kept(tls))


def explaining_checks(before: PhaseVerdict | None,
                      identities: t.Mapping[str, t.Mapping[str, t.Any]]) -> tuple[bool, list[str]]:
    """Whether every check that would explain a CryptoAPI symptom passed before any change, and what was checked:
    the proxy path, the handshakes, and each identity's chain that ran."""
    checked: list[str] = []
    if before is None or not before.crl_ok:
        return False, checked
    checked.append("the revocation endpoints through the machine WinHTTP proxy")
    if not before.tls_ok:
        return False, checked
    checked.append("the TLS handshakes with revocation checking")
    for name, entry in identities.items():
        if entry.get("chain_ok") is not True:
            return False, checked
        checked.append(f"the chain check as {name}")
    return True, checked


# ---- the host's own running service: fresh, stale, or slow for another reason ----

@dataclasses.dataclass(frozen=True)
class ServiceVerdict:
    """``state``: ``fresh`` (the handshake passes), ``stale`` (proven: see :func:`judge_service`), ``slow`` (slow, but
    nothing shows it holds state from before the change), ``unjudged`` (the host's own proof fails, so a slow service
    is the outage itself, or the handshake failed for another reason)."""

    state: str
    detail: str | None
    started_before_change: bool | None
    findings: tuple[Finding, ...] = ()

    def as_dict(self) -> dict[str, t.Any]:
        return {"state": self.state, "stale": self.state == "stale", "detail": self.detail,
                "started_before_change": self.started_before_change}


def _utc(text: t.Any) -> datetime.datetime | None:
    try:
        value = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def started_before_change(measurement: ServiceMeasurement) -> bool | None:
    """Whether a named service's process started before the proxy value last changed (None: not known)."""
    changed = _utc(measurement.changed_at) if measurement.changed_at else None
    starts = [_utc(p.get("process_started")) for p in measurement.processes if p.get("process_started")]
    starts = [start for start in starts if start is not None]
    if changed is None or not starts:
        return None
    return min(starts) < changed


def _slow_samples(handshake: t.Mapping[str, t.Any], max_handshake_ms: int) -> tuple[list[int], int]:
    """(the completed full handshakes over the limit, the samples the audit's time box cut). A resumed handshake sends
    no certificate, so the service checks nothing: only full ones count (``full``: one flag per sample, when the host
    says; a host that does not say is taken as making full handshakes)."""
    samples = handshake.get("samples_ms") or []
    full = handshake.get("full") or [True] * len(samples)
    slow = [ms for ms, is_full in zip(samples, full, strict=False)
            if is_full and isinstance(ms, int) and ms > max_handshake_ms]
    cut = sum(1 for error in handshake.get("errors") or [] if is_time_box_error(error))
    return slow, cut


def judge_service(measurement: ServiceMeasurement | None, *, proof_passed: bool, services: t.Sequence[str],
                  max_handshake_ms: int) -> ServiceVerdict | None:
    """Is the running service stale? Only from what Windows shows, never from one time-boxed sample.

    Stale when the host's own proof passes (every fresh process is fast), a named service's process started before
    the proxy value last changed (it may hold the old WinHTTP session, memory cache and offline back-off), and the
    slowness is the wait of a stale path: a completed full handshake that lasted at least one URL retrieval timeout
    (``ChainUrlRetrievalTimeoutMilliseconds`` in force: what CryptoAPI waits before it gives a URL up, KB 884115), or
    two slow samples, or symptom events since the change. Otherwise a slow handshake is ``service_slow``, reported
    with what was seen and no restart advised: a handshake just over the limit is a busy host, not a stale one.
    """
    if measurement is None:
        return None
    handshake = measurement.handshake
    verdict, errors = handshake.get("verdict"), handshake.get("errors") or []
    if verdict == "pass":
        return ServiceVerdict("fresh", None, started_before_change(measurement))
    slow, cut = _slow_samples(handshake, max_handshake_ms)
    if verdict not in ("slow", "error") or (verdict == "error" and not cut):
        what = first_line(errors[0], 200) if errors else str(verdict)
        return ServiceVerdict("unjudged", f"the handshake with the host's own service failed: {what}",
                              started_before_change(measurement))
    if not proof_passed:
        return ServiceVerdict("unjudged", "the host's own proof fails, so a slow service is the outage itself",
                              started_before_change(measurement))
    older = started_before_change(measurement)
    took = f"{max(slow)} ms" if slow else f"cut by the audit's time box ({cut} sample(s))"
    seen = (f"a mutual-TLS handshake with its own service on {handshake.get('peer')} took {took} (limit "
            f"{max_handshake_ms} ms) while every fresh process passes")
    waited = [ms for ms in slow if ms >= measurement.url_timeout_ms]
    shown = [f"{len(waited)} completed full handshake(s) as long as a URL retrieval timeout "
             f"({measurement.url_timeout_ms} ms)"] if waited else []
    if len(slow) + cut >= 2 and not slow:
        shown.append(f"{cut} slow samples")
    if measurement.symptoms_since_change:
        shown.append(f"symptom events since the change ({', '.join(measurement.symptoms_since_change)})")
    if older and shown:
        started = min(str(p.get("process_started")) for p in measurement.processes if p.get("process_started"))
        detail = (f"{seen}; the service process started at {started}, before the proxy last changed at "
                  f"{measurement.changed_at} ({measurement.changed_source}), and {' and '.join(shown)} show it still "
                  f"holds state from before (its memory cache, offline back-off or WinHTTP session): restart "
                  f"{', '.join(services)} (fix_crl_restart_services: true) or wait for its back-off to run out")
        return ServiceVerdict("stale", detail, True, (_findings.finding("service_stale", detail),))
    if older is False:
        why = (f"its process started after the proxy last changed at {measurement.changed_at}, so it does not hold "
               "state from before the change: look at its own load or its peers")
    elif older is None:
        why = ("when its process started or when the proxy last changed is not known, so nothing shows it holds "
               "state from before the change")
    elif slow:
        why = (f"its process is older than the change, but its slowest full handshake ({max(slow)} ms) is shorter "
               f"than one URL retrieval timeout ({measurement.url_timeout_ms} ms), not the wait of a stale path")
    else:
        why = "its process is older than the change, but one time-boxed sample does not show that it is stale"
    detail = f"{seen}; {why}; no restart is advised on this evidence"
    return ServiceVerdict("slow", detail, older, (_findings.finding("service_slow", detail),))


def judge_restart(restart: t.Mapping[str, t.Any], measurement: ServiceMeasurement | None, *,
                  services: t.Sequence[str], max_handshake_ms: int) -> ServiceVerdict:
    """The service after the restart step: still stale when a service did not come back (or the step failed before
    it could handshake), else judged as any service is (a fresh process that is still slow is ``slow``, not stale)."""
    failed = [s for s in restart.get("services") or [] if not s.get("restarted")]
    if failed or measurement is None:
        detail = "the restart failed: " + "; ".join(
            f"{s.get('name')}: {s.get('error') or s.get('state') or 'not running'}"
            for s in failed or restart.get("services") or [])
        return ServiceVerdict("stale", detail, True, (_findings.finding("service_stale", detail),))
    verdict = judge_service(measurement, proof_passed=True, services=services, max_handshake_ms=max_handshake_ms)
    return t.cast(ServiceVerdict, verdict)


# ---- keep or roll back a change whose proof failed ----

def _passing_items(check: PhaseVerdict | None, requirement: str) -> set[str]:
    items = set()
    if check is None:
        return items
    for result in (check.crl or {}).get("results") or []:
        if result.get(requirement):
            items.add(f"endpoint {result.get('url')}")
    for result in (check.tls or {}).get("results") or []:
        if counts_as_pass(result):
            items.add(f"peer {result.get('peer')}")
    return items


def compare_before_after(before: PhaseVerdict | None, after: PhaseVerdict | None, *, requirement: str,
                         baseline_allowed: bool) -> dict[str, t.Any]:
    """Every endpoint and peer before vs after a change: what got worse, what got better, does the proxy path work.

    The proxy path works when some endpoint got an HTTP answer that is not a gateway error, or there is no HTTP
    endpoint at all (then the probes alone decide).
    """
    was, now = _passing_items(before, requirement), _passing_items(after, requirement)
    after_results = ((after.crl if after else None) or {}).get("results") or []
    answers = [r.get("http_status") for r in after_results
               if r.get("http_status") is not None and r.get("http_status") not in _GATEWAY_STATUSES]
    return {
        "baseline": baseline_allowed and before is not None,
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


__all__ = ["Criteria", "MeasuredPart", "Measurement", "PhaseVerdict", "ServiceVerdict", "chain_failures",
           "compare_before_after", "counts_as_pass", "explaining_checks", "first_line", "judge_phase", "judge_restart",
           "judge_service", "keep_decision", "started_before_change", "truncate"]
