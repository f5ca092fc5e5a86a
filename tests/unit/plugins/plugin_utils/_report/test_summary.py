"""The summary lines a run prints from its report document."""

from __future__ import annotations

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import build_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._summary import summary_lines
from tests.unit.plugins.fixtures.report_records import MOMENT, record, tls


def test_summary_lines_in_check_mode_say_would_change_and_list_problems() -> None:
    records = {"a": record("a", "would_change", checks={"before": {"tls": tls(15012, passed=False)}}, check_mode=True),
               "b": record("b", "failed", reason="verification failed and this run changed nothing", check_mode=True)}
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


def test_a_kept_change_counts_as_changed_whatever_the_hosts_verdict() -> None:
    # A host whose proxy the run set and kept while verification still fails is failed *and*
    # changed: the count of changes includes it, and the failed count says how many of its hosts kept a change.
    records = {"a": record("a", "changed", changed=True),
               "b": record("b", "failed", changed=True, reason="set proxy p:3128 in native and kept it (...)"),
               "c": record("c", "rolled_back", changed=True, reason="verification failed after setting ..."),
               "d": record("d", "failed", changed=False, reason="verification failed and this run changed nothing")}
    report = build_report(list(records), records, check_mode=False, run_id="r", moment=MOMENT)
    assert report["totals"]["changed"] == 1 and report["totals"]["changes_kept"] == 2
    assert [h["change_kept"] for h in report["hosts"]] == [True, True, False, False]
    assert summary_lines(report, None)[0] == (
        "fix-crl run: 4 hosts targeted, 4 checked: 0 compliant, 2 changed, 1 rolled back, "
        "2 failed (1 of them kept the change), 0 unreachable, 0 not run")


def _evidence(count: int, *, before: int | None = None, since: int | None = None,
              fixed_at: str | None = None) -> dict:
    return {"error": None, "hours": 24, "fixed_at": fixed_at, "marker": {"previous": None, "written": None},
            "events": [{"log": "Lync Server", "provider": "LS IM MCU", "id": 33019, "count": count,
                        "before": before, "since": since}],
            "hourly": {"2026-11-26T01:00:00Z": count}}


def test_the_symptom_line_counts_hosts_before_and_since_their_fix_and_the_unfixed_apart() -> None:
    fixed = "2026-11-26T02:00:00Z"
    records = {"a": record("a", "compliant", evidence=_evidence(47, before=47, since=0, fixed_at=fixed)),
               "b": record("b", "failed", reason="symptoms", evidence=_evidence(3, before=1, since=2,
                                                                                fixed_at=fixed)),
               "c": record("c", "compliant", evidence=_evidence(0, before=0, since=0, fixed_at=fixed)),
               "d": record("d", "would_change", evidence=_evidence(5)),
               "e": record("e", "compliant")}  # a record of an older release: no evidence
    report = build_report(list(records), records, check_mode=True, run_id="r", moment=MOMENT)
    assert {k: v for k, v in report["totals"].items() if k.startswith("symptoms")} == {
        "symptoms_before": 2, "symptoms_since": 1, "symptoms_unfixed": 1, "symptoms_read": 4, "symptoms_fixed": 3}
    assert ("hosts with symptoms: 2 before, 1 since the fix; 1 in the last 24 h on hosts without a recorded fix"
            in summary_lines(report, None))


def test_without_any_fix_recorded_the_symptom_line_counts_the_window_and_without_evidence_there_is_none() -> None:
    records = {"d": record("d", "would_change", evidence=_evidence(5))}
    report = build_report(["d"], records, check_mode=True, run_id="r", moment=MOMENT)
    assert "hosts with symptoms: 1 in the last 24 h" in summary_lines(report, None)
    plain = build_report(["e"], {"e": record("e", "compliant")}, check_mode=True, run_id="r", moment=MOMENT)
    assert not [line for line in summary_lines(plain, None) if line.startswith("hosts with symptoms")]
