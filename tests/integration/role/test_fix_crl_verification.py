"""fix_crl in the lab's revocation world: verification from the host, latency before/after, rollback.

Needs the lab's revocation world: the twins answering ``crl_fetch`` and ``tls_probe`` through their modelled
CryptoAPI/Schannel, the CRL server, and squid on each site's proxy address, all started with the ``lab`` fixture.
The faults are made with the lab's own controls (tests/lab/README.md): ``crl_server.set_fault`` and squid's
stop/start by PID. Short timeouts keep a broken host's measurement to seconds, not the Windows default 15 s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import crl_server
from tests.lab.squid import Squid

from ._runs import FAST, configuration, decoded, reset_fleet, run_fix_crl, site_proxies, views

pytestmark = pytest.mark.lab

# The east site's hosts share squid on 127.0.0.1 (tests/lab/fleet/build.py, site_proxies).
EAST = "site_east"


@pytest.fixture
def world(lab):
    reset_fleet(lab)
    crl_server.clear_faults(lab.lab_dir)
    yield lab
    crl_server.clear_faults(lab.lab_dir)
    reset_fleet(lab)


@contextlib.contextmanager
def squid_stopped(lab_dir: Path, proxy: str) -> Iterator[None]:
    """Stop the lab's squid that serves ``proxy`` (by its PID file) and start it again, same names, afterwards."""
    address, port = proxy.rsplit(":", 1)
    hosts_file = lab_dir / "squid" / "hosts"
    hosts = None
    if hosts_file.exists():
        hosts = {name: addr for addr, name in (line.split() for line in hosts_file.read_text().splitlines() if line)}
    squid = Squid(lab_dir, port=int(port), address=address, hosts=hosts)
    assert squid.stop(), f"the lab runs no squid for {proxy}: no live PID in {squid.pid_path}"
    try:
        yield
    finally:
        squid.start()


def east_hosts(lab) -> list[str]:
    return sorted(name for name, host in lab.hosts.items() if host.site == EAST)


def test_the_fix_is_proven_from_the_host_with_latency_before_and_after(world, tmp_path) -> None:
    run = run_fix_crl(world, tmp_path, "-l", EAST, extra_vars=FAST)
    assert run.rc == 0, run.stdout + run.stderr
    changed = [name for name, status in run.status().items() if status == "changed"]
    assert changed, run.status()
    for name in changed:
        host = run.host(name)
        assert host["verification"]["after"]["passed"] is True, host["verification"]
        assert host["crl_checks"]["after"]["purged"] is True  # flushed in the same command as the check
        assert host["probes"]["after"]["all_pass"] is True
        # The host had no working proxy before: its handshakes waited for the revocation retrieval.
        assert host["probes"]["before"]["worst_ms"] > host["probes"]["after"]["worst_ms"]
        assert world.state(name)["counters"]["urlcache_deletes"] >= 1
        assert all(decoded(v) == (site_proxies(world)[EAST], "") for v in views(world, name).values())
    worst = run.report["worst_handshake"]
    assert worst["before"]["ms"] > worst["after"]["ms"]
    assert "worst TLS handshake: before" in run.stdout

    again = run_fix_crl(world, tmp_path / "again", "-l", EAST, extra_vars=FAST)
    assert {name: c["changed"] for name, c in again.recap.items()} == {name: 0 for name in east_hosts(world)}
    assert set(again.status().values()) == {"compliant"}, [h["reason"] for h in again.report["hosts"]]


def test_the_audit_measures_but_changes_nothing(world, tmp_path) -> None:
    before = {name: configuration(world.state(name)) for name in world.hosts}
    run = run_fix_crl(world, tmp_path, "-l", EAST, "--check", "--diff", extra_vars=FAST)
    assert run.rc in (0, 2), run.stdout + run.stderr
    for name in world.hosts:
        assert configuration(world.state(name)) == before[name], name
    for name in east_hosts(world):
        host = run.host(name)
        assert host["status"] in ("compliant", "would_change", "failed"), host
        assert "before" in host["probes"] and "after" not in host["probes"]
        if host["status"] == "would_change":
            assert host["planned"]["flush"] is True
            assert host["crl_checks"]["before"]["purge_skipped_check_mode"] is True


def test_squid_down_during_verification_rolls_the_changed_hosts_back_byte_for_byte(world, tmp_path) -> None:
    original = {name: views(world, name) for name in east_hosts(world)}
    with squid_stopped(world.lab_dir, site_proxies(world)[EAST]):
        # The measurement after the rollback is a fifth command, on request: ask for it here to see it.
        run = run_fix_crl(world, tmp_path, "-l", EAST, extra_vars={**FAST, "fix_crl_measure_after_rollback": True})
    assert run.rc == 2, run.stdout
    rolled_back = [name for name, status in run.status().items() if status == "rolled_back"]
    assert rolled_back, run.status()
    for name in east_hosts(world):
        # No host is left with a value that neither the inventory nor its previous state asked for.
        assert views(world, name) == original[name], name
    for name in rolled_back:
        host = run.host(name)
        assert host["rollback"]["performed"] is True and host["rollback"]["ok"] is True
        assert ("rolled back to the previous values because no endpoint got an HTTP answer through the new proxy; "
                "after the rollback:") in host["reason"]
        assert host["rollback"]["comparison"]["proxy_path_works"] is False
        assert host["verification"]["after"]["passed"] is False
        assert "after_rollback" in host["verification"]
        assert host["commands"] == 5  # gather, apply, verify after, restore, verify after the rollback
        assert host["diagnosis"][0]["cause"] == "proxy_unreachable", host["diagnosis"]
        assert f"{name}: rolled_back: the proxy cannot be reached: verification failed" in run.stdout
        assert run.recap[name]["failed"] == 1


@pytest.mark.parametrize("fault", ["404", "garbage"])
def test_a_broken_crl_server_is_reported_and_a_working_proxy_change_is_kept(world, tmp_path, fault) -> None:
    # The proxy path works (squid relays the server's answer), and nothing that passed before fails now:
    # the change is what the inventory asks for and stays; every host is failed with the reason.
    crl_server.set_fault(world.lab_dir, fault)
    want = site_proxies(world)[EAST]
    original = {name: views(world, name) for name in east_hosts(world)}
    # Default batches (a canary, 10 %, the rest) and gate: hosts that fail only where they failed before
    # must not stop the rollout.
    run = run_fix_crl(world, tmp_path, "-l", EAST, extra_vars={
        **FAST, "fix_crl_serial": [1, "10%", "100%"], "fix_crl_max_fail_percentage": 50,
        "fix_crl_endpoint_requirement": "usable"})
    assert run.rc == 2, run.stdout
    for name in east_hosts(world):
        host = run.host(name)
        assert host["status"] == "failed", (name, host["status"], host["reason"])
        assert host["rollback"] is None or host["rollback"]["performed"] is False
        if host["planned"]["change"]:
            assert "and kept it (the proxy path works" in host["reason"], host["reason"]
            assert all(decoded(v) == (want, "") for v in views(world, name).values()), name
            assert host["rollback"]["comparison"]["worse"] == []
            # A kept change is a change for Ansible and for the summary, whatever the verdict.
            assert run.recap[name]["changed"] >= 1, run.recap
            assert host["change_kept"] is True
        else:
            assert "nothing to roll back" in host["reason"]
            assert views(world, name) == original[name], name
        bad = [e for e in host["endpoints"] if e["result"] and not e["result"]["usable"]]
        assert bad, host["endpoints"]
    # A kept change is no reason to stop the rollout: it did no harm.
    assert run.report["run"]["rollout_stopped"] is None
    kept = sum(1 for name in east_hosts(world) if run.host(name)["planned"]["change"])
    assert kept and run.report["totals"]["changes_kept"] == kept
    counts = f"{kept} changed, 0 rolled back, {len(east_hosts(world))} failed ({kept} of them kept the change)"
    assert counts in " ".join(run.stdout.split()), run.stdout


def test_a_canary_that_rolls_back_stops_the_rollout_and_the_report_says_so(world, tmp_path) -> None:
    original = {name: views(world, name) for name in east_hosts(world)}
    with squid_stopped(world.lab_dir, site_proxies(world)[EAST]):
        run = run_fix_crl(world, tmp_path, "-l", EAST, extra_vars={
            **FAST, "fix_crl_serial": [1, "10%", "100%"], "fix_crl_max_fail_percentage": 50})
    assert run.rc == 2, run.stdout
    statuses = run.status()
    canary = [name for name, status in statuses.items() if status != "not_run"]
    assert len(canary) == 1 and statuses[canary[0]] == "rolled_back", statuses
    stopped = run.report["run"]["rollout_stopped"]
    assert stopped["batch"] == canary and stopped["failed_percentage"] == 100.0
    for name in east_hosts(world):
        assert views(world, name) == original[name], name
        if name not in canary:
            assert run.host(name)["reason"].startswith("not reached: the rollout was stopped after the batch")
    assert "Rollout was stopped after the batch" in run.stdout
