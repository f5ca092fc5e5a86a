"""One benchmark lab: started on a free loopback subnet in its own directory, reset between runs, stopped.

Uses `scripts/lab.py` for up/down (so the lab is exactly the documented one) and the lab's control channel
(`tests.twin.fleet.control`) for metrics and reloads. Resetting restores every twin's state file from the copy
taken right after `up` and reloads it, which is seconds even at 500 hosts (a restart would re-issue every
certificate).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.lab import crl_server
from tests.twin import fleet

REPO_ROOT = Path(__file__).resolve().parents[1]
# 127.0.1-2.x is `make lab-up`'s, 127.0.200-250.x the pytest labs': the benchmark stays between them.
SUBNET_FIRST, SUBNET_LAST = 100, 190
HOSTS_PER_SUBNET = 254


def free_subnet(hosts: int, first: int = SUBNET_FIRST, last: int = SUBNET_LAST) -> int:
    """A third octet K such that 127.0.K.1 .. 127.0.K+n-1.1 port 5985 are all free (a lab of ``hosts`` spans n)."""
    span = (hosts + HOSTS_PER_SUBNET - 1) // HOSTS_PER_SUBNET
    for subnet in range(first, last - span + 2):
        try:
            for k in range(subnet, subnet + span):
                with socket.socket() as probe:
                    probe.bind((f"127.0.{k}.1", 5985))
        except OSError:
            continue
        return subnet
    raise RuntimeError(f"no {span} free loopback subnets between 127.0.{first}.x and 127.0.{last}.x")


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
        self.subnet = free_subnet(self.hosts)
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
        return fleet.control(self.lab_dir, "GET", "/metrics", timeout=120)

    def reset(self) -> None:
        """Every twin back to its seeded state (proxy values, URL cache); CRL server faults cleared."""
        crl_server.clear_faults(self.lab_dir)
        for path in sorted((self.lab_dir / "hosts.pristine").glob("*.json")):
            shutil.copyfile(path, self.lab_dir / "hosts" / path.name)
            fleet.control(self.lab_dir, "POST", f"/twins/{path.stem}/reload")

    def set_hang(self, seconds: float) -> None:
        crl_server.set_fault(self.lab_dir, "hang", "*", hang_seconds=seconds)

    def clear_faults(self) -> None:
        crl_server.clear_faults(self.lab_dir)
