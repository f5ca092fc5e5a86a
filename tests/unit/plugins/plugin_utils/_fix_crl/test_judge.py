"""plugin_utils/_fix_crl/_judge.py and _findings.py: measurements in, frozen verdicts out; every finding code.

The measured parts are shaped as ``crl_retrieval_check``/``tls_probe`` return them (their own tests replay host
output); the identities as ``_identities.summarise`` makes them; the service's process times as host_audit's
identities part carries them (docs/dev/host-scripts.md).
"""

from __future__ import annotations

import dataclasses
import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _findings, _judge
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import ServiceMeasurement
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import (
    Criteria,
    Measurement,
    judge_phase,
    judge_restart,
    judge_service,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure

CRITERIA = Criteria("usable", 1000)
URL = "http://crl.public-ca.test/issuing-ca.crl"
NS = "NT AUTHORITY\\NETWORK SERVICE"
CUT = "sample 1: not finished within the audit's time box of 2000 ms"


def crl(ok: bool, **result: t.Any) -> dict[str, t.Any]:
    entry = {"url": URL, "reachable": ok, "usable": ok, "http_status": 200 if ok else None,
             "error": None if ok else "The operation timed out", **result}
    return {"results": [entry], "summary": {"total": 1, "reachable": int(ok), "usable": int(ok)},
            "all_reachable": ok, "all_usable": ok}


def tls(verdict: str = "pass", **result: t.Any) -> dict[str, t.Any]:
    entry = {"peer": "fe02:5061", "verdict": verdict, "max_ms": 40 if verdict == "pass" else 4000, "errors": [],
             **result}
    return {"results": [entry], "all_pass": verdict == "pass", "worst_ms": entry["max_ms"], "max_handshake_ms": 1000,
            "offered_protocols": "Tls, Tls11, Tls12"}


def identity(chain_ok: bool | None, proxy: str | None = "proxy:8080", **entry: t.Any) -> dict[str, t.Any]:
    path = {"source": "netsh", "proxy": proxy} if proxy else {"source": "direct", "proxy": None}
    return {"effective_proxy": path, "chain_ok": chain_ok, "chain_ms": 40, "error": None, **entry}


DESIRED = {"state": "present", "proxy": "proxy:8080"}
CALLER = {"name": "LAB\\ansible", "effective_proxy": {"source": "netsh", "proxy": "proxy:8080"}}


def test_a_phase_passes_only_when_every_check_passes_and_the_verdict_cannot_change() -> None:
    verdict = judge_phase(Measurement(crl=crl(True), tls=tls(), identities={NS: identity(True)}, caller=CALLER,
                                      desired=DESIRED), CRITERIA)
    assert (verdict.passed, verdict.crl_ok, verdict.tls_ok, verdict.identities_ok) == (True, True, True, True)
    assert verdict.summary == "CRL: 1/1 endpoints usable; TLS: 1/1 peers pass, worst handshake 40 ms (limit 1000 ms)"
    assert verdict.findings == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.passed = False  # type: ignore[misc]


@pytest.mark.parametrize(("measurement", "failing"), [
    (Measurement(crl=crl(False)), "crl_ok"),
    (Measurement(tls=tls("slow")), "tls_ok"),
    (Measurement(crl=ExpectedFailure("crl_fetch: the host could not fetch")), "crl_ok"),
    (Measurement(identities={NS: identity(False, error="chain of CN=fe01: RevocationStatusUnknown")}),
     "identities_ok"),
    (Measurement(crl=crl(True), lost=True), None),
])
def test_any_failing_check_fails_the_phase_and_says_where(measurement: Measurement, failing: str | None) -> None:
    verdict = judge_phase(measurement, CRITERIA)
    assert verdict.passed is False
    if failing:
        assert getattr(verdict, failing) is False
    if failing == "identities_ok":
        assert verdict.summary.endswith(f"; CryptoAPI as {NS} after 40 ms: chain of CN=fe01: RevocationStatusUnknown")


def test_an_identity_whose_proof_did_not_run_is_not_a_failure() -> None:
    verdict = judge_phase(Measurement(identities={NS: identity(None)}), CRITERIA)
    assert verdict.passed is True and verdict.identities_ok is True


def test_a_peer_slow_only_because_of_its_own_state_does_not_fail_this_host() -> None:
    assert judge_phase(Measurement(tls=tls("slow", slow_because="peer")), CRITERIA).tls_ok is True


def test_a_peer_whose_certificate_names_no_http_crl_location_is_the_peers_and_is_said() -> None:
    verdict = judge_phase(Measurement(tls=tls("revocation_unknown", unknown_because="peer_certificate")), CRITERIA)
    assert verdict.tls_ok is True and verdict.passed is True
    assert "1 with a certificate that names no HTTP CRL location, not counted: the peer's certificate (fe02:5061)" \
        in verdict.summary
    # Any other unknown revocation is this host's: its path could not check a certificate others can.
    ours = tls("revocation_unknown", unknown_because="this_host")
    assert judge_phase(Measurement(tls=ours), CRITERIA).tls_ok is False


def service(verdict: str = "slow", *, samples: list[int | None] | None = None, errors: list[str] | None = None,
            started: str | None = "2026-12-01T08:00:00Z", changed: str | None = "2026-12-02T09:00:00Z",
            symptoms: tuple[str, ...] = (), url_timeout_ms: int = 3000) -> ServiceMeasurement:
    """The service's handshake; by default a host whose chain engine gives a URL 3 s (ChainUrlRetrievalTimeout...)
    and a handshake that waited it out (4012 ms)."""
    handshake = {"peer": "fe01:5061", "verdict": verdict, "samples_ms": samples if samples is not None else [4012],
                 "errors": errors or []}
    processes = ({"name": "RTCSRV", "process_started": started},) if started else ()
    return ServiceMeasurement(handshake, processes, changed, "registry" if changed else None, symptoms,
                              url_timeout_ms=url_timeout_ms)


def judged(measurement: ServiceMeasurement, *, passed: bool = True) -> _judge.ServiceVerdict:
    verdict = judge_service(measurement, proof_passed=passed, services=["RTCSRV", "RTCMEDSRV"], max_handshake_ms=1000)
    assert verdict is not None
    return verdict


def test_a_service_older_than_the_change_with_a_completed_slow_handshake_is_stale() -> None:
    verdict = judged(service())
    assert (verdict.state, verdict.started_before_change) == ("stale", True)
    [finding] = verdict.findings
    assert finding.code == "service_stale" and "restart RTCSRV, RTCMEDSRV" in finding.detail
    assert "started at 2026-12-01T08:00:00Z, before the proxy last changed at 2026-12-02T09:00:00Z" in finding.detail


@pytest.mark.parametrize(("measurement", "why"), [
    # one sample the audit's time box cut: never enough for a restart, however old the process
    (service("error", samples=[None], errors=[CUT]), "one time-boxed sample does not show"),
    # the process started after the change: it cannot hold state from before it
    (service(started="2026-12-02T10:00:00Z"), "started after the proxy last changed"),
    # Windows did not say when the process started or when the value changed
    (service(started=None), "is not known"),
    (service(changed=None), "is not known"),
    # just over the limit on a busy host, far from the wait of a stale path (15 s per URL by default)
    (service(samples=[1075, 220, 98], url_timeout_ms=15000),
     "slowest full handshake (1075 ms) is shorter than one URL retrieval timeout (15000 ms)"),
])
def test_slowness_without_evidence_of_staleness_is_service_slow_and_advises_no_restart(measurement, why) -> None:
    verdict = judged(measurement)
    assert verdict.state == "slow"
    [finding] = verdict.findings
    assert finding.code == "service_slow" and why in finding.detail and "no restart is advised" in finding.detail


def test_symptoms_since_the_change_make_a_cut_sample_evidence_enough() -> None:
    verdict = judged(service("error", samples=[None], errors=[CUT], symptoms=("LS IM MCU 33019 x3",)))
    assert verdict.state == "stale" and "LS IM MCU 33019 x3" in verdict.detail


def test_resumed_handshakes_do_not_count_as_the_service_s_work() -> None:
    measurement = service(samples=[4012])
    resumed = dataclasses.replace(measurement, handshake={**measurement.handshake, "full": [False]})
    assert judged(resumed).state == "slow"


@pytest.mark.parametrize(("measurement", "passed", "state"), [
    (service("pass", samples=[15]), True, "fresh"),
    (service(), False, "unjudged"),  # the host's own proof fails: the slow service is the outage itself
    (service("revocation_unknown"), True, "unjudged"),  # this host's view of its own certificate
    (service("error", samples=[None], errors=["sample 1: No connection could be made"]), True, "unjudged"),
])
def test_other_handshakes_are_fresh_or_unjudged_and_never_a_finding(measurement, passed, state) -> None:
    verdict = judged(measurement, passed=passed)
    assert verdict.state == state and verdict.findings == ()


def test_a_restart_that_failed_keeps_the_service_stale_with_windows_message() -> None:
    restart = {"services": [{"name": "RTCSRV", "restarted": False, "error": "Time out has expired"}]}
    verdict = judge_restart(restart, None, services=["RTCSRV"], max_handshake_ms=1000)
    assert verdict.state == "stale" and verdict.detail == "the restart failed: RTCSRV: Time out has expired"


def test_keep_a_change_only_when_nothing_got_worse_and_the_proxy_answers() -> None:
    before = judge_phase(Measurement(crl=crl(True), tls=tls()), CRITERIA)
    worse = judge_phase(Measurement(crl=crl(False), tls=tls()), CRITERIA)
    comparison = _judge.compare_before_after(before, worse, requirement="usable", baseline_allowed=True)
    assert _judge.keep_decision(comparison) == (False, f"it made worse: endpoint {URL}")
    same = _judge.compare_before_after(before, before, requirement="usable", baseline_allowed=True)
    assert _judge.keep_decision(same) == (True, None)
    gateway = judge_phase(Measurement(crl=crl(False, http_status=502)), CRITERIA)
    dead = _judge.compare_before_after(None, gateway, requirement="usable", baseline_allowed=True)
    assert _judge.keep_decision(dead) == (False, "no endpoint got an HTTP answer through the new proxy")


# ---- every finding code has its rule, and each rule is reached ----

def _evidence(**changes: t.Any) -> dict[str, t.Any]:
    evidence = {"error": None, "events": [], "logs": [], "queries": [], "chain_engine": None, "capi2_log": None,
                "fixed_at": None, "marker": {"previous": None, "written": None}}
    return {**evidence, **changes}


EVENT = {"log": "Lync Server", "provider": "LS IM MCU", "id": 33019, "count": 3, "before": 1, "since": 2}
FINDINGS: dict[str, t.Callable[[], t.Iterable[_findings.Finding]]] = {
    "capi2_log_disabled": lambda: _findings.evidence_findings(_evidence(logs=[
        {"log": "Microsoft-Windows-CAPI2/Operational", "exists": True, "enabled": False}]), False, []),
    "capi2_log_not_enabled": lambda: _findings.evidence_findings(_evidence(capi2_log={"error": "denied"}), False, []),
    "event_log_missing": lambda: _findings.evidence_findings(_evidence(logs=[{"log": "System", "exists": False}]),
                                                             False, []),
    "event_log_unreadable": lambda: _findings.evidence_findings(_evidence(queries=[
        {"log": "System", "provider": "Schannel", "status": "denied", "error": "Access is denied"}]), False, []),
    "evidence_unreadable": lambda: _findings.evidence_findings(_evidence(error="Get-WinEvent failed"), False, []),
    "fix_time_not_recorded": lambda: _findings.evidence_findings(_evidence(marker={"error": "denied"}), False, []),
    "identity_path_differs": lambda: _findings.path_findings({NS: identity(True, proxy=None)}, CALLER, DESIRED),
    "protocol_mismatch": lambda: _findings.protocol_findings(tls("error", protocol_mismatch=True)),
    "proxy_filters_agent": lambda: _findings.refusal_findings(crl(True, foreign_agent={"http_status": 403})),
    "proxy_rejects_agent": lambda: _findings.refusal_findings(crl(False, http_status=407)),
    "service_slow": lambda: judged(service(started=None)).findings,
    "service_stale": lambda: judged(service()).findings,
    "slow_chain_timeouts": lambda: _findings.evidence_findings(_evidence(chain_engine={
        "ChainUrlRetrievalTimeoutMilliseconds": {"in_force": 60000, "default": 15000, "source": "policy"}}),
        False, []),
    "symptoms_since_fix": lambda: _findings.evidence_findings(_evidence(events=[EVENT], fixed_at="2026-12-02T09:00Z"),
                                                              False, []),
    "symptoms_without_cause": lambda: _findings.evidence_findings(_evidence(events=[{**EVENT, "since": None}]),
                                                                  True, ["the proxy path"]),
    "work_folder_untrusted": lambda: _findings.work_folder_findings({"path": "C:\\ProgramData\\crlfix",
                                                                     "trusted": False, "reason": "a reparse point"}),
}


def test_every_finding_code_has_a_rule_that_reaches_it() -> None:
    assert set(FINDINGS) == set(_findings.CODES)


@pytest.mark.parametrize("code", sorted(_findings.CODES))
def test_each_rule_writes_its_code_with_a_detail(code: str) -> None:
    made = [f for f in FINDINGS[code]() if f.code == code]
    assert made and all(f.detail for f in made)


def test_an_unknown_code_is_refused_and_findings_come_once_in_record_order() -> None:
    with pytest.raises(ValueError, match="'made_up' is not a finding code"):
        _findings.finding("made_up", "x")
    found = _findings.ordered([_findings.finding("service_slow", "b"), _findings.finding("capi2_log_disabled", "a"),
                               _findings.finding("identity_path_differs", "c", "Z"),
                               _findings.finding("identity_path_differs", "c"),
                               _findings.finding("service_slow", "b")])
    assert [(f.code, f.identity) for f in found] == [("capi2_log_disabled", None), ("identity_path_differs", None),
                                                     ("identity_path_differs", "Z"), ("service_slow", None)]
