"""Merging the reports of AWX job slices and --limit runs: latest record per host wins, totals recomputed."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import build_report, compute_totals
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._merge import ReportMergeError, merge_reports
from tests.report.sample import MOMENT, crl, fleet_records, record, sample_report, tls

LATER = MOMENT + dt.timedelta(hours=1)
MERGED_AT = dt.datetime(2026, 11, 27, 0, 0, 0, tzinfo=dt.UTC)


def slices() -> tuple[dict, dict]:
    """Two AWX slices of one job: each report holds only its own part of the fleet."""
    records = fleet_records()
    names = sorted(records)
    one = sample_report(run_id="slice-1", hosts=names[::2], records=records)
    two = sample_report(run_id="slice-2", hosts=names[1::2], records=records, moment=MOMENT + dt.timedelta(seconds=5))
    return one, two


def test_slices_merge_into_the_report_one_run_over_the_whole_fleet_would_have_written() -> None:
    one, two = slices()
    merged = merge_reports([one, two], names=["s1.json", "s2.json"], moment=MERGED_AT)
    whole = sample_report(hosts=sorted(fleet_records()))
    assert merged["totals"] == whole["totals"]
    assert merged["worst_handshake"] == whole["worst_handshake"]
    assert [h["host"] for h in merged["hosts"]] == [h["host"] for h in whole["hosts"]]
    assert [{k: v for k, v in h.items() if k != "source_run"} for h in merged["hosts"]] == whole["hosts"]
    assert {h["host"]: h["source_run"] for h in merged["hosts"]} == (
        {h["host"]: "slice-1" for h in one["hosts"]} | {h["host"]: "slice-2" for h in two["hosts"]}
    )
    assert merged["run"] == {"id": "merged-20261127T000000Z", "time": "2026-11-27T00:00:00Z", "check_mode": False,
                             "merged": True, "rollout_stopped": None}
    assert [(s["id"], s["file"], s["hosts"], s["hosts_used"]) for s in merged["sources"]] == [
        ("slice-1", "s1.json", 3, 3), ("slice-2", "s2.json", 3, 3)]


def test_the_latest_run_wins_per_host_whatever_the_order_given() -> None:
    audit = sample_report(run_id="audit", check_mode=True, hosts=["lync-fe02.lab.test"])
    fixed = build_report(["lync-fe02.lab.test"], {"lync-fe02.lab.test": record(
        "lync-fe02.lab.test", "compliant", checks={"before": {"crl": crl(True), "tls": tls(11, passed=True)}})},
        check_mode=False, run_id="fix", moment=LATER)
    for order in ([audit, fixed], [fixed, audit]):
        merged = merge_reports(order, moment=MERGED_AT)
        (host,) = merged["hosts"]
        assert (host["status"], host["source_run"]) == ("compliant", "fix")
        assert merged["totals"]["compliant"] == 1 and merged["totals"]["would_change"] == 0
        assert merged["run"]["check_mode"] is None  # an audit and a change run: mixed
        assert {s["id"]: s["hosts_used"] for s in merged["sources"]} == {"audit": 0, "fix": 1}


def test_a_later_not_run_does_not_hide_what_an_earlier_run_found() -> None:
    first = sample_report(run_id="first", hosts=["lync-fe02.lab.test"])
    stopped = build_report(["lync-fe02.lab.test", "lync-fe09.lab.test"], {}, check_mode=False, run_id="stopped",
                           moment=LATER, rollout_stopped={"batch": ["x"], "failed_percentage": 100.0,
                                                          "max_fail_percentage": 50})
    merged = merge_reports([first, stopped], moment=MERGED_AT)
    by_host = {h["host"]: h for h in merged["hosts"]}
    assert by_host["lync-fe02.lab.test"]["status"] == "changed"
    assert by_host["lync-fe02.lab.test"]["source_run"] == "first"
    assert by_host["lync-fe09.lab.test"]["status"] == "not_run"
    assert merged["sources"][1]["rollout_stopped"]["batch"] == ["x"]


def test_equal_times_are_ordered_as_given() -> None:
    a = sample_report(run_id="a", hosts=["lync-fe01.lab.test"])
    b = build_report(["lync-fe01.lab.test"], {"lync-fe01.lab.test": record("lync-fe01.lab.test", "failed")},
                     check_mode=False, run_id="b", moment=MOMENT)
    assert merge_reports([a, b])["hosts"][0]["status"] == "failed"
    assert merge_reports([b, a])["hosts"][0]["status"] == "compliant"


def test_a_merge_of_merges_keeps_the_original_runs() -> None:
    one, two = slices()
    third = build_report(["lync-fe01.lab.test"], {"lync-fe01.lab.test": record("lync-fe01.lab.test", "failed")},
                         check_mode=False, run_id="retry", moment=LATER)
    first_merge = merge_reports([one, two], run_id="m1", moment=MOMENT + dt.timedelta(minutes=1))
    merged = merge_reports([first_merge, third], moment=MERGED_AT)
    assert [s["id"] for s in merged["sources"]] == ["slice-1", "slice-2", "retry"]
    by_host = {h["host"]: h for h in merged["hosts"]}
    assert by_host["lync-fe01.lab.test"]["source_run"] == "retry"
    assert by_host["lync-fe02.lab.test"]["source_run"] in ("slice-1", "slice-2")
    assert merged["totals"] == compute_totals(merged["hosts"])
    assert sum(s["hosts_used"] for s in merged["sources"]) == len(merged["hosts"])


def test_totals_count_checked_hosts_like_the_report_writer() -> None:
    report = sample_report()
    assert compute_totals(report["hosts"]) == report["totals"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(schema=2), "b.json.schema: expected 1, got 2"),
        (lambda r: r.update(kind="other"), "b.json.kind: expected 'crlfix.windows.fix_crl_report', got 'other'"),
        (lambda r: r["run"].update(time="yesterday"), "b.json.run.time: not an ISO 8601 time: 'yesterday'"),
        (lambda r: r["run"].pop("id"), "b.json.run.id: every report needs its run id"),
        (lambda r: r["hosts"][0].update(status="great"), "b.json.hosts[0].status: 'great' is not one of"),
        (lambda r: r["hosts"][0].pop("host"), "b.json.hosts[0].host: expected a host name"),
        (lambda r: r["run"].update(id="a"), "b.json.run.id: run 'a' is also in a.json"),
    ],
)
def test_bad_input_names_the_file_and_the_field(mutate, message) -> None:
    good = sample_report(run_id="a")
    bad = sample_report(run_id="b")
    mutate(bad)
    with pytest.raises(ReportMergeError, match=re.escape(message)):
        merge_reports([good, bad], names=["a.json", "b.json"])


def test_nothing_to_merge_is_an_error() -> None:
    with pytest.raises(ReportMergeError, match="at least one report"):
        merge_reports([])
