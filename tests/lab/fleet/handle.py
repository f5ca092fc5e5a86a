"""What a test holds of a running lab: its hosts, state files, controls and the real Ansible commands.

The pytest ``lab`` fixture (``tests/integration/conftest.py``) yields a ``LabHandle``; its members are listed in
tests/lab/README.md ("In pytest"). Tests use it, never the lab's files or control channel directly, so the
lab's layout can change without touching them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import crl_server, pki
from tests.lab.fleet.process import REPO_ROOT, control
from tests.lab.squid import Squid
from tests.twin.state import write_json_atomic

VENV_BIN = REPO_ROOT / ".venv" / "bin"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    http_port: int
    https_port: int
    user: str
    password: str
    group: str
    site: str
    scenario: str
    os_build: int

    def endpoint(self, https: bool = False) -> str:
        return (
            f"https://{self.address}:{self.https_port}/wsman"
            if https
            else f"http://{self.address}:{self.http_port}/wsman"
        )


class LabHandle:
    """A running lab: inventory, hosts, state files, control channel, and the real ansible-playbook."""

    def __init__(self, lab_dir: Path, doc: dict[str, Any]) -> None:
        self.lab_dir = lab_dir
        self.inventory_path = lab_dir / "inventory.yml"
        self.ca_path = Path(doc["winrm_ca"])
        self.hosts: dict[str, LabHost] = {
            h["name"]: LabHost(
                h["name"],
                h["address"],
                h["http_port"],
                h["https_port"],
                doc["user"],
                doc["password"],
                h["group"],
                h["site"],
                h["scenario"],
                h["os_build"],
            )
            for h in doc["hosts"]
        }
        self._initial = {name: self.state(name) for name in self.hosts}
        world = doc["revocation"]
        self.crl_addresses: dict[str, str] = dict(world["names"])
        self.tls_port: int = int(world["tls_port"])
        self.proxy: str = f"{world['squid']['address']}:{world['squid']['port']}"

    # -- the revocation world (docs/lab.md) -------------------------------------------------------------
    def squid(self) -> Squid:
        """The lab's squid (stop()/start() by its PID file; access_log_lines())."""
        address, port = self.proxy.rsplit(":", 1)
        return Squid(self.lab_dir, port=int(port), address=address, hosts=self.crl_addresses)

    def publish_crls(self, next_update: dt.timedelta, now: dt.datetime | None = None) -> None:
        """Re-sign the CRLs: NextUpdate = (``now`` or the current time) + ``next_update``."""
        pki.publish(self.lab_dir, next_update=next_update, now=now)

    def set_crl_fault(self, mode: str, path: str = "*") -> None:
        crl_server.set_fault(self.lab_dir, mode, path)

    def clear_crl_faults(self) -> None:
        crl_server.clear_faults(self.lab_dir)

    def crl_access_log(self) -> list[str]:
        try:
            return (self.lab_dir / "crl-server" / "access.log").read_text().splitlines()
        except FileNotFoundError:
            return []

    def _state_path(self, name: str) -> Path:
        if name not in self.hosts:
            raise KeyError(f"lab host {name!r} does not exist; hosts: {sorted(self.hosts)}")
        return self.lab_dir / "hosts" / f"{name}.json"

    def state(self, name: str) -> dict[str, Any]:
        """The host's state file as it is on disk now (the twin writes through before a command returns)."""
        return json.loads(self._state_path(name).read_text())

    def write_state(self, name: str, data: dict[str, Any]) -> None:
        """Replace the host's state (test setup), then make the twin reload it."""
        write_json_atomic(self._state_path(name), data)
        control(self.lab_dir, "POST", f"/twins/{name}/reload")

    def reset_state(self, name: str) -> dict[str, Any]:
        """Put the host back to its seeded starting state; returns that state."""
        data = copy.deepcopy(self._initial[name])
        self.write_state(name, data)
        return data

    def seed(self, name: str, *scenarios: str) -> dict[str, Any]:
        """Put the host in the named scenario(s) as ``scripts/lab.py seed`` does (tests/lab/fleet/catalogue.py); the
        twin reloads, or restarts when its OS changed. ``reset_state`` (then ``stop_twin``/``start_twin`` when it had
        restarted) undoes it."""
        self._state_path(name)
        return control(self.lab_dir, "POST", f"/twins/{name}/seed", body={"scenario": list(scenarios)}, timeout=60)

    def metrics(self) -> dict[str, Any]:
        return control(self.lab_dir, "GET", "/metrics")

    def stop_twin(self, name: str) -> None:
        self._state_path(name)
        control(self.lab_dir, "POST", f"/twins/{name}/stop")

    def start_twin(self, name: str) -> None:
        self._state_path(name)
        control(self.lab_dir, "POST", f"/twins/{name}/start")

    def set_fault(self, name: str, after_script: str, action: str) -> dict[str, Any]:
        """Arm a one-shot, test-only fault on a twin (tests/lab/README.md "Fault hooks"): when the twin finishes
        the host script ``after_script``, ``stop`` kills it before the output is returned, ``stop_squid`` stops
        the lab's squid before the output is returned. Undo with ``clear_faults`` (and ``start_twin``/squid)."""
        self._state_path(name)
        return control(
            self.lab_dir, "POST", f"/twins/{name}/fault", body={"after_script": after_script, "action": action}
        )

    def clear_faults(self) -> list[str]:
        """Disarm every fault that has not fired; returns the twins that had one."""
        return control(self.lab_dir, "POST", "/faults/clear")["cleared"]

    def ansible_env(self) -> dict[str, str]:
        return dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
            ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
            ANSIBLE_INVENTORY=str(self.inventory_path),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )

    def run_playbook(
        self, path: str | Path, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ansible-playbook from .venv against the lab inventory (``env`` adds variables)."""
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory_path), str(path), *args]
        return self._run(cmd, check, env)

    def run_ansible(
        self, pattern: str, *args: str, check: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Ad-hoc ``ansible <pattern> ...`` against the lab inventory."""
        cmd = [str(VENV_BIN / "ansible"), "-i", str(self.inventory_path), pattern, *args]
        return self._run(cmd, check, env)

    def _run(self, cmd: list[str], check: bool, env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
        full_env = {**self.ansible_env(), **(env or {})}
        result = subprocess.run(
            cmd, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=900, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {result.returncode}\nSTDOUT:\n{result.stdout}\nSTDERR:\n{result.stderr}"
            )
        return result
