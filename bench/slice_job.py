"""One slice job of bench/slices.py: playbooks/fix-crl.yml through ansible-runner, as an AWX execution node runs it.

    python -m bench.slice_job --private-dir DIR --inventory SLICE.yml --forks 25 --report-dir DIR [--check]

ansible-runner runs ansible-playbook with its own event callback and writes every job event to the artifacts,
which is the controller-side cost an AWX job adds to ansible-playbook's. Exit status: the playbook's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import ansible_runner

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--private-dir", type=Path, required=True)
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--forks", type=int, default=25)
    parser.add_argument("--report-dir", type=Path, required=True)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    args.private_dir.mkdir(parents=True, exist_ok=True)
    cmdline = f"-e fix_crl_report_dir={args.report_dir}" + (" --check" if args.check else "")
    envvars = {key: os.environ[key] for key in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH") if key in os.environ}
    # ansible-runner starts ansible-playbook from PATH: the one of this virtualenv.
    envvars["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    runner = ansible_runner.run(private_data_dir=str(args.private_dir),
                                playbook=str(REPO_ROOT / "playbooks" / "fix-crl.yml"),
                                inventory=str(args.inventory.resolve()), forks=args.forks, cmdline=cmdline,
                                envvars=envvars, quiet=True)
    print(f"slice_job: {runner.status}, rc {runner.rc}, {len(runner.stats.get('ok', {}) if runner.stats else {})} "
          "hosts ok", flush=True)
    return int(runner.rc or 0)


if __name__ == "__main__":
    sys.exit(main())
