"""Run one controller command and measure it: wall time, CPU of the whole process tree, peak memory.

Memory, three ways, because ansible-playbook is one main process plus ``forks`` worker processes forked from
it (they share most pages copy-on-write):

- ``peak_rss_sum_kib``: the largest sum of VmRSS over the process tree, sampled every ``interval`` seconds from
  /proc. Counts shared pages once per process, so it over-states (an upper bound).
- ``peak_pss_sum_kib``: the same sum of Pss (``/proc/<pid>/smaps_rollup``): shared pages divided among the
  processes sharing them, so the sum is the memory the run really occupies. This is the figure for the budget.
- ``ru_maxrss_kib``: ``wait4`` rusage of the ansible-playbook process, which the kernel reports as the
  largest RSS of any *single* process in the tree (the main process, normally), never a sum.

A sample interval can miss a short peak; with runs of minutes and memory growing with results held by the
main process, 0.5 s is enough. CPU is exact: ``wait4`` returns user+system time of the process and of every
descendant it waited for (Ansible reaps its workers).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: the fields after the last ')' are safe.
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kib(pid: int, path: str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _main_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat (index 11, 12 after the command name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Sampler(threading.Thread):
    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.stop = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.main_cpu_s: float | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            tree = process_tree(self.root)
            self.peak_rss = max(self.peak_rss, sum(_status_kib(p, "status", "VmRSS:") for p in tree))
            self.peak_pss = max(self.peak_pss, sum(_status_kib(p, "smaps_rollup", "Pss:") for p in tree))
            self.peak_processes = max(self.peak_processes, len(tree))
            cpu = _main_cpu_s(self.root)
            if cpu is not None:
                self.main_cpu_s = cpu
            self.stop.wait(self.interval)


def run_measured(
    cmd: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, interval: float = 0.5
) -> dict[str, Any]:
    """Run ``cmd`` to completion with stdout+stderr in ``log_path``; return its measurements.

    ``main_cpu_s`` is the CPU of the top process alone (its last sample; the part of the run spent in
    ansible-playbook's strategy/results loop, as opposed to the forked workers that run the tasks).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        began = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        sampler = _Sampler(proc.pid, interval)
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - began
        sampler.stop.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it; keep Popen from waiting again
    return {
        "cmd": cmd,
        "rc": proc.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        "main_cpu_s": None if sampler.main_cpu_s is None else round(sampler.main_cpu_s, 2),
        "ru_maxrss_kib": usage.ru_maxrss,
        "peak_rss_sum_kib": sampler.peak_rss,
        "peak_pss_sum_kib": sampler.peak_pss,
        "peak_processes": sampler.peak_processes,
        "log": str(log_path),
    }
