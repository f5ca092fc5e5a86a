"""The proof as the services' identities, run the way Windows runs it: slow task starts, refusals, planted folders.

The twin's scheduled tasks (tests/twin/task_scheduler.py, work_folder.py) start in seconds, fail a gMSA without "Log on
as a batch job" with 0x80070569, have no ScheduledTasks cmdlets on 2008 R2, stop a script file under a Group Policy
execution policy, and refuse a work folder a local user planted. The record must say, per identity, whether the proof
ran and why not (``chain_ok`` null with ``not_run_reason``), never fail an identity for a proof that did not run, and
never make a task in (or delete anything through) a folder it cannot trust.

Until the role's verdict reads ``not_run_reason``, these tests look at the record's ``identities`` and ``findings``, and
only require that a healthy host whose proof did not run is not failed for it.
"""

from __future__ import annotations

import base64
import copy

import pytest

from tests.lab.fleet import scenarios
from tests.lab.fleet.tls_scenarios import seed_tls10_peer
from tests.twin import winhttp_value

from ._runs import FAST, run_fix_crl, site_proxies

pytestmark = pytest.mark.lab

NS = "NT AUTHORITY\\NETWORK SERVICE"


def _host(fleet, group: str, *names: str, tls10: bool = False) -> str:
    """The first host of ``group``, its netsh value set to its site's proxy (healthy), then in each scenario."""
    name = sorted(n for n, h in fleet.hosts.items() if h.group == group)[0]
    proxy = site_proxies(fleet)[fleet.hosts[name].site]
    state = fleet.state(name)
    value = base64.b64encode(winhttp_value.encode(3, proxy, "")).decode("ascii")
    for view in ("native", "wow6432"):
        state["registry"][view]["WinHttpSettings"] = value
    for scenario in names:
        state = scenarios.apply_scenario(state, scenario, proxy)
    if tls10:  # a new host class: the twin restarts so that its 5061 listener speaks what the class speaks
        fleet.stop_twin(name)
        fleet.write_state(name, seed_tls10_peer(state))
        fleet.start_twin(name)
    else:
        fleet.write_state(name, state)
    return name


def _not_run(host: dict, name: str) -> str:
    entry = host["identities"][name]
    assert entry["chain_ok"] is None and isinstance(entry["not_run_reason"], str), entry
    return entry["not_run_reason"]


def test_a_healthy_host_is_proven_as_its_identities_though_its_tasks_start_in_seconds(fleet, tmp_path) -> None:
    # Task Scheduler's cold powershell.exe as NETWORK SERVICE takes seconds, more than the audit's 2000 ms time box for
    # the measurement: the runs have their own deadline. A Group Policy execution policy does not touch a probe sent as
    # -EncodedCommand.
    name = _host(fleet, "lync_servers", "gpo_execution_policy")
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name, extra_vars=FAST)
    host = audit.host(name)
    assert host["status"] == "compliant", host["reason"]
    entry = host["identities"][NS]
    assert entry["chain_ok"] is True and entry["not_run_reason"] is None, entry
    assert entry["run_outcome"] == "finished" and entry["start_ms"] >= 2000, entry
    assert host["verification"]["before"]["identities_ok"] is True
    state = fleet.state(name)
    assert state["counters"]["scheduled_tasks"] == 1 and "work_folder" not in state  # made, used, removed


def test_a_2008_r2_lync_front_end_is_proven_as_its_identities(fleet, tmp_path) -> None:
    # No ScheduledTasks module on 2008 R2 SP1, even with WMF 5.1: only Task Scheduler's COM API works there.
    name = _host(fleet, "lync_servers", tls10=True)
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name, extra_vars=FAST)
    host = audit.host(name)
    assert host["identities"], host["errors"]
    for identity, entry in host["identities"].items():
        assert entry["run_outcome"] == "finished" and entry["chain_ok"] is True, (identity, entry)
    assert fleet.state(name)["counters"]["scheduled_tasks"] == len(host["identities"])


def test_a_gmsa_without_the_batch_right_is_named_with_its_windows_code_and_not_failed(fleet, tmp_path) -> None:
    name = _host(fleet, "adfs_servers", "gmsa_no_batch_right")
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name, extra_vars=FAST)
    host = audit.host(name)
    reason = _not_run(host, scenarios.GMSA_NAME)
    assert reason == ("the scheduled task ended without a result: LastTaskResult 0x80070569: the account lacks 'Log on "
                      "as a batch job' (ERROR_LOGON_TYPE_NOT_GRANTED)"), reason
    assert host["identities"][scenarios.GMSA_NAME]["task_result"] == "0x80070569"
    assert host["verification"]["before"]["identities_ok"] is not False and host["status"] != "failed", host["reason"]


def test_a_late_proof_is_null_with_its_reason_and_never_fails_a_healthy_host(fleet, tmp_path) -> None:
    # Task Scheduler takes 40 s to start the probe: longer than the runs' default deadline of 30 s.
    name = _host(fleet, "lync_servers", "slow_task_start")
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name, extra_vars=FAST)
    host = audit.host(name)
    assert _not_run(host, NS) == ("the proof as this identity did not finish: not finished within the deadline of "
                                  "30000 ms: the task was still running")
    assert host["identities"][NS]["run_outcome"] == "late"
    assert host["verification"]["before"]["identities_ok"] is not False and host["status"] != "failed", host["reason"]
    assert fleet.state(name)["scheduled_tasks"] == []  # the late task was stopped and removed


@pytest.mark.parametrize("scenario", ["planted_work_folder", "planted_junction"])
def test_a_planted_work_folder_is_refused_no_task_is_made_and_nothing_in_it_is_touched(fleet, tmp_path,
                                                                                       scenario) -> None:
    name = _host(fleet, "lync_servers", scenario)
    planted = copy.deepcopy({key: fleet.state(name).get(key) for key in ("work_folder", "folders")})
    for run, args in (("audit", ("--check",)), ("fix", ())):
        result = run_fix_crl(fleet, tmp_path / run, *args, "-l", name, extra_vars=FAST)
        host = result.host(name)
        found = [f for f in host["findings"] if f["code"] == "work_folder_untrusted"]
        assert len(found) == 1 and found[0]["detail"].startswith("C:\\ProgramData\\crlfix cannot be trusted"), found
        for identity, entry in host["identities"].items():
            if entry["runnable"]:
                assert _not_run(host, identity).startswith("the work folder C:\\ProgramData\\crlfix cannot be trusted")
        state = fleet.state(name)
        assert state["counters"].get("scheduled_tasks", 0) == 0 and state["scheduled_tasks"] == []
        assert {key: state.get(key) for key in ("work_folder", "folders")} == planted  # not read, run or deleted
