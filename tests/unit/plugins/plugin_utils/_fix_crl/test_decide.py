"""plugin_utils/_fix_crl/_decide.py: the one rule from a run's facts to the host's status and reason.

The facts are built from record fields, as the host record and the restart step both build them
(``Facts.of_record``); every status a record can carry is reached here.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._decide import (
    Facts,
    Status,
    decide,
    decide_without_service,
)

PASSING = {"passed": True, "summary": "CRL: 1/1 endpoints usable; TLS: 1/1 peers pass"}
FAILING = {"passed": False, "summary": "CRL: 0/1 endpoints usable (http://crl.a/x.crl: The operation timed out)"}


def record(**fields: t.Any) -> dict[str, t.Any]:
    base = {"check_mode": False, "errors": [], "desired": {"state": "present", "proxy": "proxy:8080"},
            "planned": {"predicted_change": False, "views": []}, "rollback": None, "checks": {"before": PASSING},
            "findings": [], "service": None}
    return {**base, **fields}


CHANGE = {"predicted_change": True, "views": ["native", "wow6432"]}
STALE = {"verdict": {"state": "stale", "detail": "the service process started before the proxy changed"},
         "restart": None}
CASES: list[tuple[str, dict[str, t.Any], Status, str | None]] = [
    ("correct host", record(), Status.COMPLIANT, None),
    ("audit of a host that needs the proxy", record(check_mode=True, planned=CHANGE, checks={"before": FAILING}),
     Status.WOULD_CHANGE, "would set proxy proxy:8080 in native, wow6432; now: CRL: 0/1"),
    ("a fix that verified", record(planned=CHANGE, checks={"before": FAILING, "after": PASSING}), Status.CHANGED,
     "set proxy proxy:8080 in native, wow6432; CRL: 1/1"),
    ("a fix rolled back", record(planned=CHANGE, checks={"before": PASSING, "after": FAILING},
                                 rollback={"performed": True, "ok": True, "why": "it made worse: endpoint x"}),
     Status.ROLLED_BACK, "verification failed after setting proxy proxy:8080"),
    ("a rollback that failed", record(planned=CHANGE, checks={"before": PASSING, "after": FAILING},
                                      rollback={"performed": True, "ok": False}, errors=[
                                          {"step": "rollback", "msg": "the rollback failed", "unreachable": False}]),
     Status.FAILED, "rollback: the rollback failed"),
    ("a change kept that still fails where it failed before",
     record(planned=CHANGE, checks={"before": FAILING, "after": FAILING}, rollback={"performed": False, "kept": True}),
     Status.FAILED, "set proxy proxy:8080 in native, wow6432 and kept it"),
    ("a change kept with fix_crl_rollback false", record(planned=CHANGE, checks={"before": FAILING, "after": FAILING}),
     Status.FAILED, "verification failed after setting proxy proxy:8080 and fix_crl_rollback is false"),
    ("a host whose measurement fails and needs no change", record(checks={"before": FAILING}), Status.FAILED,
     "verification failed and this run changed nothing, so there is nothing to roll back: CRL: 0/1"),
    ("symptoms since the fix", record(findings=[{"code": "symptoms_since_fix", "detail": "2 symptom event(s)"}]),
     Status.FAILED, "the measurement passes, but the host logged symptoms since the fix: 2 symptom event(s)"),
    ("a host never reached", record(errors=[{"step": "gather", "msg": "winrm: refused", "unreachable": True}],
                                    checks={}), Status.UNREACHABLE, "gather: winrm: refused"),
    ("a step that failed", record(errors=[{"step": "plan", "msg": "fix_crl_proxy is not set", "unreachable": False}],
                                  checks={}), Status.FAILED, "plan: fix_crl_proxy is not set"),
    ("a stale service on a compliant host", record(service=STALE), Status.FAILED,
     "service_stale: the service process started before the proxy changed"),
    ("a stale service after a verified fix", record(planned=CHANGE, checks={"before": FAILING, "after": PASSING},
                                                    service=STALE), Status.FAILED, "service_stale: "),
    ("a slow service decides nothing", record(service={"verdict": {"state": "slow", "detail": "x"}}),
     Status.COMPLIANT, None),
    ("a stale service does not outrank a host that needs the proxy",
     record(check_mode=True, planned=CHANGE, checks={"before": FAILING}, service=STALE), Status.WOULD_CHANGE,
     "would set"),
    ("the restart's verdict is the one in force",
     record(service={**STALE, "restart": {"verdict": {"state": "fresh", "detail": None}}}), Status.COMPLIANT, None),
]


@pytest.mark.parametrize(("fields", "status", "reason"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_the_status_and_reason_of_each_kind_of_run(fields: dict, status: Status, reason: str | None) -> None:
    got_status, got_reason = decide(Facts.of_record(fields))
    assert got_status is status
    if reason is None:
        assert got_reason is None
    else:
        assert got_reason is not None and got_reason.startswith(reason), got_reason


def test_every_status_a_record_carries_is_reached() -> None:
    reached = {case[2] for case in CASES}
    assert reached == set(Status) - {Status.NOT_RUN}  # not_run is the report's word for a host without a record


def test_without_the_service_the_host_is_what_it_would_be_once_the_service_is_fresh() -> None:
    facts = Facts.of_record(record(planned=CHANGE, checks={"before": FAILING, "after": PASSING}, service=STALE))
    assert decide(facts)[0] is Status.FAILED
    assert decide_without_service(facts) == (Status.CHANGED, "set proxy proxy:8080 in native, wow6432; "
                                             + PASSING["summary"])


def test_direct_access_is_named_as_such() -> None:
    facts = Facts.of_record(record(check_mode=True, planned=CHANGE, desired={"state": "absent"},
                                   checks={"before": FAILING}))
    assert decide(facts)[1].startswith("would set direct access in native, wow6432")
