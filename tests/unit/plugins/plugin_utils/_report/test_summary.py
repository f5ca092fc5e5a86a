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
    # Issue 17, item 1: a host whose proxy the run set and kept while verification still fails is failed *and*
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
