"""The audit of one fleet as an AWX sliced job template runs it: N ansible-runner jobs at once, one slice each.

AWX's slicing rule (ansible/awx ``awx/main/models/inventory.py``, ``Inventory.get_script_data``): the inventory's
enabled hosts ordered by name, slice *k* of *n* (1-based) is every *n*-th of them from the *k*-th
(``hosts.order_by('name')[k - 1::n]``); each slice job gets the inventory with only its hosts, every group and its
variables kept. AWX orders by the database's collation of ``name``; here Python's code-point order, the same for
the lab's lower-case ASCII names. Each slice runs ``ansible_runner.run`` (bench/slice_job.py) as AWX's execution
node does (its event callback, job events written to the artifacts), measured as one process tree; the slices'
reports are merged with ``scripts/crlfix_report.py merge``, the command docs/awx.md gives for sliced jobs.

The pure half (the rule, the sliced inventories, the check of the merged report, the table) is unit-tested in
tests/unit/bench/test_bench_slices.py; nothing here asserts a time.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.measure import run_measured

REPO_ROOT = Path(__file__).resolve().parents[1]


def slice_hosts(hosts: Iterable[str], count: int) -> list[list[str]]:
    """AWX's slices of ``hosts``: ordered by name, slice k holds every ``count``-th host from the k-th."""
    if count < 1:
        raise ValueError(f"slices: expected at least 1, got {count}")
    ordered = sorted(set(hosts))
    return [ordered[index::count] for index in range(count)]


def inventory_hosts(inventory: Mapping[str, Any]) -> list[str]:
    """Every host an Ansible YAML inventory names, in any group (each once)."""
    found: list[str] = []

    def walk(group: Mapping[str, Any]) -> None:
        for name in (group.get("hosts") or {}):
            if name not in found:
                found.append(name)
        for child in (group.get("children") or {}).values():
            walk(child or {})

    for group in inventory.values():
        walk(group or {})
    return found


def sliced_inventory(inventory: Mapping[str, Any], keep: Iterable[str]) -> dict[str, Any]:
    """``inventory`` with only the hosts of ``keep`` (every group and every variable kept), as AWX writes a slice's."""
    kept = set(keep)
    result = copy.deepcopy(dict(inventory))

    def prune(group: dict[str, Any]) -> None:
        if group.get("hosts"):
            group["hosts"] = {name: value for name, value in group["hosts"].items() if name in kept}
        for child in (group.get("children") or {}).values():
            if child:
                prune(child)

    for group in result.values():
        if group:
            prune(group)
    return result


def check_merged(merged: Mapping[str, Any], slices: list[Mapping[str, Any]], expected: Iterable[str]) -> list[str]:
    """What is wrong with a merge of the slices' reports: a host missing, twice or unexpected; a total that is not
    the sum of the slices' (an empty list: exact)."""
    problems = []
    names = [host["host"] for host in merged.get("hosts", [])]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        problems.append(f"hosts more than once in the merged report: {twice[:5]}")
    missing, extra = sorted(set(expected) - set(names)), sorted(set(names) - set(expected))
    if missing:
        problems.append(f"{len(missing)} hosts missing from the merged report: {missing[:5]}")
    if extra:
        problems.append(f"{len(extra)} hosts in the merged report that no slice targeted: {extra[:5]}")
    for key, value in (merged.get("totals") or {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            parts = sum(int((report.get("totals") or {}).get(key, 0)) for report in slices)
            if parts != value:
                problems.append(f"totals.{key}: merged {value}, the slices add up to {parts}")
    return problems


SLICE_COLUMNS = ("slice", "hosts", "rc", "wall s", "cpu s", "peak PSS MiB", "wall s /1000 hosts",
                 "cpu s /1000 hosts", "PSS MiB /1000 hosts")


def slice_rows(slices: list[Mapping[str, Any]]) -> list[list[str]]:
    """One row per slice and one for the whole run (wall: the longest slice; CPU and memory: the slices' sum)."""
    def row(label: str, hosts: int, rc: str, wall: float, cpu: float, pss_kib: int) -> list[str]:
        per = 1000 / hosts if hosts else 0.0
        return [label, str(hosts), rc, f"{wall:.1f}", f"{cpu:.1f}", f"{pss_kib / 1024:.0f}", f"{wall * per:.1f}",
                f"{cpu * per:.1f}", f"{pss_kib / 1024 * per:.0f}"]

    rows = [row(str(s["slice"]), s["hosts"], str(s.get("rc")), s["wall_s"], s["cpu_s"], s["peak_pss_sum_kib"])
            for s in slices]
    if slices:
        rows.append(row("all", sum(s["hosts"] for s in slices), "-", max(s["wall_s"] for s in slices),
                        sum(s["cpu_s"] for s in slices), sum(s["peak_pss_sum_kib"] for s in slices)))
    return rows


def run_slices(inventory_path: Path, count: int, forks: int, out_dir: Path, env: dict[str, str],
               check_mode: bool = True) -> dict[str, Any]:
    """The fix-crl playbook on ``count`` slices of the inventory at once, measured; their reports merged and checked."""
    inventory = yaml.safe_load(inventory_path.read_text())
    names = inventory_hosts(inventory)
    slices = slice_hosts(names, count)
    results: list[dict[str, Any]] = [{} for _slice in slices]

    def one(index: int) -> None:
        slice_dir = out_dir / f"slice-{index + 1}"
        slice_dir.mkdir(parents=True, exist_ok=True)
        slice_inventory = slice_dir / "inventory.yml"
        slice_inventory.write_text(yaml.safe_dump(sliced_inventory(inventory, slices[index]), sort_keys=False))
        cmd = [sys.executable, "-m", "bench.slice_job", "--private-dir", str(slice_dir / "runner"),
               "--inventory", str(slice_inventory), "--forks", str(forks), "--report-dir", str(slice_dir / "reports")]
        if check_mode:
            cmd.append("--check")
        result = run_measured(cmd, env=env, cwd=REPO_ROOT, log_path=slice_dir / "slice.log")
        windows = [name for name in slices[index] if name != "localhost"]
        results[index] = {**result, "slice": index + 1, "hosts": len(windows), "report_dir": str(slice_dir / "reports")}

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(slices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports = [sorted(Path(r["report_dir"]).glob("fix-crl-*.json")) for r in results]
    files = [str(found[-1]) for found in reports if found]
    merged_path = out_dir / "merged.json"
    merge = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "crlfix_report.py"), "merge", *files,
                            "-o", str(merged_path)], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    problems = [f"merge failed ({merge.returncode}): {merge.stderr.strip()}"] if merge.returncode else []
    if len(files) != len(results):
        problems.append(f"{len(results) - len(files)} slices wrote no report")
    if not problems:
        merged = json.loads(merged_path.read_text())
        slice_reports = [json.loads(Path(path).read_text()) for path in files]
        problems += check_merged(merged, slice_reports, [name for name in names if name != "localhost"])
    return {"slices": results, "merged": str(merged_path), "problems": problems, "hosts": len(names)}


__all__ = ["SLICE_COLUMNS", "check_merged", "inventory_hosts", "run_slices", "slice_hosts", "slice_rows",
           "sliced_inventory"]
