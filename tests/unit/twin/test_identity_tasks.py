"""What Task Scheduler and the work folder do to the twin's identity runs (tests/twin/task_scheduler.py and
work_folder.py).

As hard as Windows, each from the source its module names: a task's powershell.exe starts in seconds; a gMSA without
"Log on as a batch job" ends at once with 0x80070569 and writes nothing; a Group Policy execution policy stops a -File
probe, not an -EncodedCommand one; a 2008 R2 host has no ScheduledTasks cmdlets; a planted or linked work folder stops
the runs and nothing in it is touched. The scripts' facts come from the script text itself: today's _identity_run.ps1,
or a script on the cmdlet path where a test needs one.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest

from tests.lab import pki
from tests.lab.winhttp import OutboundPolicy
from tests.twin import identities, identity_runs, revocation, task_scheduler
from tests.twin.state import HostState, new_state, write_json_atomic

NS, GMSA = "NT AUTHORITY\\NETWORK SERVICE", "LAB\\gmsa-adfs$"
GMSA_SID = "S-1-5-21-3623811015-3361044348-30300820-1105"
USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1003"  # a local user, not an administrator
CMDLET_SCRIPT = task_scheduler.ScriptFacts(("Get-ScheduledTask", "Register-ScheduledTask"), "-File")


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict:
    return pki.issue_host_certificates(tmp_path_factory.mktemp("pki"), ["fe01.lab.test"])["fe01.lab.test"]


@pytest.fixture
def make_state(tmp_path: Path, stores: dict):
    def make(name: str = "host", *, build: int = 17763, start_ms: int | None = 0, **keys) -> HostState:
        data = new_state("fe01.lab.test", os_build=build, user="ansible", password="p", cert_stores=stores)
        data["chain_engine"] = {revocation.URL_TIMEOUT_VALUE: 100, revocation.CHAIN_TIMEOUT_VALUE: 200}
        data["accounts"][GMSA_SID] = {"name": GMSA, "hive_loaded": True, "ie": None, "url_cache": []}
        if start_ms is not None:
            data["task_scheduler"] = {"start_ms": start_ms}
        data.update(copy.deepcopy(keys))
        write_json_atomic(tmp_path / f"{name}.json", data)
        return HostState.load(tmp_path / f"{name}.json")
    return make


@pytest.fixture(autouse=True)
def unreachable_world():
    previous = revocation.world()
    revocation.configure(revocation.World(names=dict.fromkeys(pki.PUBLIC_NAMES, "198.51.100.7"),
                                          policy=OutboundPolicy()))
    yield
    revocation.configure(previous)


def run(state: HostState, *names: str, deadline: int = 10000) -> dict:
    part = identities.identities_part(state, {"services": [], "accounts": list(names), "accounts_from_services": True})
    runs = identity_runs.start(state, part, {"stores": ["My"], "purge_cache": False}, threading.Event())
    identity_runs.complete(state, runs, remaining_s=deadline / 1000, deadline=deadline)
    return part


def test_a_task_starts_in_seconds_by_default(make_state) -> None:
    state = make_state(start_ms=None)
    [account] = run(state, NS)["accounts"]
    assert account["run"]["outcome"] == "finished" and account["run"]["start_ms"] >= 2000


def test_a_gmsa_without_the_batch_right_ends_with_0x80070569_and_writes_nothing(make_state) -> None:
    state = make_state()
    state.data["accounts"][GMSA_SID]["batch_logon_right"] = False
    ns, gmsa = run(state, NS, GMSA)["accounts"]
    assert gmsa["run"]["outcome"] == "no_result" and gmsa["run"]["task_result"] == 0x80070569
    assert gmsa["run"]["chains"] == [] and gmsa["run"]["start_ms"] is None
    assert ns["run"]["outcome"] == "finished"  # a built-in account logs on as a service: no batch right needed
    assert state.data["counters"]["scheduled_tasks"] == 2


@pytest.mark.parametrize(("facts", "outcome", "task_result"), [
    (task_scheduler.ScriptFacts((), "-File"), "no_result", 1),
    (task_scheduler.ScriptFacts((), "-EncodedCommand"), "finished", 0),
])
def test_a_group_policy_execution_policy_stops_a_script_file_not_a_command(make_state, monkeypatch, facts, outcome,
                                                                           task_result) -> None:
    monkeypatch.setattr(task_scheduler, "script_facts", lambda: facts)
    state = make_state(execution_policy={"MachinePolicy": "AllSigned"})
    [account] = run(state, NS)["accounts"]
    assert (account["run"]["outcome"], account["run"]["task_result"]) == (outcome, task_result)


def test_the_scheduledtasks_cmdlets_do_not_exist_on_2008_r2(make_state, monkeypatch) -> None:
    monkeypatch.setattr(task_scheduler, "script_facts", lambda: CMDLET_SCRIPT)
    state = make_state(build=7601, scheduled_tasks=["\\crlfix\\crlfix-0123"])
    part = run(state, NS)
    assert part["chain_error"].startswith("The term 'Get-ScheduledTask' is not recognized as the name of a cmdlet")
    assert "run" not in part["accounts"][0] and state.data["counters"]["scheduled_tasks"] == 0
    assert state.data["scheduled_tasks"] == ["\\crlfix\\crlfix-0123"]  # the script failed before removing it
    newer = make_state("2012r2", build=9600)
    assert run(newer, NS)["accounts"][0]["run"]["outcome"] == "finished"  # the module exists from Server 2012


def test_todays_script_uses_only_the_com_api_and_an_encoded_command(make_state) -> None:
    assert task_scheduler.script_facts() == task_scheduler.ScriptFacts((), "-EncodedCommand")
    state = make_state(build=7601)
    assert run(state, NS)["accounts"][0]["run"]["outcome"] == "finished"


def test_a_script_on_the_cmdlet_path_with_a_file_is_read_as_such() -> None:
    # The shape of _identity_run.ps1 before the review (leftovers first, then a -File action); comments are not read.
    text = "\n".join([
        "# Register-ScheduledTask is never called before this line",
        "foreach ($task in @(Get-ScheduledTask -TaskPath $CrlfixTaskPath -ErrorAction SilentlyContinue)) {",
        "    Unregister-ScheduledTask -InputObject $task -Confirm:$false",
        "}",
        "$arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File \"' + $probePath + '\"'",
        "$action = New-ScheduledTaskAction -Execute $powershell -Argument $arguments",
        "$null = Register-ScheduledTask -TaskPath $CrlfixTaskPath -TaskName $name -Action $action",
        "$info = Get-ScheduledTaskInfo -TaskPath $CrlfixTaskPath -TaskName $name"])
    facts = task_scheduler.script_facts(text)
    assert facts == task_scheduler.ScriptFacts(("Get-ScheduledTask", "Unregister-ScheduledTask",
                                                "New-ScheduledTaskAction", "Register-ScheduledTask",
                                                "Get-ScheduledTaskInfo"), "-File")


PLANTED = {"owner": USER_SID, "protected": False,
           "acl": [{"sid": "S-1-5-18", "rights": "FullControl"}, {"sid": "S-1-5-32-545", "rights": "CreateFiles"}],
           "reparse_target": None, "entries": {"id-0001\\probe.ps1": "Start-Process evil.exe"}}
JUNCTION = {"owner": USER_SID, "protected": False, "acl": [], "reparse_target": "C:\\Users\\Public\\keep",
            "entries": {}}
KEPT = {"C:\\Users\\Public\\keep": {"id-0001\\result.json": "{}", "notes.txt": "must stay"}}


@pytest.mark.parametrize(("folder", "reason"), [
    (PLANTED, f"its owner is {USER_SID}, not SYSTEM, Administrators or the connecting account"),
    (JUNCTION, "it is a reparse point (a junction or a symbolic link)"),
    ({**PLANTED, "owner": "S-1-5-32-544"},
     "it inherits its ACL from its parent, where Users may create files and folders"),
    ({**PLANTED, "owner": "S-1-5-32-544", "protected": True},
     "its ACL allows S-1-5-32-545 CreateFiles"),
])
def test_an_untrusted_work_folder_stops_the_runs_and_nothing_in_it_is_touched(make_state, folder, reason) -> None:
    state = make_state(work_folder=folder, folders=KEPT)
    before = copy.deepcopy((state.data["work_folder"], state.data["folders"]))
    part = run(state, NS)
    assert part["work_folder"]["trusted"] is False and part["work_folder"]["reason"] == reason
    assert "run" not in part["accounts"][0] and state.data["counters"]["scheduled_tasks"] == 0
    assert (state.data["work_folder"], state.data["folders"]) == before and part["leftovers_removed"] == 0


def test_a_missing_work_folder_is_made_for_the_runs_and_gone_after(make_state) -> None:
    state = make_state()
    part = run(state, NS)
    assert {k: part["work_folder"][k] for k in ("existed", "created", "trusted", "removed")} == {
        "existed": False, "created": True, "trusted": True, "removed": True}
    assert "work_folder" not in state.data


def test_a_trusted_folder_loses_what_an_aborted_run_left_and_then_itself(make_state) -> None:
    trusted = {"owner": "S-1-5-32-544", "protected": True, "acl": [{"sid": "S-1-5-18", "rights": "FullControl"}],
               "reparse_target": None, "entries": {"id-0a\\result.json": "{}", "id-0b\\result.tmp": ""}}
    state = make_state(work_folder=trusted)
    part = run(state, NS)
    assert part["leftovers_removed"] == 2 and part["work_folder"]["removed"] is True and "work_folder" not in state.data


def test_one_twins_slow_tasks_never_delay_another_twins(make_state) -> None:
    slow, fast = make_state("slow", start_ms=20000), make_state("fast", start_ms=0)
    parts = {name: identities.identities_part(state, {"services": [], "accounts": [NS]})
             for name, state in (("slow", slow), ("fast", fast))}
    cancel_slow = threading.Event()
    slow_runs = identity_runs.start(slow, parts["slow"], {"stores": ["My"]}, cancel_slow)
    fast_runs = identity_runs.start(fast, parts["fast"], {"stores": ["My"]}, threading.Event())
    assert slow_runs.pool is not fast_runs.pool
    identity_runs.complete(fast, fast_runs, remaining_s=15, deadline=15000)
    assert parts["fast"]["accounts"][0]["run"]["outcome"] == "finished"
    assert not next(iter(slow_runs.futures.values())).done()  # still starting: it held nothing the fast one needed
    cancel_slow.set()
