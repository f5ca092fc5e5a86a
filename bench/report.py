"""The pure half of the fleet benchmark: counters per host, their aggregates, ratios and the printed table.

Nothing here runs a process or reads the clock, so `tests/unit/bench/test_bench_report.py` can check it
without a lab. The driver (`bench/run.py`) feeds it the lab's `/metrics` documents (tests/lab/README.md,
"Control channel": ``{"hosts": {name: {"http_requests", "shell_commands", "bytes_in", "bytes_out", ...}}}``)
and the measurements of each run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The twins' counters the benchmark reports per host (tests/lab/fleet/server.py `metrics`).
COUNTERS = ("http_requests", "shell_commands", "bytes_in", "bytes_out")


def diff_metrics(
    before: Mapping[str, Any], after: Mapping[str, Any], hosts: Iterable[str] | None = None,
    counters: tuple[str, ...] = COUNTERS,
) -> dict[str, dict[str, int]]:
    """Per-host counter increase between two `/metrics` documents.

    ``hosts`` limits the result (the hosts a run targeted); by default every host of ``after``. A host missing
    from ``before`` (a twin started in between) counts from zero. A counter that went *down* means the lab was
    restarted between the snapshots, which would make every figure wrong, so it is refused. ``counters``: which.
    """
    before_hosts = before.get("hosts", {})
    after_hosts = after.get("hosts", {})
    names = list(hosts) if hosts is not None else sorted(after_hosts)
    out: dict[str, dict[str, int]] = {}
    for name in names:
        if name not in after_hosts:
            raise ValueError(f"hosts: {name!r} is not in the lab's metrics")
        start = before_hosts.get(name, {})
        row = {}
        for key in counters:
            delta = int(after_hosts[name].get(key, 0)) - int(start.get(key, 0))
            if delta < 0:
                raise ValueError(f"{name}: counter {key} went down ({start.get(key)} -> {after_hosts[name].get(key)});"
                                 " was the lab restarted between the snapshots?")
            row[key] = delta
        out[name] = row
    return out


def aggregate(per_host: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, float]]:
    """``{counter: {"mean", "max", "min", "total"}}`` over the hosts; all zero for no hosts."""
    result: dict[str, dict[str, float]] = {}
    count = len(per_host)
    for key in COUNTERS:
        values = [int(row.get(key, 0)) for row in per_host.values()]
        total = sum(values)
        result[key] = {
            "mean": round(total / count, 2) if count else 0.0,
            "max": max(values) if values else 0,
            "min": min(values) if values else 0,
            "total": total,
        }
    return result


def aggregate_by_status(
    per_host: Mapping[str, Mapping[str, int]], statuses: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Aggregates per fix_crl report status (``compliant``, ``changed``, ...), each with its host count.

    Hosts without a status (not in the report) are grouped under ``unknown``, so none silently disappears.
    """
    groups: dict[str, dict[str, Mapping[str, int]]] = {}
    for name, row in per_host.items():
        groups.setdefault(statuses.get(name, "unknown"), {})[name] = row
    return {status: {"hosts": len(rows), **aggregate(rows)} for status, rows in sorted(groups.items())}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 2 places; None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 2)


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


TABLE_COLUMNS = (
    "size", "run", "rc", "wall s", "cpu s", "rss MiB", "pss MiB", "req/host", "req max",
    "cmd/host", "cmd max", "KiB in/host", "KiB out/host",
)


def table_row(run: Mapping[str, Any]) -> list[str]:
    """One printed row of a run document (`bench/run.py` `measure_run` output plus ``size``/``name``)."""
    counters = run.get("per_host") or aggregate({})
    return [
        str(run["size"]),
        run["name"],
        str(run.get("rc", "-")),
        _fmt(run.get("wall_s")),
        _fmt(run.get("cpu_s")),
        _mib(run.get("peak_rss_sum_kib")),
        _mib(run.get("peak_pss_sum_kib")),
        _fmt(counters["http_requests"]["mean"]),
        str(counters["http_requests"]["max"]),
        _fmt(counters["shell_commands"]["mean"], 2),
        str(counters["shell_commands"]["max"]),
        _fmt(counters["bytes_in"]["mean"] / 1024),
        _fmt(counters["bytes_out"]["mean"] / 1024),
    ]


def format_table(rows: list[list[str]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """A plain-text table, numbers right-aligned, the run name left-aligned; also valid Markdown."""
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"rows: every row needs {len(columns)} cells")
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.ljust(widths[i]) if columns[i] == "run" else cell.rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    dashes = ("-" * w if columns[i] == "run" else "-" * (w - 1) + ":" for i, w in enumerate(widths))
    rule = "| " + " | ".join(dashes) + " |"
    return "\n".join([line(columns), rule, *(line(r) for r in rows)])


def runs_by_size(runs: list[Mapping[str, Any]]) -> list[tuple[int, dict[str, Mapping[str, Any]]]]:
    """``[(size, {run name: run})]`` by increasing size; a later run of the same name and size wins."""
    by_size: dict[int, dict[str, Mapping[str, Any]]] = {}
    for run in runs:
        by_size.setdefault(int(run["size"]), {})[run["name"]] = run
    return sorted(by_size.items())


def ratios(runs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per fleet size: audit time / baseline show-task time (budget <= 1.0, performance.md) and fix / full baseline."""
    out = []
    for size, named in runs_by_size(runs):
        def wall(name: str, named: dict[str, Mapping[str, Any]] = named) -> float | None:
            return named[name].get("wall_s") if name in named else None

        out.append({
            "size": size,
            "audit_over_show": ratio(wall("audit"), wall("baseline_show")),
            "audit_one_batch_over_show": ratio(wall("audit_one_batch"), wall("baseline_show")),
            "fix_over_baseline": ratio(wall("fix"), wall("baseline")),
            "fixed_over_audit": ratio(wall("fix_on_fixed"), wall("audit")),
        })
    return out


# The budgets of a host's cost, printed beside the figures and never asserted: controller CPU per host of the audit
# against the show-only `raw` run, the mean size of a host's result as AWX stores it, the audit's wall time against
# `raw`.
BUDGETS = {"cpu_ratio": 1.5, "res_bytes_mean": 2048, "wall_ratio": 2.0}
# The per-host task of each run whose result size is reported.
HOST_TASK = {"audit": "crlfix.windows.fix_crl_host", "baseline_show": "ansible.builtin.raw"}


def result_sizes(timing: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per task action: results, mean and max bytes of a result as JSON (what AWX stores as the event's ``res``)."""
    out: dict[str, dict[str, int]] = {}
    for task in timing.get("tasks", []):
        if not task.get("results") or "res_bytes" not in task:
            continue
        seen = out.setdefault(task["action"], {"results": 0, "bytes": 0, "max": 0})
        seen["results"] += task["results"]
        seen["bytes"] += task["res_bytes"]
        seen["max"] = max(seen["max"], task["res_bytes_max"])
    return {action: {"results": row["results"], "mean": round(row["bytes"] / row["results"]), "max": row["max"]}
            for action, row in out.items()}


def host_costs(runs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per fleet size, what one host costs the controller and AWX in the audit and in the show-only `raw` run."""
    out = []
    for size, named in runs_by_size(runs):
        def per_host_ms(name: str, key: str, named: dict[str, Mapping[str, Any]] = named,
                        size: int = size) -> float | None:
            value = named.get(name, {}).get(key)
            return None if value is None else round(1000 * value / size, 1)

        def res(name: str, field: str, named: dict[str, Mapping[str, Any]] = named) -> int | None:
            return ((named.get(name, {}).get("result_sizes") or {}).get(HOST_TASK[name]) or {}).get(field)

        audit_cpu, raw_cpu = per_host_ms("audit", "cpu_s"), per_host_ms("baseline_show", "cpu_s")
        out.append({
            "size": size,
            "audit_cpu_ms": audit_cpu,
            "raw_cpu_ms": raw_cpu,
            "cpu_ratio": ratio(audit_cpu, raw_cpu),
            "audit_main_cpu_ms": per_host_ms("audit", "main_cpu_s"),
            "raw_main_cpu_ms": per_host_ms("baseline_show", "main_cpu_s"),
            "audit_res_mean": res("audit", "mean"),
            "audit_res_max": res("audit", "max"),
            "raw_res_mean": res("baseline_show", "mean"),
            "wall_ratio": ratio(named.get("audit", {}).get("wall_s"), named.get("baseline_show", {}).get("wall_s")),
            "audit_pss_mib": None if named.get("audit", {}).get("peak_pss_sum_kib") is None
            else round(named["audit"]["peak_pss_sum_kib"] / 1024),
        })
    return out


COST_COLUMNS = ("size", "audit cpu ms/host", "raw cpu ms/host", "cpu ratio", "audit main ms/host",
                "raw main ms/host", "audit res B mean", "audit res B max", "raw res B mean", "wall ratio",
                "audit pss MiB")


def cost_rows(costs: list[Mapping[str, Any]]) -> list[list[str]]:
    """The rows of :func:`host_costs` for :func:`format_table` with ``COST_COLUMNS``."""
    keys = ("audit_cpu_ms", "raw_cpu_ms", "cpu_ratio", "audit_main_cpu_ms", "raw_main_cpu_ms", "audit_res_mean",
            "audit_res_max", "raw_res_mean", "wall_ratio", "audit_pss_mib")
    return [[str(row["size"]), *("-" if row[key] is None else str(row[key]) for key in keys)] for row in costs]


def verdict(value: float | None, limit: float) -> str:
    """A measured figure against its budget, as the bench prints it (never asserted)."""
    return "not measured" if value is None else ("within" if value <= limit else "MISSED")


def budget_line(size: int, checks: Iterable[tuple[str, float | None, float, str]]) -> str:
    """``size N: <figure> <value> (budget <= <limit>: within|MISSED|not measured); ...`` for (figure, value, limit,
    unit) checks."""
    parts = [f"{label} {value}{unit} (budget <= {limit}{unit}: {verdict(value, limit)})"
             for label, value, limit, unit in checks]
    return f"size {size}: " + "; ".join(parts)


def budget_lines(costs: list[Mapping[str, Any]]) -> list[str]:
    """One line per size: each budget of :data:`BUDGETS` and whether this run is within it (printed, never asserted)."""
    return [budget_line(row["size"], [("cpu/host audit/raw", row["cpu_ratio"], BUDGETS["cpu_ratio"], ""),
                                      ("host result mean", row["audit_res_mean"], BUDGETS["res_bytes_mean"], " B"),
                                      ("wall audit/raw", row["wall_ratio"], BUDGETS["wall_ratio"], "")])
            for row in costs]


def task_breakdown(timing: Mapping[str, Any], top: int = 12) -> list[dict[str, Any]]:
    """The slowest tasks of one run from `bench/callback_plugins/bench_timing.py` output, slowest first."""
    tasks = sorted(timing.get("tasks", []), key=lambda t: t["wall_s"], reverse=True)
    return [
        {**t, "ms_per_host": round(1000 * t["wall_s"] / t["results"], 1) if t["results"] else None}
        for t in tasks[:top]
    ]
