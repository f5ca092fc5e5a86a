"""Start, stop and inspect the loopback fleet of Windows twins.

    lab.py up [--hosts N] [--seed S] [--subnet K] [--lab-dir DIR]   build states + inventory, start the server
    lab.py down [--lab-dir DIR]                                      stop exactly the server `up` started
    lab.py metrics [--lab-dir DIR]                                   write and print build/lab/metrics.json

`up` on a lab dir whose server is still running stops that server first (no leak), then starts fresh
seeded states. The inventory is build/lab/inventory.yml; see tests/twin/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.twin import fleet  # noqa: E402 - needs the repo root on sys.path


def cmd_up(args: argparse.Namespace) -> int:
    lab_dir: Path = args.lab_dir
    lab_dir.mkdir(parents=True, exist_ok=True)
    old = fleet.running_pid(lab_dir)
    if old is not None:
        print(f"lab: a lab server is already running (pid {old}); stopping it first")
        fleet.stop_server(lab_dir)
    began = time.monotonic()
    doc = fleet.build_lab(lab_dir, args.hosts, seed=args.seed, subnet=args.subnet)
    built = time.monotonic() - began
    pid, ready = fleet.start_server(lab_dir)
    print(
        f"lab: {len(doc['hosts'])} twins up (pid {pid}); files built in {built:.1f}s, listeners ready in "
        f"{ready:.1f}s; RSS {fleet.rss_kib(pid) // 1024} MiB"
    )
    print(f"lab: inventory {lab_dir / 'inventory.yml'}; store certificates from {doc['store_certificates']}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if fleet.stop_server(args.lab_dir):
        print(f"lab: stopped; metrics in {args.lab_dir / 'metrics.json'}")
    else:
        print("lab: no lab server was running")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    try:
        doc = fleet.control(args.lab_dir, "GET", "/metrics")
    except (fleet.LabError, OSError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc["totals"], indent=1))
    print(f"lab: per-host counters in {args.lab_dir / 'metrics.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, default=fleet.DEFAULT_LAB_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start N twins")
    up.add_argument("--hosts", type=int, default=12)
    up.add_argument("--seed", type=int, default=fleet.DEFAULT_SEED)
    up.add_argument("--subnet", type=int, default=1, help="third octet of the first address (127.0.<subnet>.1)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the lab").set_defaults(func=cmd_down)
    sub.add_parser("metrics", help="dump per-host counters").set_defaults(func=cmd_metrics)
    args = parser.parse_args(argv)
    args.lab_dir = args.lab_dir.resolve()
    try:
        return args.func(args)
    except (fleet.LabError, ValueError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
