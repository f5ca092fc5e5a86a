"""Session fixtures for every integration test: a small lab of Windows twins on loopback.

``lab`` starts 6 twins (one of each seeded starting state, OS builds 14393/17763/20348, both sites) in
``build/lab-pytest-<pid>/`` on a free ``127.0.<200-250>.x`` /24 so it never collides with a `make lab-up` lab
or another session, and stops the lab server at the end of the session, even when tests fail (the directory
is removed unless ``CRLFIX_KEEP_LAB=1``). See ``LabHandle`` for the API.

With the lab comes its revocation world (docs/lab.md): CRLs published with a 10-minute NextUpdate, the CRL
server on a free ``127.9.<n>.80-82:80`` triple and squid on ``127.0.0.1:<free port>``; every site's
``fix_crl_proxy`` is that squid (``lab.proxy``; ``fleet.SITE_PROXIES`` is updated in place for this process).
Each twin listens for TLS on ``<address>:5061`` and has 3 s / 4 s CryptoAPI retrieval timeouts.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab import crl_server, pki
from tests.lab.squid import Squid
from tests.twin import fleet
from tests.twin.state import write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
LAB_HOSTS = 6


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
        fleet.control(self.lab_dir, "POST", f"/twins/{name}/reload")

    def reset_state(self, name: str) -> dict[str, Any]:
        """Put the host back to its seeded starting state; returns that state."""
        data = copy.deepcopy(self._initial[name])
        self.write_state(name, data)
        return data

    def metrics(self) -> dict[str, Any]:
        return fleet.control(self.lab_dir, "GET", "/metrics")

    def stop_twin(self, name: str) -> None:
        self._state_path(name)
        fleet.control(self.lab_dir, "POST", f"/twins/{name}/stop")

    def start_twin(self, name: str) -> None:
        self._state_path(name)
        fleet.control(self.lab_dir, "POST", f"/twins/{name}/start")

    def set_fault(self, name: str, after_script: str, action: str) -> dict[str, Any]:
        """Arm a one-shot, test-only fault on a twin (tests/twin/README.md "Fault hooks"): when the twin finishes
        the host script ``after_script``, ``stop`` kills it before the output is returned, ``stop_squid`` stops
        the lab's squid before the output is returned. Undo with ``clear_faults`` (and ``start_twin``/squid)."""
        self._state_path(name)
        return fleet.control(
            self.lab_dir, "POST", f"/twins/{name}/fault", body={"after_script": after_script, "action": action}
        )

    def clear_faults(self) -> list[str]:
        """Disarm every fault that has not fired; returns the twins that had one."""
        return fleet.control(self.lab_dir, "POST", "/faults/clear")["cleared"]

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


def _start_lab(lab_dir: Path) -> dict[str, Any]:
    # xdist workers start scanning at different subnets; a lost race for a /24 (bind error) moves on.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = 8 * int(worker[2:]) if worker[2:].isdigit() else 0
    first = 200 + offset % 48
    last_error: Exception | None = None
    for _attempt in range(5):
        subnet = fleet.free_subnet(first, 250)
        doc = fleet.build_lab(
            lab_dir,
            LAB_HOSTS,
            subnet=subnet,
            squid_port=fleet.free_port(),
            crl_addresses=fleet.crl_addresses_for(fleet.free_crl_net()),
        )
        try:
            fleet.start_world(lab_dir)
            fleet.start_server(lab_dir)
        except fleet.LabError as exc:
            last_error = exc
            fleet.stop_server(lab_dir)
            fleet.stop_world(lab_dir)
            first = subnet + 1
            continue
        # The role tests read fleet.SITE_PROXIES; in this process it must name this lab's squid.
        fleet.SITE_PROXIES.update(doc["site_proxies"])
        return doc
    raise fleet.LabError(f"could not start the test lab in {lab_dir}: {last_error}; see its lab-server.log")


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    # One lab per pytest process (xdist workers included), on a free loopback /24 of its own, so parallel
    # workers, concurrent sessions and a `make lab-up` lab never collide.
    lab_dir = REPO_ROOT / "build" / f"lab-pytest-{os.getpid()}"
    lab_dir.mkdir(parents=True, exist_ok=True)
    try:
        doc = _start_lab(lab_dir)
        yield LabHandle(lab_dir, doc)
    finally:
        fleet.stop_server(lab_dir)
        fleet.stop_world(lab_dir)
        if not os.environ.get("CRLFIX_KEEP_LAB"):
            shutil.rmtree(lab_dir, ignore_errors=True)
