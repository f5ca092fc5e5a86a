"""The fleet benchmark: this collection's audit and fix beside the baseline an admin would write.

    .venv/bin/python -m bench.run [--sizes 50,200,500 | --quick] [--forks 25] [--runs a,b,...] [--profile]
    .venv/bin/python -m bench.run --sizes 2000 --slices 4     # the audit as 4 AWX job slices at once
    make bench BENCH_ARGS='--quick'

Per fleet size, in ONE lab (build/bench/lab-<size>, a free place of the bench range: twins on 127.0.<100-149>.x, its
own squid and CRL server), with the same forks, one after another:

    baseline       bench/baseline.yml                 (show + set)
    baseline_show  bench/baseline.yml --tags show     (the read alone: the audit's time budget)
    audit          playbooks/fix-crl.yml --check
    (audit_one_batch  the same with -e '{"fix_crl_serial": ["100%"]}': the default of --check;
                     kept to compare with older results; only when named in --runs)
    fix            playbooks/fix-crl.yml
    fix_on_fixed   playbooks/fix-crl.yml again, on the fleet the fix left (no reset)
    audit_fixed    playbooks/fix-crl.yml --check on the fleet the fix left (no reset; the fix runs first, unmeasured,
                   when it is not among the runs): the audit of a fleet already fixed
    restart        every Lync front end seeded stale_service, playbooks/fix-crl.yml with fix_crl_restart_services:
                   the restarted hosts' remote commands (the twins' count; budget: a restart adds 1)
    hang           (first size only) one host, crl_retrieval_check of 10 URLs that all hang, timeout 15 s
    audit_sliced   (only with --slices N, and then alone) playbooks/fix-crl.yml --check as N AWX job slices at once,
                   each through ansible-runner (bench/slices.py), their reports merged and checked

Every run but fix_on_fixed starts from the seeded states (restored and reloaded). Per run: wall time, CPU of
the controller's process tree, peak memory (bench/measure.py says how), the twins' counters per host (mean,
max; by report status for the fix-crl runs) and the per-task wall time (bench/callback_plugins). Prints a
table and the ratios, writes build/bench/results-<UTC time>.json. Never a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report, slices, wire
from bench.lab_handle import REPO_ROOT, BenchLab
from bench.measure import run_measured
from tests.lab.fleet import addresses, scenarios
from tests.lab.fleet.process import control
from tests.twin.state import write_json_atomic

BENCH_DIR = REPO_ROOT / "build" / "bench"
BIN = Path(sys.executable).parent
# The full baseline first: whatever the first ansible-playbook against a fresh lab pays extra (first NTLM
# sessions, cold caches) must not shrink the audit's ratio to the show task.
RUNS = ("baseline", "baseline_show", "audit", "fix", "fix_on_fixed", "audit_fixed", "restart", "hang")
# Not in the default set: the audit in one batch (fix_crl_serial 100%), the proposal of docs/performance.md.
EXTRA_RUNS = ("audit_one_batch",)
HANG_URLS = 10
HANG_TIMEOUT_MS = 15000


def ansible_env(timing_out: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
        "ANSIBLE_CALLBACK_PLUGINS": str(REPO_ROOT / "bench" / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_timing",
        "BENCH_TIMING_OUT": str(timing_out),
        "ANSIBLE_NOCOLOR": "1",
    })
    return env


def playbook_cmd(name: str, lab: BenchLab, forks: int, report_dir: Path) -> list[str]:
    base = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "-f", str(forks)]
    fix = [str(REPO_ROOT / "playbooks" / "fix-crl.yml"), "-e", f"fix_crl_report_dir={report_dir}"]
    return {
        "baseline_show": base + [str(REPO_ROOT / "bench" / "baseline.yml"), "--tags", "show"],
        "baseline": base + [str(REPO_ROOT / "bench" / "baseline.yml")],
        "audit": base + fix + ["--check"],
        "audit_one_batch": base + fix + ["--check", "-e", '{"fix_crl_serial": ["100%"]}'],
        "fix": base + fix,
        "fix_on_fixed": base + fix,
        "audit_fixed": base + fix + ["--check"],
        "restart": base + fix + ["-e", '{"fix_crl_restart_services": true}'],
    }[name]


def report_statuses(report_dir: Path) -> dict[str, str]:
    """host -> status from the fix_crl report the run wrote (docs/fix-crl.md section 4); {} when none."""
    files = sorted(report_dir.glob("fix-crl-*.json"))
    if not files:
        return {}
    doc = json.loads(files[-1].read_text())
    return {h["host"]: h["status"] for h in doc.get("hosts", [])}


def measure_playbook(name: str, lab: BenchLab, forks: int, out_dir: Path, hosts: list[str]) -> dict[str, Any]:
    report_dir = out_dir / f"reports-{name}"
    timing_out = out_dir / f"timing-{name}.json"
    cmd = playbook_cmd(name, lab, forks, report_dir)
    before = lab.metrics()
    result = run_measured(cmd, env=ansible_env(timing_out), cwd=REPO_ROOT, log_path=out_dir / f"{name}.log")
    after = lab.metrics()
    per_host = report.diff_metrics(before, after, hosts)
    statuses = report_statuses(report_dir)
    if name == "restart":
        result["restarted"] = restart_commands(report_dir, per_host)
    timing = json.loads(timing_out.read_text()) if timing_out.exists() else {}
    if name.startswith("audit") or name.startswith("fix") or name == "restart":
        result["document"] = wire.document_means(report.diff_metrics(before, after, hosts, wire.DOCUMENT_COUNTERS))
    result.update({
        "per_host": report.aggregate(per_host),
        "per_status": report.aggregate_by_status(per_host, statuses) if statuses else None,
        "slowest_tasks": report.task_breakdown(timing),
        "result_sizes": report.result_sizes(timing),
        "tasks_total": len(timing.get("tasks", [])),
    })
    return result


def sample_script_sizes(lab: BenchLab, out_dir: Path) -> dict[str, dict[str, int]]:
    """One Lync front end (peers, services: the largest host_audit) audited once more at -vvvv: the seam's line
    names each host script's size as written, as sent and on the wire (bench/wire.py)."""
    host = next(h["name"] for h in lab.fleet_doc()["hosts"] if h["group"] == "lync_servers")
    cmd = [*playbook_cmd("audit", lab, 1, out_dir / "reports-sizes"), "-l", host, "-vvvv"]
    log = out_dir / "script-sizes.log"
    with log.open("wb") as handle:
        subprocess.run(cmd, env=ansible_env(out_dir / "timing-sizes.json"), cwd=REPO_ROOT, stdout=handle,
                       stderr=subprocess.STDOUT, check=False)
    return wire.script_sizes(log.read_text(errors="replace"))


def seed_stale_services(lab: BenchLab) -> list[str]:
    """Every Lync front end of the lab in ``stale_service`` (tests/lab/fleet/scenarios.py): netsh right, its running
    service still stale. Returns their names."""
    doc = lab.fleet_doc()
    stale = []
    for host in doc["hosts"]:
        if host["group"] != "lync_servers":
            continue
        path = lab.lab_dir / "hosts" / f"{host['name']}.json"
        state = scenarios.apply_scenario(json.loads(path.read_text()), "stale_service",
                                         doc["site_proxies"][host["site"]])
        write_json_atomic(path, state)
        control(lab.lab_dir, "POST", f"/twins/{host['name']}/reload")
        stale.append(host["name"])
    return stale


def restart_commands(report_dir: Path, per_host: dict[str, Any]) -> dict[str, Any]:
    """Remote commands (the twins' own count) of the hosts the role restarted services on: the budget of a restart
    is one command more than the host's fix (a fix <= 4, performance.md)."""
    files = sorted(report_dir.glob("fix-crl-*.json"))
    hosts = json.loads(files[-1].read_text())["hosts"] if files else []
    restarted = [h["host"] for h in hosts if (h.get("service") or {}).get("restart") is not None]
    counts = [per_host[name]["shell_commands"] for name in restarted if name in per_host]
    return {"hosts": len(restarted), "commands_max": max(counts) if counts else None,
            "commands_mean": round(sum(counts) / len(counts), 2) if counts else None}


def measure_hang(lab: BenchLab, out_dir: Path) -> dict[str, Any]:
    """One host whose proxy works, 10 URLs on the CA's server that all hang: bounded by ONE 15 s timeout?"""
    doc = lab.fleet_doc()
    host = next(h["name"] for h in doc["hosts"] if h["scenario"] == "correct")
    crl_name = next(name for name in doc["revocation"]["names"] if name.startswith("crl."))
    urls = [f"http://{crl_name}/bench-hang-{i}.crl" for i in range(HANG_URLS)]
    args = json.dumps({"endpoints": urls, "timeout_ms": HANG_TIMEOUT_MS})
    tree = out_dir / "hang-tree"
    cmd = [str(BIN / "ansible"), host, "-i", str(lab.inventory), "-m", "crlfix.windows.crl_retrieval_check",
           "-a", args, "--tree", str(tree)]
    lab.set_hang(60)
    try:
        before = lab.metrics()
        result = run_measured(cmd, env=ansible_env(out_dir / "timing-hang.json"), cwd=REPO_ROOT,
                              log_path=out_dir / "hang.log")
        after = lab.metrics()
    finally:
        lab.clear_faults()
    module = json.loads((tree / host).read_text()) if (tree / host).exists() else {}
    elapsed = [r.get("elapsed_ms") for r in module.get("results", [])]
    result.update({
        "host": host,
        "urls": len(urls),
        "timeout_ms": HANG_TIMEOUT_MS,
        "per_host": report.aggregate(report.diff_metrics(before, after, [host])),
        "elapsed_ms": elapsed,
        "errors": sorted({str(r.get("error")) for r in module.get("results", [])}),
    })
    return result


def profile_audit(lab: BenchLab, forks: int, out_dir: Path) -> dict[str, Any]:
    """The audit once more under cProfile (main ansible-playbook process only; workers are forks)."""
    prof = out_dir / "audit.prof"
    # The console script .venv/bin/ansible-playbook is a Python file, which cProfile runs as __main__.
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), *playbook_cmd("audit", lab, forks,
                                                                            out_dir / "reports-profile")]
    workers = out_dir / "worker-profiles"
    workers.mkdir(exist_ok=True)
    env = ansible_env(out_dir / "timing-profile.json")
    # Every forked worker under cProfile too (bench/worker_profile/sitecustomize.py), summed below.
    paths = [str(REPO_ROOT / "bench" / "worker_profile"), env.get("PYTHONPATH", "")]
    env.update({"BENCH_WORKER_PROFILE_DIR": str(workers), "PYTHONPATH": os.pathsep.join(paths)})
    result = run_measured(cmd, env=env, cwd=REPO_ROOT, log_path=out_dir / "audit-profile.log")
    text = out_dir / "audit-profile.txt"
    with text.open("w") as handle:
        stats = pstats.Stats(str(prof), stream=handle)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
    worker_text = out_dir / "audit-workers-profile.txt"
    files = sorted(str(path) for path in workers.glob("worker-*.prof"))
    if files:
        with worker_text.open("w") as handle:
            handle.write(f"{len(files)} workers (one task on one host each), summed\n")
            stats = pstats.Stats(files[0], stream=handle)
            for path in files[1:]:
                stats.add(path)
            stats.sort_stats("cumulative").print_stats(80)
            stats.sort_stats("tottime").print_stats(50)
    result.update({"profile": str(prof), "profile_text": str(text), "worker_profiles": len(files),
                   "worker_profile_text": str(worker_text) if files else None})
    return result


def measure_sliced(lab: BenchLab, count: int, forks: int, out_dir: Path, hosts: list[str]) -> dict[str, Any]:
    """The audit as ``count`` AWX job slices at once (bench/slices.py), with the twins' counters of all of them."""
    before = lab.metrics()
    env = {key: value for key, value in ansible_env(out_dir / "timing-sliced.json").items()
           if key not in ("ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED")}
    began = time.monotonic()
    result = slices.run_slices(lab.inventory, count, forks, out_dir / "slices", env)
    wall = round(time.monotonic() - began, 2)
    per_host = report.diff_metrics(before, lab.metrics(), hosts)
    parts = result["slices"]
    return {**result, "wall_s": wall, "cpu_s": round(sum(s["cpu_s"] for s in parts), 2),
            "peak_pss_sum_kib": sum(s["peak_pss_sum_kib"] for s in parts),
            "peak_rss_sum_kib": sum(s["peak_rss_sum_kib"] for s in parts),
            "rc": max((s.get("rc") or 0) for s in parts), "per_host": report.aggregate(per_host)}


def run_size(size: int, args: argparse.Namespace, runs: list[str], *, with_hang: bool,
             results: list[dict[str, Any]], on_result: Callable[[], None]) -> None:
    out_dir = BENCH_DIR / f"run-{args.stamp}" / f"size-{size}"
    out_dir.mkdir(parents=True, exist_ok=True)
    lab = BenchLab(BENCH_DIR / f"lab-{size}", size, args.seed)
    began = time.monotonic()
    lab.up()
    print(f"bench: {size} twins up on 127.0.{lab.subnet}.x in {time.monotonic() - began:.1f}s ({lab.lab_dir})",
          flush=True)
    hosts = lab.host_names()
    try:
        for name in runs:
            # The machine is shared: the load before each run says how much CPU others were taking.
            load_before = os.getloadavg()[0]
            if name == "hang":
                if not with_hang:
                    continue
                lab.reset()
                result = measure_hang(lab, out_dir)
            elif name == "audit_sliced":
                result = measure_sliced(lab, args.slices, args.forks, out_dir, hosts)
                print(report.format_table(slices.slice_rows(result["slices"]), slices.SLICE_COLUMNS), flush=True)
                print("bench: merged report " + ("exact: every host once, totals the slices' sum" if not
                      result["problems"] else "WRONG: " + "; ".join(result["problems"])), flush=True)
            else:
                if name not in ("fix_on_fixed", "audit_fixed"):
                    lab.reset()
                if name == "audit_fixed" and not {"fix", "fix_on_fixed"} & set(runs[:runs.index(name)]):
                    print("bench: fixing the fleet for audit_fixed (not measured)", flush=True)
                    lab.reset()
                    measure_playbook("fix", lab, args.forks, out_dir / "unmeasured", hosts)
                if name == "restart":
                    seed_stale_services(lab)
                result = measure_playbook(name, lab, args.forks, out_dir, hosts)
                if name == "audit":
                    result["script_sizes"] = sample_script_sizes(lab, out_dir)
                if name == "restart":
                    print(f"bench: restart: {result['restarted']} (budget: a fix <= 4 remote commands, a restart "
                          "adds 1)", flush=True)
            result.update({"size": size, "name": name, "forks": args.forks, "loadavg_1m_before": load_before,
                           "loadavg_1m_after": os.getloadavg()[0]})
            results.append(result)
            on_result()
            print("bench: " + " | ".join(report.table_row(result)), flush=True)
        if args.profile:
            lab.reset()
            result = profile_audit(lab, args.forks, out_dir)
            result.update({"size": size, "name": "audit_cprofile", "forks": args.forks, "per_host": None})
            results.append(result)
            on_result()
            print(f"bench: profiled audit in {result['wall_s']}s -> {result['profile_text']}", flush=True)
    finally:
        if not args.keep_lab:
            lab.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="50,200,500", help="fleet sizes, comma-separated (default 50,200,500)")
    parser.add_argument("--quick", action="store_true", help="one fleet of 10 (debugging the benchmark)")
    parser.add_argument("--forks", type=int, default=25)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"subset of {','.join(RUNS + EXTRA_RUNS)}")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--profile", action="store_true", help="also run the audit under cProfile, per size")
    parser.add_argument("--keep-lab", action="store_true", help="leave each lab running (stop: scripts/lab.py down)")
    parser.add_argument("--slices", type=int, default=0,
                        help="run only the audit, as this many AWX job slices at once (bench/slices.py)")
    args = parser.parse_args(argv)
    try:
        sizes = [10] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    most = addresses.max_hosts("bench")
    if any(not 1 <= s <= most for s in sizes):
        parser.error(f"--sizes: each size must be 1..{most} (the bench range of the lab allocator), got {args.sizes!r}")
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if args.slices < 0 or args.slices == 1:
        parser.error(f"--slices: expected 2 or more (0: no slicing), got {args.slices}")
    if args.slices:
        runs = ["audit_sliced"]
    unknown = [r for r in runs if r not in RUNS + EXTRA_RUNS + ("audit_sliced",)]
    if unknown:
        parser.error(f"--runs: unknown {', '.join(unknown)}; expected a subset of {','.join(RUNS + EXTRA_RUNS)}")
    if args.forks < 1:
        parser.error(f"--forks: expected >= 1, got {args.forks}")
    args.stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=False).stdout.strip()
    out = BENCH_DIR / f"results-{args.stamp}.json"
    results: list[dict[str, Any]] = []

    def write() -> None:
        # After every run, so an interrupted benchmark keeps what it measured.
        doc = {"schema": 1, "kind": "crlfix.windows.bench", "time": args.stamp, "commit": commit,
               "argv": sys.argv, "forks": args.forks, "sizes": sizes, "cpus": os.cpu_count(),
               "loadavg": os.getloadavg(), "runs": results, "ratios": report.ratios(results),
               "host_costs": report.host_costs(results), "wire_costs": wire.wire_costs(results)}
        out.write_text(json.dumps(doc, indent=1))

    for i, size in enumerate(sizes):
        run_size(size, args, runs, with_hang=i == 0, results=results, on_result=write)
    write()
    if args.slices:
        print(f"bench: results in {out}")
        return 0
    table_runs = [r for r in results if r.get("per_host") is not None]
    print()
    print(report.format_table([report.table_row(r) for r in table_runs]))
    for row in report.ratios(results):
        print(f"size {row['size']}: audit / baseline show = {row['audit_over_show']} "
              f"(in one batch: {row['audit_one_batch_over_show']}); "
              f"fix / baseline = {row['fix_over_baseline']}; fix on fixed / audit = {row['fixed_over_audit']}")
    costs = report.host_costs([r for r in results if r["name"] in ("audit", "baseline_show")])
    print()
    print(report.format_table(report.cost_rows(costs), report.COST_COLUMNS))
    for line in report.budget_lines(costs):
        print(line)
    print()
    print("Where the bytes go (host_audit of one Lync front end; KiB and document parts: means over the audit's hosts)")
    print(report.format_table(wire.bytes_rows(results), wire.BYTES_COLUMNS))
    for line in wire.wire_budget_lines(wire.wire_costs(results)):
        print(line)
    for r in results:
        if r["name"] == "hang":
            print(f"hang: {r['urls']} hanging URLs, timeout {r['timeout_ms']} ms: wall {r['wall_s']} s, "
                  f"max elapsed_ms {max((e for e in r['elapsed_ms'] if e is not None), default=None)}, "
                  f"errors {r['errors']}")
    print(f"bench: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
