"""The fleet report: per-host records of the fix_crl role in, one JSON document and a summary out."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report import _fleet as _fleet_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._fleet import (
    FleetReportError,
    _format_worst,
    build_report,
    make_fleet_report,
    measurement_worst_ms,
    plain,
    summary_lines,
    worst_handshake,
    write_report,
)

MOMENT = dt.datetime(2026, 11, 26, 5, 1, 2, tzinfo=dt.UTC)


def tls(worst: float | None, *, passed: bool) -> dict:
    """A tls_probe result as plugins/plugin_utils/_tls_probe.py returns it (keys the report reads)."""
    results = [] if worst is None else [{"peer": "lync-fe02.lab.test:5061", "max_ms": worst, "median_ms": worst,
                                         "verdict": "pass" if passed else "slow"}]
    return {"results": results, "all_pass": passed, "worst_ms": worst, "max_handshake_ms": 1000}


def crl(reachable: bool, url: str = "http://crl.public-ca.test/lab-int.crl") -> dict:
    """A crl_retrieval_check result (plugins/plugin_utils/_crl_retrieval.py) for one URL."""
    return {"results": [{"url": url, "reachable": reachable, "usable": reachable, "http_status": 200 if reachable
                         else None, "error": None if reachable else "The operation timed out"}],
            "all_reachable": reachable, "all_usable": reachable,
            "summary": {"total": 1, "reachable": int(reachable), "usable": int(reachable)}}


def record(host: str, status: str, **extra) -> dict:
    base = {"schema": 1, "host": host, "status": status, "reason": extra.pop("reason", None), "check_mode": False,
            "desired": {"state": "present", "proxy": "127.0.0.1:3128", "bypass": [], "views": ["native"]},
            "before": {"views": {"native": {"present": False, "mode": "direct", "proxy": "", "bypass": [],
                                            "raw_b64": None}}},
            "planned": {"change": True, "views": ["native"]}, "after": None, "certificates": [], "flags": {},
            "endpoints": [{"url": "http://crl.public-ca.test/lab-int.crl", "kind": "crl", "scheme": "http",
                           "certificates": ["AB12"]}],
            "checks": {}, "rollback": None, "errors": []}
    base.update(extra)
    return base


FLEET = {
    "lync-fe01.lab.test": record("lync-fe01.lab.test", "compliant", planned={"change": False, "views": []},
                                 checks={"before": {"crl": crl(True), "tls": tls(12, passed=True), "passed": True,
                                                    "summary": "CRL: 1/1; TLS: 1/1"}}),
    "lync-fe02.lab.test": record("lync-fe02.lab.test", "changed",
                                 checks={"before": {"crl": crl(False), "tls": tls(15012, passed=False),
                                                    "passed": False},
                                         "after": {"crl": crl(True), "tls": tls(14, passed=True), "passed": True}}),
    "lync-fe03.lab.test": record("lync-fe03.lab.test", "rolled_back", reason="verification failed after ...",
                                 checks={"before": {"tls": tls(15020, passed=False), "passed": False},
                                         "after": {"crl": crl(False), "tls": tls(900, passed=False),
                                                   "passed": False},
                                         "after_rollback": {"crl": crl(False), "tls": tls(15030, passed=False),
                                                            "passed": False}},
                                 rollback={"performed": True, "ok": True, "restored": {"native": None}}),
    "lync-fe04.lab.test": record("lync-fe04.lab.test", "unreachable", reason="gather: connection refused",
                                 errors=[{"step": "gather", "msg": "connection refused", "unreachable": True}]),
}
HOSTS = [*FLEET, "lync-fe05.lab.test"]


def test_totals_count_every_targeted_host_once_and_a_host_without_record_as_not_run() -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    assert report["totals"] == {"hosts": 5, "checked": 3, "compliant": 1, "would_change": 0, "changed": 1,
                                "rolled_back": 1, "failed": 0, "unreachable": 1, "not_run": 1}
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


def test_summary_lines_in_check_mode_say_would_change_and_list_problems() -> None:
    records = {"a": record("a", "would_change", checks={"before": {"tls": tls(15012, passed=False)}}),
               "b": record("b", "failed", reason="verification failed and this run changed nothing")}
    report = build_report(["a", "b"], records, check_mode=True, run_id="r", moment=MOMENT)
    lines = summary_lines(report, "/tmp/r.json")
    assert lines[0] == ("fix-crl audit (check mode): 2 hosts targeted, 2 checked: 0 compliant, 1 would change, "
                        "0 rolled back, 1 failed, 0 unreachable, 0 not run")
    assert lines[1] == "worst TLS handshake now: 15012 ms (a) (audit: nothing changed)"
    assert lines[2] == "  b: failed: verification failed and this run changed nothing"
    assert lines[-1] == "report: /tmp/r.json"


def test_summary_keeps_one_line_per_problem_host_however_long_its_reason() -> None:
    records = {"a": record("a", "failed", reason="gather: boom\n  at line 1\n" + "x" * 2000)}
    report = build_report(["a"], records, check_mode=False, run_id="r", moment=MOMENT)
    line = summary_lines(report, None)[2]
    assert line.startswith("  a: failed: gather: boom at line 1 xxx")
    assert "\n" not in line
    assert len(line) < 700 and line.endswith("\u2026")
    assert report["hosts"][0]["reason"].endswith("x" * 2000)  # the document keeps it whole


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


def test_write_report_creates_the_directory_and_never_overwrites(tmp_path) -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    path = write_report(report, str(tmp_path / "reports"), "r1")
    assert json.loads((tmp_path / "reports" / "r1.json").read_text()) == report
    assert path == str(tmp_path / "reports" / "r1.json")
    with pytest.raises(FleetReportError, match="already exists"):
        write_report(report, str(tmp_path / "reports"), "r1")
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["r1.json"]


def test_write_report_names_a_directory_it_cannot_create(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FleetReportError, match=r"dest: cannot create the report directory '.*file/sub'"):
        write_report({}, str(blocker / "sub"), "r")


def test_make_fleet_report_returns_summary_stats_and_problems(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_fleet_report, "utc_now", lambda: MOMENT)
    result = make_fleet_report(HOSTS, FLEET, check_mode=False, dest=str(tmp_path), context={"limit": "lync_servers"})
    assert result["changed"] is False
    assert result["run_id"].startswith("fix-crl-20261126T050102Z-")
    assert result["path"] == str(tmp_path / f"{result['run_id']}.json")
    document = json.loads((tmp_path / f"{result['run_id']}.json").read_text())
    assert document["run"]["limit"] == "lync_servers"
    assert result["stats"] == {"fix_crl_totals": document["totals"],
                               "fix_crl_worst_handshake_ms": {"before": 15020, "after": 15030},
                               "fix_crl_report_path": result["path"]}
    assert set(result["problems"]) == {"lync-fe03.lab.test", "lync-fe04.lab.test", "lync-fe05.lab.test"}
    assert result["summary"].splitlines() == result["summary_lines"]


def test_make_fleet_report_without_dest_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = make_fleet_report(["a"], {}, check_mode=True, dest=None, run_id="r")
    assert result["path"] is None
    assert list(tmp_path.iterdir()) == []
    assert result["totals"]["not_run"] == 1
