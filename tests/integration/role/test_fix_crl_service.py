"""fix_crl sees a running service that still holds state from before the fix, and restarts it when asked.

``stale_service`` (tests/lab/fleet/scenarios.py): netsh already holds the site's proxy, but the Lync front end's
running service (tests/twin/service_process.py) still holds the WinHTTP session it opened when netsh was direct and
an offline entry for its CRL URLs. Every fresh process (the audit, the task as NETWORK SERVICE) passes; a mutual-TLS
handshake with the host's own 5061 service, whose process checks this host's certificate itself, is slow. The run
must say so (finding ``service_stale``, the host failed with the reason, never rolled back), and with
``fix_crl_restart_services: true`` restart the named services one host at a time and end compliant.
"""

from __future__ import annotations

import pytest

from tests.lab.fleet import scenarios

from ._runs import FAST, run_fix_crl, site_proxies

pytestmark = pytest.mark.lab


def _stale_host(fleet) -> str:
    name = sorted(n for n, h in fleet.hosts.items() if h.group == "lync_servers")[0]
    proxy = site_proxies(fleet)[fleet.hosts[name].site]
    fleet.write_state(name, scenarios.apply_scenario(fleet.state(name), "stale_service", proxy))
    return name


def _codes(host) -> list[str]:
    return [f["code"] for f in host["findings"] if f["code"] == "service_stale"]


def test_a_stale_service_is_reported_and_left_alone_without_restart(fleet, tmp_path) -> None:
    name = _stale_host(fleet)
    run = run_fix_crl(fleet, tmp_path / "fix", "-l", name, extra_vars=FAST)
    host = run.host(name)
    # The proxy is right, so nothing is changed and nothing is rolled back; the running service is still slow.
    assert host["verification"]["before"]["passed"] is True, host["verification"]["before"]["summary"]
    assert host["status"] == "failed" and "service_stale: " in host["reason"], host["reason"]
    assert host["reason"].startswith("a running service holds state from before the fix: ")
    assert [d["cause"] for d in host["diagnosis"]] == ["stale_service"], host["diagnosis"]
    assert "RTCSRV, RTCMEDSRV" in host["reason"] and "fix_crl_restart_services" in host["reason"]
    assert _codes(host) == ["service_stale"]
    service = host["service"]
    assert service["stale"] is True and service["restart"] is None
    assert service["handshake"]["verdict"] == "slow" and service["handshake"]["mutual"] is True, service
    assert service["status_when_fresh"] == "compliant"
    assert host["commands"] == 1 and host["rollback"] is None
    state = fleet.state(name)
    assert state["counters"].get("netsh_writes", 0) == 0
    assert state["counters"].get("service_restarts", 0) == 0
    assert run.rc != 0 and run.recap[name]["failed"] == 1


def test_a_stale_service_is_restarted_when_asked_and_the_host_ends_compliant(fleet, tmp_path) -> None:
    name = _stale_host(fleet)
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name,
                        extra_vars={**FAST, "fix_crl_restart_services": True})
    host = audit.host(name)
    assert _codes(host) == ["service_stale"] and host["service"]["restart"] is None  # check mode restarts nothing
    assert fleet.state(name)["counters"].get("service_restarts", 0) == 0

    name = _stale_host(fleet)  # the audit's own handshake put the URLs on the service's offline list again
    commands_before = fleet.metrics()["hosts"][name]["shell_commands"]
    run = run_fix_crl(fleet, tmp_path / "fix", "-l", name, extra_vars={**FAST, "fix_crl_restart_services": True})
    host = run.host(name)
    assert host["status"] == "compliant", host["reason"]
    assert _codes(host) == []
    restart = host["service"]["restart"]
    assert restart["ok"] is True and [s["name"] for s in restart["services"]] == ["RTCSRV", "RTCMEDSRV"]
    assert all(s["restarted"] and s["state"] == "Running" for s in restart["services"]), restart
    assert restart["handshake"]["verdict"] == "pass", restart["handshake"]
    assert host["service"]["stale"] is False
    assert host["commands"] == 2  # the audit's one command and the restart's
    state = fleet.state(name)
    assert state["counters"]["service_restarts"] == 1
    # The twin's own count of remote commands: the audit's one and the restart's.
    assert fleet.metrics()["hosts"][name]["shell_commands"] - commands_before == 2
    assert state["service_process"]["session"] is None and state["service_process"]["offline"] == {}
    assert run.rc == 0 and run.recap[name]["failed"] == 0
