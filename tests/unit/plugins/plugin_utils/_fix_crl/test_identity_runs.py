"""_fix_crl/_identity_runs through _identities.summarise: a late, refused or failed proof is null with its reason.

The ``run`` objects are shaped as ``_ps1/_identity_run.ps1`` documents them (docs/dev/host-scripts.md, host_audit
``identities.chain``): ``outcome`` finished / late / no_result / not_started, ``task_result`` the task's
LastTaskResult, ``hresult`` the HRESULT of a refused registration or start. The codes are Windows' own (Microsoft Learn,
"Task Scheduler Error and Success Constants", "System Error Codes").
"""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _findings, _identities, _identity_runs
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import chain_failures
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import state_from_raw

DIRECT = bytes.fromhex("1800000000000000010000000000000000000000")  # Microsoft Learn (netsh winhttp reset proxy)
NS, SYSTEM, USER = "NT AUTHORITY\\NETWORK SERVICE", "NT AUTHORITY\\SYSTEM", "LAB\\svc-lync"
CLEAN = {"thumbprint": "AB", "subject": "CN=fe01", "elapsed_ms": 812, "status": [], "elements": [], "error": None}
OFFLINE = {**CLEAN, "status": ["RevocationStatusUnknown", "OfflineRevocation"]}


def account(name: str, sid: str, run: dict | None = None) -> dict:
    entry = {"name": name, "requested": name, "sid": sid, "hive_loaded": True, "ie": None, "error": None}
    if run is not None:
        entry["run"] = run
    return entry


def summarise(*accounts: dict, **part_keys) -> tuple[dict, list]:
    part = {"services": [], "accounts": list(accounts), "caller": None, "per_user": True, "machine_ie": None,
            "wpad_disabled": False, "leftovers_removed": 0, "targets": 1, **part_keys}
    identities, _caller = _identities.summarise(part, state_from_raw({"native": DIRECT, "wow6432": DIRECT}))
    # the judge's finding of the part's work folder (_findings.work_folder_findings)
    return identities, [f.as_dict() for f in _findings.work_folder_findings(part.get("work_folder"))]


def one(run: dict) -> dict:
    identities, _findings = summarise(account(NS, "S-1-5-20", run))
    return identities[NS]


@pytest.mark.parametrize(("run", "reason"), [
    ({"outcome": "late", "task_result": None, "elapsed_ms": 30000, "chains": [], "purge": None,
      "error": "not finished within the deadline of 30000 ms: the task was still running"},
     "the proof as this identity did not finish: not finished within the deadline of 30000 ms: the task was still "
     "running"),
    ({"outcome": "no_result", "task_result": 2147943785, "chains": [], "purge": None, "error": None},
     "the scheduled task ended without a result: LastTaskResult 0x80070569: the account lacks 'Log on as a batch job' "
     "(ERROR_LOGON_TYPE_NOT_GRANTED)"),
    ({"outcome": "no_result", "task_result": 1, "chains": [], "purge": None, "error": None},
     "the scheduled task ended without a result: LastTaskResult 0x00000001: the program exited with code 1 "
     "(powershell.exe: its command did not run, e.g. a script file refused by an execution policy) (exit code 1)"),
    ({"outcome": "not_started", "task_result": None, "hresult": -2147216619, "chains": [], "purge": None,
      "error": "The Task Scheduler Service is not running. (Exception from HRESULT: 0x80041315)"},
     "Task Scheduler did not start the task (0x80041315: the Task Scheduler service is not running "
     "(SCHED_E_SERVICE_NOT_RUNNING)): The Task Scheduler Service is not running. (Exception from HRESULT: 0x80041315)"),
    ({"outcome": "finished", "task_result": 0, "purge": None, "error": "Keyset does not exist", "chains": []},
     "the probe as this identity failed: Keyset does not exist"),
    ({"outcome": "finished", "task_result": 0, "purge": None, "error": None,
      "chains": [{**CLEAN, "error": "no certificate AB in LocalMachine\\My"}]},
     "the chain of CN=fe01 could not be built as this identity: no certificate AB in LocalMachine\\My"),
])
def test_a_proof_that_did_not_decide_is_null_with_its_reason_and_no_failure(run: dict, reason: str) -> None:
    entry = one(run)
    assert entry["chain_ok"] is None and entry["not_run_reason"] == reason
    assert entry["error"] is None and entry["run_outcome"] == run["outcome"]
    assert chain_failures({NS: entry}) == []


def test_the_task_result_is_kept_as_hex_and_a_finished_run_is_judged_by_its_chains() -> None:
    entry = one({"outcome": "no_result", "task_result": 2147943785, "chains": [], "purge": None, "error": None})
    assert entry["task_result"] == "0x80070569"
    entry = one({"outcome": "finished", "task_result": 0, "start_ms": 2875, "purge": {"rc": 0, "output": ""},
                 "error": None, "chains": [CLEAN]})
    assert (entry["chain_ok"], entry["not_run_reason"], entry["start_ms"], entry["cache_purged"]) == (True, None, 2875,
                                                                                                      True)
    entry = one({"outcome": "finished", "task_result": 0, "purge": None, "error": None, "chains": [OFFLINE]})
    assert entry["chain_ok"] is False and chain_failures({NS: entry})


def test_one_failing_chain_fails_the_identity_even_when_another_could_not_be_built() -> None:
    entry = one({"outcome": "finished", "task_result": 0, "purge": None, "error": None,
                 "chains": [{**CLEAN, "error": "boom"}, {**OFFLINE, "thumbprint": "CD", "subject": "CN=other"}]})
    assert entry["chain_ok"] is False and entry["error"].startswith("chain of CN=other:")


def test_an_untrusted_work_folder_is_a_finding_and_each_runnable_identity_says_the_proof_did_not_run() -> None:
    folder = {"path": "C:\\ProgramData\\crlfix", "existed": True, "created": False, "trusted": False,
              "reason": "its owner is S-1-5-21-1-2-3-1003, not SYSTEM, Administrators or the connecting account",
              "removed": False, "left": []}
    identities, findings = summarise(account(NS, "S-1-5-20"), account(SYSTEM, "S-1-5-18"),
                                     account(USER, "S-1-5-21-1-2-3-1200"), work_folder=folder)
    for name in (NS, SYSTEM):
        assert identities[name]["chain_ok"] is None
        assert identities[name]["not_run_reason"] == (
            "the work folder C:\\ProgramData\\crlfix cannot be trusted: its owner is S-1-5-21-1-2-3-1003, not SYSTEM, "
            "Administrators or the connecting account; no task was made")
    assert identities[USER]["not_run_reason"].startswith(f"{USER} is neither a built-in service account nor a gMSA")
    assert [(f["code"], f["identity"]) for f in findings] == [("work_folder_untrusted", None)]
    assert findings[0]["detail"].startswith("C:\\ProgramData\\crlfix cannot be trusted with the identities' results: "
                                            "its owner is S-1-5-21-1-2-3-1003")


def test_a_trusted_work_folder_is_no_finding() -> None:
    folder = {"path": "C:\\ProgramData\\crlfix", "existed": False, "created": True, "trusted": True, "reason": None,
              "removed": True, "left": []}
    _identities_found, findings = summarise(account(NS, "S-1-5-20", {"outcome": "finished", "chains": [CLEAN]}),
                                            work_folder=folder)
    assert findings == []


@pytest.mark.parametrize(("keys", "reason"), [
    ({"chain_error": "Retrieving the COM class factory failed", "chain_hresult": 0x80070422},
     "the scheduled tasks could not be used (0x80070422): Retrieving the COM class factory failed"),
    ({"targets": 0}, "no certificate with a private key in the stores asked for: nothing to build as this identity"),
])
def test_a_runnable_identity_without_a_run_says_why(keys: dict, reason: str) -> None:
    identities, _findings = summarise(account(NS, "S-1-5-20"), **keys)
    assert identities[NS]["chain_ok"] is None and identities[NS]["not_run_reason"] == reason


def test_chain_ok_is_null_exactly_when_there_is_a_reason() -> None:
    runs = [{"outcome": "finished", "chains": [CLEAN]}, {"outcome": "finished", "chains": [OFFLINE]},
            {"outcome": "late", "error": "late"}, {"outcome": "no_result", "task_result": 2147943785},
            {"outcome": "not_started", "hresult": 2147942405, "error": "Access is denied."}, None]
    for run in runs:
        entry = one(run) if run is not None else summarise(account(NS, "S-1-5-20"))[0][NS]
        assert (entry["chain_ok"] is None) == isinstance(entry["not_run_reason"], str), (run, entry)


@pytest.mark.parametrize(("code", "text"), [
    (2147943785, "0x80070569: the account lacks 'Log on as a batch job' (ERROR_LOGON_TYPE_NOT_GRANTED)"),
    (-2147023511, "0x80070569: the account lacks 'Log on as a batch job' (ERROR_LOGON_TYPE_NOT_GRANTED)"),
    (0x80070002, "0x80070002: the task's program does not exist for Task Scheduler (a Sysnative path, which only "
                 "32-bit processes see) (ERROR_FILE_NOT_FOUND)"),
    (0x8007FFFF, "0x8007FFFF"), (None, None), (True, None),
])
def test_task_results_are_named_by_their_windows_meaning(code, text) -> None:
    assert _identity_runs.task_result_text(code) == text


def test_host_args_give_the_runs_their_own_bounded_deadline() -> None:
    args = _identities.host_args(["RTCSRV"], [], chain={"stores": ["My"], "purge_cache": False})
    assert args["chain"]["deadline_ms"] == _identity_runs.DEADLINE_MS == 30000
    assert _identities.host_args([], [], chain={"stores": [], "deadline_ms": 1000})["chain"]["deadline_ms"] == 1000
    for bad in (999, 300001, "30000", True, 2.5):
        with pytest.raises(ValueError, match=rf"identities.chain.deadline_ms: expected an integer from 1000 to 300000, "
                                             rf"got {bad!r}"):
            _identities.host_args([], [], chain={"stores": [], "deadline_ms": bad})
