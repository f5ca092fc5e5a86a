"""The pure parts of the fleet benchmark (bench/report.py): counters per host, aggregates, ratios, the table.

The metrics documents have the shape of the lab's control channel `GET /metrics` (tests/lab/README.md,
"Control channel"); no lab runs here and nothing is timed.
"""

from __future__ import annotations

import pytest

from bench import report


def _metrics(**hosts: tuple[int, int, int, int]) -> dict:
    return {
        "hosts": {
            name: {"http_requests": r, "shell_commands": c, "bytes_in": i, "bytes_out": o, "auth_failures": 0,
                   "listening": True}
            for name, (r, c, i, o) in hosts.items()
        }
    }


def test_diff_metrics_subtracts_the_snapshot_per_host() -> None:
    before = _metrics(a=(10, 1, 1000, 500), b=(0, 0, 0, 0))
    after = _metrics(a=(18, 2, 3000, 900), b=(32, 4, 8000, 4000))
    assert report.diff_metrics(before, after) == {
        "a": {"http_requests": 8, "shell_commands": 1, "bytes_in": 2000, "bytes_out": 400},
        "b": {"http_requests": 32, "shell_commands": 4, "bytes_in": 8000, "bytes_out": 4000},
    }


def test_diff_metrics_limits_to_the_targeted_hosts_and_counts_new_hosts_from_zero() -> None:
    before = _metrics(a=(10, 1, 0, 0))
    after = _metrics(a=(12, 1, 0, 0), b=(8, 1, 5, 5))
    assert report.diff_metrics(before, after, ["b"]) == {
        "b": {"http_requests": 8, "shell_commands": 1, "bytes_in": 5, "bytes_out": 5}
    }


def test_diff_metrics_refuses_counters_that_went_down() -> None:
    with pytest.raises(ValueError, match=r"a: counter http_requests went down"):
        report.diff_metrics(_metrics(a=(10, 1, 0, 0)), _metrics(a=(3, 1, 0, 0)))


def test_diff_metrics_names_a_host_missing_from_the_lab() -> None:
    with pytest.raises(ValueError, match=r"'ghost' is not in the lab's metrics"):
        report.diff_metrics(_metrics(a=(0, 0, 0, 0)), _metrics(a=(0, 0, 0, 0)), ["ghost"])


def test_aggregate_gives_mean_max_min_total() -> None:
    per_host = {"a": {"http_requests": 8, "shell_commands": 1, "bytes_in": 100, "bytes_out": 10},
                "b": {"http_requests": 33, "shell_commands": 4, "bytes_in": 300, "bytes_out": 30},
                "c": {"http_requests": 26, "shell_commands": 3, "bytes_in": 200, "bytes_out": 20}}
    agg = report.aggregate(per_host)
    assert agg["http_requests"] == {"mean": 22.33, "max": 33, "min": 8, "total": 67}
    assert agg["shell_commands"] == {"mean": 2.67, "max": 4, "min": 1, "total": 8}
    assert agg["bytes_out"]["total"] == 60


def test_aggregate_of_no_hosts_is_zero_not_an_error() -> None:
    assert report.aggregate({})["shell_commands"] == {"mean": 0.0, "max": 0, "min": 0, "total": 0}


def test_aggregate_by_status_groups_hosts_and_keeps_hosts_without_a_record() -> None:
    row = {"http_requests": 8, "shell_commands": 1, "bytes_in": 1, "bytes_out": 1}
    big = {"http_requests": 56, "shell_commands": 7, "bytes_in": 9, "bytes_out": 9}
    grouped = report.aggregate_by_status({"a": row, "b": big, "c": row}, {"a": "compliant", "b": "changed"})
    assert sorted(grouped) == ["changed", "compliant", "unknown"]
    assert grouped["changed"]["hosts"] == 1
    assert grouped["changed"]["shell_commands"]["max"] == 7
    assert grouped["unknown"]["hosts"] == 1


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [(115.2, 8.3, 13.88), (50, 100, 0.5), (None, 3, None), (3, None, None), (3, 0, None)],
)
def test_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert report.ratio(num, den) == expected


def test_ratios_pair_runs_of_the_same_fleet_size() -> None:
    runs = [
        {"size": 50, "name": "baseline_show", "wall_s": 20.0},
        {"size": 50, "name": "audit", "wall_s": 30.0},
        {"size": 500, "name": "baseline_show", "wall_s": 200.0},
        {"size": 500, "name": "audit", "wall_s": 100.0},
        {"size": 500, "name": "baseline", "wall_s": 400.0},
        {"size": 500, "name": "audit_one_batch", "wall_s": 50.0},
    ]
    assert report.ratios(runs) == [
        {"size": 50, "audit_over_show": 1.5, "audit_one_batch_over_show": None, "fix_over_baseline": None,
         "fixed_over_audit": None},
        {"size": 500, "audit_over_show": 0.5, "audit_one_batch_over_show": 0.25, "fix_over_baseline": None,
         "fixed_over_audit": None},
    ]


def _run(name: str) -> dict:
    per_host = report.aggregate({"a": {"http_requests": 8, "shell_commands": 1, "bytes_in": 2048, "bytes_out": 1024}})
    return {"size": 10, "name": name, "rc": 0, "wall_s": 8.25, "cpu_s": 3.1, "peak_rss_sum_kib": 174080,
            "peak_pss_sum_kib": 66560, "per_host": per_host}


def test_table_row_formats_units() -> None:
    assert report.table_row(_run("baseline_show")) == [
        "10", "baseline_show", "0", "8.2", "3.1", "170", "65", "8.0", "8", "1.00", "1", "2.0", "1.0",
    ]


def test_format_table_is_aligned_markdown() -> None:
    text = report.format_table([report.table_row(_run("audit")), report.table_row(_run("baseline_show"))])
    lines = text.splitlines()
    assert len(lines) == 4
    assert len({len(line) for line in lines}) == 1  # every line as wide as the header
    assert lines[0].startswith("| size | run ")
    assert lines[1].startswith("| ---: | ------------- |")
    assert "| audit         |" in lines[2]


def test_format_table_refuses_a_short_row() -> None:
    with pytest.raises(ValueError, match="every row needs 13 cells"):
        report.format_table([["10", "audit"]])


def test_task_breakdown_orders_by_wall_time_and_computes_ms_per_host() -> None:
    timing = {"tasks": [
        {"task": "set_fact", "action": "ansible.builtin.set_fact", "wall_s": 2.0, "starts": 1, "results": 50,
         "skipped": 0},
        {"task": "probe", "action": "crlfix.windows.tls_probe", "wall_s": 40.0, "starts": 3, "results": 50,
         "skipped": 0},
        {"task": "never", "action": "ansible.builtin.fail", "wall_s": 0.1, "starts": 1, "results": 0, "skipped": 0},
    ]}
    rows = report.task_breakdown(timing, top=2)
    assert [r["task"] for r in rows] == ["probe", "set_fact"]
    assert rows[0]["ms_per_host"] == 800.0
    assert report.task_breakdown(timing)[-1]["ms_per_host"] is None


# ---- what one host costs, against the show-only `raw` run, with the budgets printed ----
TIMING = {"tasks": [
    {"action": "crlfix.windows.fix_crl_host", "results": 4, "res_bytes": 2000, "res_bytes_max": 800},
    {"action": "crlfix.windows.fix_crl_host", "results": 1, "res_bytes": 1000, "res_bytes_max": 1000},
    {"action": "ansible.builtin.debug", "results": 0, "res_bytes": 0, "res_bytes_max": 0},
    {"action": "ansible.builtin.set_fact", "results": 1},  # a timing file of a bench before sizes were measured
]}


def test_result_sizes_are_per_action_mean_and_max() -> None:
    assert report.result_sizes(TIMING) == {"crlfix.windows.fix_crl_host": {"results": 5, "mean": 600, "max": 1000}}


def test_host_costs_compare_the_audit_with_raw_per_host_and_print_the_budgets() -> None:
    runs = [
        {"size": 200, "name": "baseline_show", "cpu_s": 20.0, "main_cpu_s": 4.0, "wall_s": 10.0,
         "result_sizes": {"ansible.builtin.raw": {"results": 200, "mean": 900, "max": 950}}},
        {"size": 200, "name": "audit", "cpu_s": 40.0, "main_cpu_s": 8.0, "wall_s": 18.0, "peak_pss_sum_kib": 600 * 1024,
         "result_sizes": {"crlfix.windows.fix_crl_host": {"results": 200, "mean": 1500, "max": 1900}}},
        {"size": 500, "name": "audit", "cpu_s": 60.0, "wall_s": 30.0},
    ]
    costs = report.host_costs(runs)
    assert costs[0] == {"size": 200, "audit_cpu_ms": 200.0, "raw_cpu_ms": 100.0, "cpu_ratio": 2.0,
                        "audit_main_cpu_ms": 40.0, "raw_main_cpu_ms": 20.0, "audit_res_mean": 1500,
                        "audit_res_max": 1900, "raw_res_mean": 900, "wall_ratio": 1.8, "audit_pss_mib": 600}
    assert costs[1]["cpu_ratio"] is None and costs[1]["audit_res_mean"] is None
    rows = report.cost_rows(costs)
    assert rows[1][:4] == ["500", "120.0", "-", "-"]
    assert report.format_table(rows, report.COST_COLUMNS).count("\n") == 3
    lines = report.budget_lines(costs)
    assert lines[0] == ("size 200: cpu/host audit/raw 2.0 (budget <= 1.5: MISSED); host result mean 1500 B "
                        "(budget <= 2048 B: within); wall audit/raw 1.8 (budget <= 2.0: within)")
    assert "not measured" in lines[1]
