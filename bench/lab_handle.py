"""One benchmark lab: started at a free place of the bench range in its own directory, reset between runs, stopped.

Uses `scripts/lab.py` for up/down (so the lab is exactly the documented one), the lab allocator
(`tests/lab/fleet/addresses.py`, range "bench") for its place and the lab's control channel
(`tests.lab.fleet.process.control`) for metrics and reloads. Resetting restores every twin's state file from the copy
taken right after `up` and reloads it, which is seconds even at 500 hosts (a restart would re-issue every
certificate).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.lab import crl_server
from tests.lab.fleet import addresses
from tests.lab.fleet.process import control

REPO_ROOT = Path(__file__).resolve().parents[1]


class BenchLab:
    def __init__(self, lab_dir: Path, hosts: int, seed: int) -> None:
        self.lab_dir = lab_dir.resolve()
        self.hosts = hosts
        self.seed = seed
        self.subnet: int | None = None
        self.up_output = ""

    @property
    def inventory(self) -> Path:
        return self.lab_dir / "inventory.yml"

    def _lab(self, *args: str) -> str:
        cmd = [sys.executable, str(REPO_ROOT / "scripts" / "lab.py"), "--lab-dir", str(self.lab_dir), *args]
        done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
        return done.stdout

    def up(self) -> None:
        self.subnet = addresses.allocate("bench", self.hosts).subnet
        self.up_output = self._lab("up", "--hosts", str(self.hosts), "--seed", str(self.seed),
                                   "--subnet", str(self.subnet), "--crl-minutes", "120")
        pristine = self.lab_dir / "hosts.pristine"
        shutil.rmtree(pristine, ignore_errors=True)
        shutil.copytree(self.lab_dir / "hosts", pristine)

    def down(self) -> None:
        self._lab("down")

    def fleet_doc(self) -> dict[str, Any]:
        return json.loads((self.lab_dir / "fleet.json").read_text())

    def host_names(self) -> list[str]:
        return [h["name"] for h in self.fleet_doc()["hosts"]]

    def metrics(self) -> dict[str, Any]:
        return control(self.lab_dir, "GET", "/metrics", timeout=120)

    def reset(self) -> None:
        """Every twin back to its seeded state (proxy values, URL cache); CRL server faults cleared."""
        crl_server.clear_faults(self.lab_dir)
        for path in sorted((self.lab_dir / "hosts.pristine").glob("*.json")):
            shutil.copyfile(path, self.lab_dir / "hosts" / path.name)
            control(self.lab_dir, "POST", f"/twins/{path.stem}/reload")

    def set_hang(self, seconds: float) -> None:
        crl_server.set_fault(self.lab_dir, "hang", "*", hang_seconds=seconds)

    def clear_faults(self) -> None:
        crl_server.clear_faults(self.lab_dir)
