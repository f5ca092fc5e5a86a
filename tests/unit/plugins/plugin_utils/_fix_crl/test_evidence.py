"""plugin_utils/_fix_crl/_evidence.py: the host's symptom events, chain-engine settings and fix marker, and the findings
the judge makes of them (``_findings.evidence_findings``).

The evidence documents here are shaped as ``_ps1/_evidence.ps1`` prints them (docs/dev/host-scripts.md, host_audit
"evidence"); the event texts are the sources' (33019: masteringmsuc 2012).
No real-host recording of this part exists yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _evidence, _findings, _judge
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from tests.unit.plugins.fixtures.fix_crl_steps import FakeSteps, run
from tests.unit.plugins.fixtures.winhttp.values import DIRECT_B64, PROXY_B64

MSG_33019 = ("Lync Server IM MCU failed to connect to the SIP Front End. Local Machine name: FE01 FE hostname: FE02 "
             "Message: TLS Negotiation took too long to complete.")


def event(log: str, provider: str, event_id: int, count: int, *, before: int | None = None,
          since: int | None = None, hours: dict[str, int] | None = None) -> dict[str, t.Any]:
    return {"log": log, "provider": provider, "id": event_id, "count": count, "first": "2026-12-03T01:00:00Z",
            "last": "2026-12-03T09:00:00Z", "message": MSG_33019, "before": before, "since": since,
            "hours": hours or {"2026-12-03T09:00:00Z": count}}


def document(*events: dict[str, t.Any], fixed_at: str | None = None, capi2_enabled: bool = False,
             policy: dict[str, t.Any] | None = None, config: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    names = list(_evidence.CHAIN_ENGINE_DEFAULTS)
    return {
        "now": "2026-12-03T10:00:00Z", "hours": 24, "window_start": "2026-12-02T10:00:00Z",
        "marker": {"previous": fixed_at, "fixed_at": fixed_at, "written": False},
        "logs": [{"log": "Lync Server", "exists": True, "enabled": True, "error": None},
                 {"log": "System", "exists": True, "enabled": True, "error": None},
                 {"log": _evidence.CAPI2_LOG, "exists": True, "enabled": capi2_enabled, "error": None}],
        "queries": [{"log": "Lync Server", "provider": None, "status": "ok", "error": None, "read": 3, "counted": 3,
                     "truncated": False}],
        "events": list(events),
        "chain_engine": {source: {"present": keys is not None, "values": {n: (keys or {}).get(n) for n in names}}
                         for source, keys in (("policy", policy), ("config", config))},
    }


PASSING = {"before": {"crl_ok": True, "tls_ok": True, "passed": True}}
FAILING = {"before": {"crl_ok": False, "tls_ok": False, "passed": False}}


def evidence_findings(evidence: dict[str, t.Any], checks: dict[str, t.Any],
                      identities: list[dict[str, t.Any]] | None = None) -> list[tuple[str, str]]:
    """The judge's findings of the evidence, given the checks before any change and each identity's chain."""
    before = checks["before"]
    verdict = _judge.PhaseVerdict(crl_ok=before["crl_ok"], tls_ok=before["tls_ok"], identities_ok=None,
                                  passed=before["passed"], summary="", findings=(), crl=None, tls=None)
    chains = {i["identity"]: {"chain_ok": i["chain"]["passed"]} for i in identities or []}
    passed, checked = _judge.explaining_checks(verdict, chains)
    return [(f.code, f.detail) for f in _findings.ordered(_findings.evidence_findings(evidence, passed, checked))]


def codes(findings: list[tuple[str, str]]) -> list[str]:
    return [code for code, _detail in findings]


def test_host_args_read_the_scm_log_only_for_named_services_and_refuse_bad_hours() -> None:
    plain = _evidence.host_args(hours=24, services=(), mark=False)
    assert [q["log"] for q in plain["queries"]] == ["Lync Server", "System", _evidence.CAPI2_LOG]
    with_services = _evidence.host_args(hours=24, services=["MSExchangeTransport"], mark=False)
    assert with_services["queries"][-1] == {"log": "System", "provider": "Service Control Manager",
                                            "ids": [7000, 7009, 7011], "levels": None, "services": True}
    marker_only = _evidence.host_args(hours=24, services=(), mark=True, read=False)
    assert (marker_only["queries"], marker_only["chain_engine"], marker_only["mark"]) == ([], [], True)
    with pytest.raises(ValueError, match=r"evidence_hours: must be an integer from 1 to 744, got 0"):
        _evidence.host_args(hours=0, services=(), mark=False)


def test_the_policy_key_wins_over_the_config_key_and_the_default_fills_the_rest() -> None:
    settings = _evidence.chain_engine_settings(document(
        policy={"ChainUrlRetrievalTimeoutMilliseconds": 3000},
        config={"ChainUrlRetrievalTimeoutMilliseconds": 30000,
                "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 60000})["chain_engine"])
    assert settings["ChainUrlRetrievalTimeoutMilliseconds"] == {
        "policy": 3000, "config": 30000, "default": 15000, "source": "policy", "in_force": 3000}
    assert settings["ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds"]["source"] == "config"
    assert settings["MaxUrlRetrievalByteCount"] == {"policy": None, "config": None, "default": 104857600,
                                                    "source": "default", "in_force": 104857600}


def test_slow_timeouts_in_force_are_a_finding_and_a_shorter_policy_hides_a_slow_config() -> None:
    slow = _evidence.build_evidence(document(config={"ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 60000}))
    found = evidence_findings(slow, FAILING)
    assert ("slow_chain_timeouts", "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds is 60000 ms (from the config "
            "key), over the default 20000 ms: every blocked revocation fetch waits longer") in found
    hidden = _evidence.build_evidence(document(
        policy={"ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 4000},
        config={"ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 60000}))
    assert "slow_chain_timeouts" not in codes(evidence_findings(hidden, FAILING))


def test_a_disabled_capi2_log_is_a_finding_and_an_absent_lync_log_is_not() -> None:
    evidence = _evidence.build_evidence(document())
    evidence["logs"][0]["exists"] = False  # an Exchange server has no Lync Server log
    assert codes(evidence_findings(evidence, FAILING)) == ["capi2_log_disabled"]
    enabled = _evidence.build_evidence(document(capi2_enabled=True))
    assert codes(evidence_findings(enabled, FAILING)) == []


def test_symptoms_while_every_cause_check_passes_say_look_elsewhere_and_name_what_was_checked() -> None:
    evidence = _evidence.build_evidence(document(event("Lync Server", "LS IM MCU", 33019, 47), capi2_enabled=True))
    (code, detail), = evidence_findings(evidence, PASSING)
    assert code == "symptoms_without_cause"
    assert detail.startswith("LS IM MCU 33019 x47 while the revocation endpoints through the machine WinHTTP proxy "
                             "and the TLS handshakes with revocation checking pass: look elsewhere")
    assert evidence_findings(evidence, FAILING) == []  # the proxy path explains them


def test_an_identity_whose_chain_check_fails_explains_the_symptoms() -> None:
    evidence = _evidence.build_evidence(document(event("Lync Server", "LS IM MCU", 33019, 5), capi2_enabled=True))
    passing = [{"identity": "NT AUTHORITY\\NETWORK SERVICE", "chain": {"passed": True}}]
    failing = [*passing, {"identity": "CONTOSO\\svc-lync", "chain": {"passed": False}}]
    assert "as NT AUTHORITY\\NETWORK SERVICE pass" in evidence_findings(evidence, PASSING, passing)[0][1]
    assert evidence_findings(evidence, PASSING, failing) == []


def test_after_a_fix_only_the_symptoms_since_it_count_and_they_are_a_finding() -> None:
    quiet = _evidence.build_evidence(document(event("Lync Server", "LS IM MCU", 33019, 47, before=47, since=0),
                                              fixed_at="2026-12-03T09:30:00Z", capi2_enabled=True))
    assert _evidence.symptom_totals(quiet) == {"count": 47, "before": 47, "since": 0}
    assert evidence_findings(quiet, PASSING) == []
    loud = _evidence.build_evidence(document(event("Lync Server", "LS IM MCU", 33019, 49, before=47, since=2),
                                             fixed_at="2026-12-03T09:30:00Z", capi2_enabled=True))
    assert codes(evidence_findings(loud, PASSING)) == ["symptoms_since_fix", "symptoms_without_cause"]
    assert evidence_findings(loud, PASSING)[0][1] == (
        "2 symptom event(s) since the fix at 2026-12-03T09:30:00Z: LS IM MCU 33019 x2")


def test_unreadable_logs_and_a_failed_part_are_findings_never_errors() -> None:
    denied = document(capi2_enabled=True)
    denied["queries"].append({"log": "System", "provider": "Schannel", "status": "denied", "read": 0, "counted": 0,
                              "error": "Attempted to perform an unauthorized operation.", "truncated": False})
    assert evidence_findings(_evidence.build_evidence(denied), FAILING) == [
        ("event_log_unreadable", "System (Schannel): denied: Attempted to perform an unauthorized operation.")]
    failed = _evidence.build_evidence(ExpectedFailure("Get-WinEvent is not available"))
    assert failed["events"] == [] and codes(evidence_findings(failed, PASSING)) == ["evidence_unreadable"]


def test_the_hourly_counts_add_up_over_every_event() -> None:
    evidence = _evidence.build_evidence(document(
        event("Lync Server", "LS IM MCU", 33019, 3, hours={"2026-12-03T08:00:00Z": 1, "2026-12-03T09:00:00Z": 2}),
        event("System", "Schannel", 36887, 1, hours={"2026-12-03T09:00:00Z": 1})))
    assert evidence["hourly"] == {"2026-12-03T08:00:00Z": 1, "2026-12-03T09:00:00Z": 3}
    assert [e["id"] for e in evidence["events"]] == [33019, 36887] and "hours" not in evidence["events"][0]


# -- through the host run ---------------------------------------------------------------------------------------------
class EvidenceHost(FakeSteps):
    """FakeSteps whose audits also answer the evidence part, and remember the marker each audit asked for."""

    def __init__(self, monkeypatch, part: t.Any, **kwargs: t.Any) -> None:
        super().__init__(monkeypatch, **kwargs)
        self.part = part

    def audit(self, connection, request, *, check_mode, task_action):
        audit = super().audit(connection, request, check_mode=check_mode, task_action=task_action)
        if request.evidence is None:
            return audit
        part = self.part
        if isinstance(part, dict):  # the host's clock: right, unless a test says otherwise
            part = {**part, "now": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if request.evidence["mark"]:
            part = {"marker": {"previous": "2026-11-01T00:00:00Z", "fixed_at": "2026-12-03T10:00:05Z",
                               "written": True}}
        return dataclasses.replace(audit, evidence=part)


def test_an_audit_reads_the_evidence_in_its_one_command_and_records_it(monkeypatch) -> None:
    host = EvidenceHost(monkeypatch, document(event("Lync Server", "LS IM MCU", 33019, 47), capi2_enabled=False),
                        views=(DIRECT_B64, DIRECT_B64), healthy_before=False)
    record = run(True, services=["RTCSRV"])
    assert record["commands"] == 1 and host.audits[0].evidence["services"] == ["RTCSRV"]
    assert record["evidence"]["events"][0]["count"] == 47
    assert record["evidence"]["events"][0]["message"].endswith("TLS Negotiation took too long to complete.")
    assert [f["code"] for f in record["findings"]] == ["capi2_log_disabled"]
    assert record["findings"][0]["identity"] is None


def test_a_fix_records_the_time_of_the_change_in_its_verification_command(monkeypatch) -> None:
    host = EvidenceHost(monkeypatch, document(event("Lync Server", "LS IM MCU", 33019, 47), capi2_enabled=True),
                        views=(DIRECT_B64, DIRECT_B64), healthy_before=False)
    record = run(False)
    assert (record["status"], record["commands"]) == ("changed", 3)
    assert host.audits[0].evidence["mark"] is False and host.audits[1].evidence["mark"] is True
    assert record["evidence"]["marker"] == {"previous": "2026-11-01T00:00:00Z", "written": "2026-12-03T10:00:05Z"}


def test_a_compliant_host_with_symptoms_since_the_fix_is_not_compliant(monkeypatch) -> None:
    EvidenceHost(monkeypatch, document(event("Lync Server", "LS IM MCU", 33019, 3, before=40, since=3),
                                       fixed_at="2026-12-02T12:00:00Z", capi2_enabled=True),
                 views=(PROXY_B64, PROXY_B64), healthy_before=True)
    record = run(True)
    assert record["status"] == "failed"
    assert record["reason"].startswith("the cause is not determined: the measurement passes, but the host logged "
                                       "symptoms since the fix: 3 ")
    assert [d["cause"] for d in record["diagnosis"]] == ["undetermined"]
    assert [f["code"] for f in record["findings"]] == ["symptoms_since_fix", "symptoms_without_cause"]


def test_a_host_whose_evidence_part_failed_is_judged_on_its_measurement(monkeypatch) -> None:
    EvidenceHost(monkeypatch, ExpectedFailure("the host could not read its evidence: boom"),
                 views=(PROXY_B64, PROXY_B64), healthy_before=True)
    record = run(True)
    assert record["status"] == "compliant" and [f["code"] for f in record["findings"]] == ["evidence_unreadable"]


def test_enable_capi2_log_is_sent_only_outside_check_mode_and_recorded_as_a_change(monkeypatch) -> None:
    part = document(capi2_enabled=False)
    part["enabled_log"] = {"log": _evidence.CAPI2_LOG, "previous": False, "enabled": True, "error": None}
    host = EvidenceHost(monkeypatch, part, views=(PROXY_B64, PROXY_B64), healthy_before=True)
    record = run(False, enable_capi2_log=True)
    assert host.audits[0].evidence["enable_log"] == _evidence.CAPI2_LOG
    assert record["evidence"]["capi2_log"] == {"previous": False, "enabled": True, "changed": True, "error": None}
    assert (record["status"], record["changed"], record["commands"]) == ("compliant", True, 1)
    assert "capi2_log_disabled" not in [f["code"] for f in record["findings"]]


def test_in_check_mode_enable_capi2_log_predicts_and_sends_no_write(monkeypatch) -> None:
    host = EvidenceHost(monkeypatch, document(capi2_enabled=False), views=(PROXY_B64, PROXY_B64),
                        healthy_before=True)
    record = run(True, enable_capi2_log=True)
    assert host.audits[0].evidence["enable_log"] is None
    assert record["evidence"]["capi2_log"]["predicted"] is True and record["changed"] is True
    assert "capi2_log_disabled" in [f["code"] for f in record["findings"]]


def test_a_query_error_on_a_log_the_host_does_not_have_is_no_finding() -> None:
    part = document(capi2_enabled=True)
    part["logs"][0]["exists"] = False  # no Lync Server log: the query's own error text varies, -ListLog decides
    part["queries"][0].update(status="error", error="The specified channel could not be found.")
    assert evidence_findings(_evidence.build_evidence(part), FAILING) == []


def test_the_service_is_judged_against_the_url_timeout_in_force() -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import HostAudit

    audit = HostAudit(winhttp_state=None, winhttp={}, certificates=None, crl=None, tls=None, elapsed_ms=None,
                      time_box_ms=None, time_box_hit=False, service={"peer": "fe01:5061", "samples_ms": [4012]})
    settings = _evidence.chain_engine_settings(document(policy={"ChainUrlRetrievalTimeoutMilliseconds": 3000})[
        "chain_engine"])
    measured = _evidence.service_measurement(audit, {"chain_engine": settings})
    assert measured is not None and measured.url_timeout_ms == 3000
    # Without the chain engine's values the service is judged against Windows' default (15 s per URL, KB 884115).
    assert _evidence.service_measurement(audit, {}).url_timeout_ms == 15000
