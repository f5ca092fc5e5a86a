"""`scripts/lab.py up/down/metrics` as an admin runs it: no leaked process, exact-PID stop, metrics on demand and
at down; a second lab beside the first takes addresses of its own, a taken address is named, and a start that
fails leaves neither processes nor an inventory behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab.fleet import addresses, launcher
from tests.lab.fleet.addresses import AddressInUse
from tests.lab.fleet.process import REPO_ROOT, SERVER_MODULE, answers

pytestmark = pytest.mark.lab


def lab_cli(lab_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "lab.py"), "--lab-dir", str(lab_dir), *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )


def processes_of(lab_dir: Path, module: str = "") -> list[int]:
    """PIDs whose command line names ``lab_dir`` (lab server, CRL server, squid), optionally also ``module``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(lab_dir).encode() in cmdline and module.encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def server_pids(lab_dir: Path) -> list[int]:
    return processes_of(lab_dir, SERVER_MODULE)


def listeners(fleet: dict) -> set[tuple[str, int]]:
    """Every address:port a lab's fleet document says it listens on."""
    world = fleet["revocation"]
    taken = {(world["squid"]["address"], world["squid"]["port"])}
    taken |= {(address, 80) for address in world["names"].values()}
    return taken | {(h["address"], port) for h in fleet["hosts"] for port in (h["http_port"], h["https_port"])}


@pytest.fixture
def lab_dirs() -> Iterator[Callable[[str], Path]]:
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(REPO_ROOT / "build" / f"lab-pytest-{name}-{os.getpid()}")
        return made[-1]

    yield make
    for lab_dir in made:
        launcher.down(lab_dir)
        shutil.rmtree(lab_dir, ignore_errors=True)


def test_up_twice_does_not_leak_and_down_leaves_nothing(lab_dirs):
    lifecycle_dir = lab_dirs("lifecycle")
    subnet = str(addresses.allocate("pytest", 3).subnet)
    first = lab_cli(lifecycle_dir, "up", "--hosts", "3", "--subnet", subnet)
    assert first.returncode == 0, first.stderr
    assert len(server_pids(lifecycle_dir)) == 1
    first_pid = server_pids(lifecycle_dir)[0]

    second = lab_cli(lifecycle_dir, "up", "--hosts", "3", "--subnet", subnet)
    assert second.returncode == 0, second.stderr
    assert f"already running (pid {first_pid})" in second.stdout
    assert server_pids(lifecycle_dir) == [int((lifecycle_dir / "lab.pid").read_text())]
    assert first_pid not in server_pids(lifecycle_dir)

    metrics = lab_cli(lifecycle_dir, "metrics")
    assert metrics.returncode == 0, metrics.stderr
    doc = json.loads((lifecycle_dir / "metrics.json").read_text())
    assert set(doc["hosts"]) == {"lync-fe01.lab.test", "exch-mbx01.lab.test", "adfs01.lab.test"}

    (lifecycle_dir / "metrics.json").unlink()
    down = lab_cli(lifecycle_dir, "down")
    assert down.returncode == 0, down.stderr
    assert server_pids(lifecycle_dir) == []
    assert not (lifecycle_dir / "lab.pid").exists()
    assert json.loads((lifecycle_dir / "metrics.json").read_text())["hosts"]  # written at down

    again = lab_cli(lifecycle_dir, "down")
    assert again.returncode == 0 and "no lab server was running" in again.stdout


def test_a_second_lab_takes_addresses_of_its_own(lab_dirs):
    """Two labs in two directories, neither told where to live: both run, on addresses the other does not use."""
    fleets = []
    for lab_dir in (lab_dirs("first"), lab_dirs("second")):
        started = lab_cli(lab_dir, "up", "--hosts", "2")
        assert started.returncode == 0, started.stderr
        fleets.append(json.loads((lab_dir / "fleet.json").read_text()))
    first, second = (listeners(fleet) for fleet in fleets)
    assert not first & second
    assert all(answers(address, port) for address, port in first | second)
    # Neither took the documented lab's place (127.0.1.x, squid 3128, CRL server 127.0.9.x).
    assert all(fleet["subnet"] in addresses.RANGES["lab"] for fleet in fleets)


@contextlib.contextmanager
def _holding_a_free_winrm_address() -> Iterator[tuple[addresses.Place, str]]:
    """A pytest place whose first host's WinRM port this test holds; the next place when another worker's lab took
    one between the check and the bind (addresses.places says so)."""
    for place in addresses.places("pytest", 1):
        address = place.host_address(0)
        with socket.socket() as holder:
            try:
                holder.bind((address, 5985))
            except OSError:
                continue
            holder.listen()
            yield place, address
            return
    raise AssertionError("no free pytest place to hold")


def test_a_taken_address_is_named_and_nothing_is_left(lab_dirs):
    lab_dir = lab_dirs("taken")
    with _holding_a_free_winrm_address() as (place, address):
        refused = lab_cli(lab_dir, "up", "--hosts", "1", "--subnet", str(place.subnet))
    assert refused.returncode == 1
    assert f"lab: {address}:5985 is already in use" in refused.stderr
    assert not (lab_dir / "inventory.yml").exists() and not (lab_dir / "fleet.json").exists()
    assert processes_of(lab_dir) == []


def test_a_start_that_fails_after_the_check_removes_what_it_built(lab_dirs, monkeypatch):
    """Another process takes an address between the check and the start: the lab server's bind error names it,
    and what had started (CRL server, squid) is stopped and what was built removed; the logs stay."""
    lab_dir = lab_dirs("race")
    place = addresses.allocate("pytest", 1)
    address = place.host_address(0)
    monkeypatch.setattr(launcher, "check_free", lambda place, hosts: None)  # checked before the address was taken
    with socket.socket() as holder:
        holder.bind((address, 5986))
        holder.listen()
        with pytest.raises(AddressInUse, match=re.escape(f"{address}:5986 is already in use")):
            launcher.up(lab_dir, 1, place)
    assert sorted(path.name for path in lab_dir.iterdir()) == ["crl-server", "lab-server.log", "squid",
                                                               "squid-nodns"]
    assert "cannot listen on" in (lab_dir / "lab-server.log").read_text()
    assert processes_of(lab_dir) == []


# --- scenarios by name: `lab.py scenarios` and `lab.py seed` (docs/lab.md, "Scenarios by name") -------------------

def test_scenarios_lists_every_scenario_one_line_each() -> None:
    from tests.lab.fleet import cause_scenarios, plan, scenarios, tls_scenarios

    listed = lab_cli(REPO_ROOT / "build" / "no-lab-needed", "scenarios")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    first = [*plan.SCENARIOS, *scenarios.EXTRA_SCENARIOS, tls_scenarios.TLS10_PEER]
    # The cause catalogue's scenarios after them, each name once (views_disagree, stale_service are there already).
    assert names == first + [n for n in cause_scenarios.CAUSE_SCENARIOS if n not in first]
    assert all(len(line.split(None, 2)) == 3 for line in listed.stdout.splitlines())  # a description on each


def test_seed_refuses_an_unknown_host_or_scenario_and_names_the_valid_ones(lab) -> None:
    host = next(iter(lab.hosts))
    wrong_host = lab_cli(lab.lab_dir, "seed", "--host", "nosuch.lab.test", "--scenario", "correct")
    assert wrong_host.returncode == 1 and host in wrong_host.stderr and "nosuch.lab.test" in wrong_host.stderr
    wrong_scenario = lab_cli(lab.lab_dir, "seed", "--host", host, "--scenario", "nosuch")
    assert wrong_scenario.returncode == 1
    assert "unknown scenario 'nosuch'" in wrong_scenario.stderr and "stale_service" in wrong_scenario.stderr


def _utc(text: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def test_seed_puts_a_running_host_in_a_scenario_through_the_control_channel(lab) -> None:
    name = next(n for n, h in lab.hosts.items() if h.group == "lync_servers")
    try:
        stale = lab_cli(lab.lab_dir, "seed", "--host", name, "--scenario", "stale_service")
        assert stale.returncode == 0, stale.stderr
        assert f"{name} is now in scenario stale_service (twin reloaded)" in stale.stdout
        state = lab.state(name)
        assert state["lab"]["scenario"] == "stale_service"
        # As on Windows: the running service's process started before the proxy value was last written.
        assert state["service_process"]["started"] < _utc(state["registry_write_times"]["native"])
        fresh = lab_cli(lab.lab_dir, "seed", "--host", name, "--scenario", "correct")
        assert fresh.returncode == 0, fresh.stderr
        state = lab.state(name)
        assert state["lab"]["scenario"] == "correct" and state["service_process"]["session"] is None
        assert state["service_process"]["started"] > _utc(state["registry_write_times"]["native"])
        both = lab_cli(lab.lab_dir, "seed", "--host", name, "--scenario", "no_proxy", "--scenario", "clock_skew")
        assert both.returncode == 0 and f"{name} is now in scenario no_proxy,clock_skew" in both.stdout, both.stderr
        assert lab.state(name)["clock_offset_s"] == 8 * 3600 and lab.state(name)["lab"]["scenario"] == \
            "no_proxy,clock_skew"
        two = lab_cli(lab.lab_dir, "seed", "--host", name, "--scenario", "direct,wrong_proxy")
        assert two.returncode == 1 and "more than one starting state" in two.stderr, two.stderr
        old = lab_cli(lab.lab_dir, "seed", "--host", name, "--scenario", "tls10_peer")
        assert old.returncode == 0 and "(twin restarted)" in old.stdout, old.stderr
        assert lab.state(name)["os"]["build"] == 7601 and lab.metrics()["hosts"][name]["listening"]
    finally:
        lab.stop_twin(name)
        lab.reset_state(name)
        lab.start_twin(name)
