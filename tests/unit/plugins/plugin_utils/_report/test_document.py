"""The report document: per-host records of the fix_crl role in, one entry per host, totals and findings out."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import (
    build_report,
    measurement_worst_ms,
    plain,
    worst_handshake,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._summary import _format_worst, summary_lines
from tests.unit.plugins.fixtures.report_records import FLEET, HOSTS, MOMENT, record


def test_totals_count_every_targeted_host_once_and_a_host_without_record_as_not_run() -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    assert report["totals"] == {"hosts": 5, "checked": 3, "compliant": 1, "would_change": 0, "changed": 1,
                                "rolled_back": 1, "failed": 0, "unreachable": 1, "not_run": 1, "changes_kept": 1,
                                "symptoms_before": 0, "symptoms_since": 0, "symptoms_unfixed": 0, "symptoms_read": 0,
                                "symptoms_fixed": 0, "causes": {}, "owners": {}, "risks": {}}
    assert [h["host"] for h in report["hosts"]] == sorted(HOSTS)
    missing = report["hosts"][-1]
    assert missing["status"] == "not_run"
    assert "never ran" in missing["reason"]
    assert report["run"] == {"id": "r1", "time": "2026-11-26T05:01:02Z", "check_mode": False, "rollout_stopped": None}


def test_worst_handshake_before_is_what_the_run_found_and_after_is_what_it_left() -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    # fe03 was slowest before (15020); after: fe03's rollback measurement (15030) beats its "after" (900).
    before = {"ms": 15020, "host": "lync-fe03.lab.test", "phase": "before", "at_least": False}
    after = {"ms": 15030, "host": "lync-fe03.lab.test", "phase": "after_rollback", "at_least": False}
    assert report["worst_handshake"] == {"before": before, "after": after}


def test_a_handshake_the_audits_time_box_cut_is_the_worst_at_least_the_box() -> None:
    fast = {"host": "fe01", "probes": {"before": {"worst_ms": 117, "unfinished_ms": None}}}
    cut = {"host": "fe02", "probes": {"before": {"worst_ms": None, "unfinished_ms": 2000, "results": []}}}
    worst = worst_handshake([fast, cut], ("before",))
    assert worst == {"ms": 2000, "host": "fe02", "phase": "before", "at_least": True}
    assert _format_worst(worst) == "over 2000 ms (fe02: cut by the audit's time box)"
    assert worst_handshake([fast], ("before",))["at_least"] is False


def test_endpoint_status_is_the_latest_measurement_and_probes_keep_every_phase() -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    fe02 = next(h for h in report["hosts"] if h["host"] == "lync-fe02.lab.test")
    assert fe02["endpoints"][0]["result"]["reachable"] is True
    assert fe02["endpoints"][0]["result"]["phase"] == "after"
    assert set(fe02["probes"]) == {"before", "after"}
    assert fe02["probes"]["before"]["worst_ms"] == 15012
    assert fe02["verification"]["after"]["passed"] is True


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not a dict", "not a mapping"),
        ({"schema": 2, "status": "compliant"}, "schema 2 is not 1"),
        ({"schema": 1, "status": "great"}, "status 'great' is not one of"),
        ({"schema": 1, "status": "not_run"}, "status 'not_run' is not one of"),
    ],
)
def test_a_malformed_record_fails_that_host_only(bad, reason) -> None:
    report = build_report(["a", "b"], {"a": bad, "b": FLEET["lync-fe01.lab.test"]}, check_mode=False,
                          run_id="r", moment=MOMENT)
    host_a, host_b = report["hosts"]
    assert host_a["status"] == "failed"
    assert reason in host_a["reason"]
    assert host_a["errors"][-1]["step"] == "report"
    assert host_b["status"] == "compliant"


def test_certificate_findings_are_listed_per_flag_and_in_the_summary() -> None:
    records = {"a": record("a", "compliant", flags={"ldap_only": ["AB12"], "expired": []}),
               "b": record("b", "compliant", flags={"ldap_only": ["CD34"], "expiring_soon": ["CD34"]})}
    report = build_report(["a", "b"], records, check_mode=False, run_id="r", moment=MOMENT)
    assert report["findings"] == {"ldap_only": ["a", "b"], "expired": [], "expiring_soon": ["b"],
                                  "chain_incomplete": [], "no_endpoints": []}
    lines = summary_lines(report, None)
    assert "certificates with only LDAP CRL distribution points (no HTTP proxy can reach them): a, b" in lines
    assert "certificates expiring soon: b" in lines
    assert not any(line.startswith("expired certificates") for line in lines)


def test_rollout_stopped_names_the_batch_for_hosts_never_reached() -> None:
    stopped = {"batch": ["lync-fe03.lab.test"], "failed_percentage": 100.0, "max_fail_percentage": 50}
    report = build_report(["lync-fe03.lab.test", "lync-fe09.lab.test"], FLEET, check_mode=False, run_id="r",
                          moment=MOMENT, rollout_stopped=stopped)
    assert report["hosts"][1]["reason"] == (
        "not reached: the rollout was stopped after the batch lync-fe03.lab.test: 100.0 % of it rolled back or "
        "hit an error, more than max_fail_percentage 50 %"
    )
    assert any(line.startswith("Rollout was stopped") for line in summary_lines(report, None))


@pytest.mark.parametrize(
    ("measurement", "expected"),
    [
        ({"worst_ms": 15012, "results": [{"max_ms": 3}]}, 15012),
        ({"worst_ms": None, "results": [{"max_ms": 3}, {"max_ms": 40}, {"max_ms": None}]}, 40),
        ({"results": []}, None),
        (None, None),
        ({"worst_ms": True}, None),
    ],
)
def test_measurement_worst_ms(measurement, expected) -> None:
    assert measurement_worst_ms(measurement) == expected


def test_plain_turns_subclasses_into_plain_json_types() -> None:
    class Tagged(str):
        pass

    value = plain({Tagged("k"): (Tagged("v"), 1, None, True, 2.5)})
    assert value == {"k": ["v", 1, None, True, 2.5]}
    # Exactly str, not a subclass: json.dump and yaml.safe_dump must not see ansible-core's tagged types.
    assert not isinstance(next(iter(value)), Tagged)
    assert not isinstance(value["k"][0], Tagged)


def test_a_role_task_that_failed_before_its_action_is_a_failed_host_with_ansibles_message() -> None:
    # The playbook's rescue keeps such a host in the run; its fix_crl_record is Ansible's failed task result.
    registered = {"failed": True, "changed": False, "msg": "Task failed: 'site_proxy' is undefined"}
    report = build_report(["a"], {"a": registered}, check_mode=False, run_id="r", moment=MOMENT)
    host = report["hosts"][0]
    assert host["status"] == "failed" and host["reason"] == "fix_crl: Task failed: 'site_proxy' is undefined"
    assert host["errors"] == [{"step": "fix_crl", "msg": registered["msg"], "unreachable": False}]
    assert report["run"]["check_mode"] is False  # the failed result does not say; the report task's mode stands
