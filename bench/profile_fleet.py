"""Where the controller's CPU goes in a fix-crl run: py-spy over ansible-playbook and every worker it forks.

    .venv/bin/python -m bench.profile_fleet [--hosts 50] [--forks 25] [--check] [--rate 50]

Brings up a bench lab of ``--hosts`` twins, runs ``playbooks/fix-crl.yml`` (``--check`` for the audit) under
``py-spy record --subprocesses`` (on-CPU samples only), takes the lab down, and prints the samples split into
the main ansible-playbook process and its forked workers (a worker's stacks run under
``multiprocessing.popen_fork.Popen._launch``), with the heaviest functions of each. The raw profile stays in
build/bench/profile-<UTC time>/ for a flame graph. A measurement, never a test.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

from bench.lab_handle import REPO_ROOT, BenchLab
from bench.run import BENCH_DIR, BIN, ansible_env

_WORKER_FRAME = "Popen._launch"
_LINE = re.compile(r":\d+\)$")


def summarise(raw: Path, top: int = 15) -> dict[str, object]:
    """Samples per side (main, workers) and the heaviest functions (inclusive) and leaves of each side."""
    sides: dict[str, collections.Counter[str]] = {"main": collections.Counter(), "workers": collections.Counter()}
    leaves: dict[str, collections.Counter[str]] = {"main": collections.Counter(), "workers": collections.Counter()}
    totals = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _sep, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")[1:]]
        side = "workers" if any(frame.startswith(_WORKER_FRAME) for frame in frames) else "main"
        totals[side] += int(count)
        for frame in set(frames):
            sides[side][frame] += int(count)
        if frames:
            leaves[side][frames[-1]] += int(count)
    return {
        "samples": dict(totals),
        "inclusive": {side: counter.most_common(top) for side, counter in sides.items()},
        "leaves": {side: counter.most_common(top) for side, counter in leaves.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--forks", type=int, default=25)
    parser.add_argument("--rate", type=int, default=50, help="samples per second")
    parser.add_argument("--check", action="store_true", help="profile the audit (--check) instead of the fix")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.forks < 1 or args.rate < 1:
        parser.error(f"--hosts, --forks and --rate must be >= 1, got {args.hosts}, {args.forks}, {args.rate}")
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        parser.error(f"{py_spy} not found: run `make setup` (requirements/dev.txt pins py-spy)")

    out = BENCH_DIR / f"profile-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True)
    lab = BenchLab(BENCH_DIR / f"lab-profile-{args.hosts}", args.hosts, args.seed)
    lab.up()
    try:
        cmd = [str(py_spy), "record", "--subprocesses", "-r", str(args.rate), "-f", "raw", "-o", str(out / "raw.txt"),
               "--", str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "-f", str(args.forks),
               str(REPO_ROOT / "playbooks" / "fix-crl.yml"), "-e", f"fix_crl_report_dir={out / 'reports'}"]
        if args.check:
            cmd.append("--check")
        with (out / "run.log").open("w") as log:
            done = subprocess.run(cmd, env=ansible_env(out / "timing.json"), cwd=REPO_ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, check=False)
    finally:
        lab.down()
    summary = summarise(out / "raw.txt")
    print(f"profile: {'audit' if args.check else 'fix'} of {args.hosts} hosts, forks {args.forks}, "
          f"rc {done.returncode}, {args.rate} samples/s; raw profile in {out}")
    samples = summary["samples"]
    for side in ("main", "workers"):
        count = samples.get(side, 0)
        print(f"\n{side}: {count} samples = {count / args.rate:.1f} s on CPU")
        print("  heaviest (inclusive):")
        for frame, n in summary["inclusive"][side]:
            print(f"    {n / args.rate:7.2f} s  {frame[:110]}")
        print("  where the CPU is (leaf):")
        for frame, n in summary["leaves"][side]:
            print(f"    {n / args.rate:7.2f} s  {frame[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
