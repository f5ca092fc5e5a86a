# PRIVATE to the crlfix.windows collection; may change without notice.
"""The proof as each identity: what the host's one-shot scheduled tasks answered, read into a verdict or into the
reason there is none.

The host (``_ps1/_identity_run.ps1``; docs/dev/host-scripts.md, "host_audit", ``identities.chain``) gives each runnable
account a ``run`` whose ``outcome`` says how far it got: ``finished`` (the probe wrote its result), ``late`` (still
queued or running at the runs' own deadline), ``no_result`` (the task ended without writing one: ``task_result`` is its
``LastTaskResult``) or ``not_started`` (Task Scheduler refused to register or start it: ``hresult``). Only a finished
run's chain status is evidence about the revocation path. Everything else leaves ``chain_ok`` null with a
``not_run_reason``: a task that starts slowly, a logon right missing or a policy in the way says nothing about CRLs,
so it never fails the identity, and it is never silent either.
"""

from __future__ import annotations

import typing as t

# The runs' own deadline (host_audit identities.chain.deadline_ms), counted from the moment the tasks are started: a
# cold powershell.exe started by Task Scheduler as another account takes seconds (an inference;
# docs/dev/real-windows.md says how to measure it), then the chain build may wait out CryptoAPI's retrieval timeouts
# (15 s per URL, 20 s per chain by default). The bounds are the host script's: 1 s, and the tasks' own
# ExecutionTimeLimit of 5 minutes.
DEADLINE_MS = 30000
MIN_DEADLINE_MS = 1000
MAX_DEADLINE_MS = 300000
OUTCOMES = ("finished", "late", "no_result", "not_started")
# LastTaskResult and HRESULT values a run may meet: (symbol, what Windows means by it). Sources: Microsoft Learn "Task
# Scheduler Error and Success Constants" (SCHED_*), "System Error Codes" (ERROR_* as 0x8007xxxx HRESULTs: 2, 5, 1326,
# 1385, 4320), ntstatus.h (STATUS_CONTROL_C_EXIT); the batch-logon reading of 1385 from RegisterTaskDefinition's
# SCHED_S_BATCH_LOGON_PROBLEM ("the batch logon privilege needs to be enabled for the task principal") and
# community.windows' win_scheduled_task documentation (the user "must have the SeBatchLogonRight"); the gMSA reading of
# 1326 is an inference.
TASK_RESULTS: dict[int, tuple[str, str]] = {
    0x00000001: ("exit code 1", "the program exited with code 1 (powershell.exe: its command did not run, e.g. a "
                                "script file refused by an execution policy)"),
    0x00041301: ("SCHED_S_TASK_RUNNING", "the task is currently running"),
    0x00041303: ("SCHED_S_TASK_HAS_NOT_RUN", "the task has not yet run"),
    0x00041306: ("SCHED_S_TASK_TERMINATED", "the last run of the task was terminated by the user"),
    0x80041315: ("SCHED_E_SERVICE_NOT_RUNNING", "the Task Scheduler service is not running"),
    0x8004131F: ("SCHED_E_ALREADY_RUNNING", "an instance of this task is already running"),
    0x80041324: ("SCHED_E_TASK_ATTEMPTED", "Task Scheduler attempted to run the task, but one of the constraints in "
                                           "the task definition stopped it"),
    0x80041326: ("SCHED_E_TASK_DISABLED", "the task is disabled"),
    0x80070002: ("ERROR_FILE_NOT_FOUND", "the task's program does not exist for Task Scheduler (a Sysnative path, "
                                         "which only 32-bit processes see)"),
    0x80070005: ("E_ACCESSDENIED", "access is denied"),
    0x8007052E: ("ERROR_LOGON_FAILURE", "the account's logon failed (for a gMSA: this host may not be allowed to "
                                        "retrieve its password)"),
    0x80070569: ("ERROR_LOGON_TYPE_NOT_GRANTED", "the account lacks 'Log on as a batch job'"),
    0x800710E0: ("ERROR_REQUEST_REFUSED", "the operator or administrator has refused the request (Task Scheduler "
                                          "refused the start, e.g. a condition such as running on batteries)"),
    0xC000013A: ("STATUS_CONTROL_C_EXIT", "the program was ended (the task was stopped)"),
}


def validate_deadline(value: t.Any) -> int:
    """``identities.chain.deadline_ms`` checked; the message names the field and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_DEADLINE_MS <= value <= MAX_DEADLINE_MS:
        raise ValueError(f"identities.chain.deadline_ms: expected an integer from {MIN_DEADLINE_MS} to "
                         f"{MAX_DEADLINE_MS}, got {value!r}")
    return value


def task_result_text(code: t.Any) -> str | None:
    """``0x80070569: the account lacks 'Log on as a batch job' (ERROR_LOGON_TYPE_NOT_GRANTED)``; the bare hex for a code
    the table does not name; None for no code. Negative (signed) values are read as the same 32 bits."""
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    code &= 0xFFFFFFFF
    known = TASK_RESULTS.get(code)
    return f"0x{code:08X}: {known[1]} ({known[0]})" if known else f"0x{code:08X}"


def _chain_entries(run: t.Mapping[str, t.Any], ldap_only: t.Collection[str]) -> list[dict[str, t.Any]]:
    skipped = {str(thumbprint).upper() for thumbprint in ldap_only}
    return [{"thumbprint": c.get("thumbprint"), "subject": c.get("subject"), "elapsed_ms": c.get("elapsed_ms"),
             "status": list(c.get("status") or []), "elements": list(c.get("elements") or []),
             "error": c.get("error"), "ldap_only": str(c.get("thumbprint")).upper() in skipped}
            for c in run.get("chains") or [] if isinstance(c, t.Mapping)]


def _judge_chains(fields: dict[str, t.Any], run: t.Mapping[str, t.Any]) -> None:
    """A finished run: failed on any chain with status flags; unknown when a chain could not be built or none was
    judged; ok when every judged chain is clean. A certificate whose CRLs are published over LDAP only is listed, not
    judged: no HTTP proxy carries LDAP (the role's ``flags.ldap_only`` finding)."""
    if run.get("error"):
        fields["not_run_reason"] = f"the probe as this identity failed: {run['error']}"
        return
    judged = [c for c in fields["crl"] if not c["ldap_only"]]
    times = [c["elapsed_ms"] for c in judged if isinstance(c.get("elapsed_ms"), int)]
    fields["chain_ms"] = max(times) if times else None
    failed = [c for c in judged if c["status"] and not c["error"]]
    broken = [c for c in judged if c["error"]]
    if failed:
        first = failed[0]
        fields["chain_ok"] = False
        fields["error"] = f"chain of {first.get('subject') or first.get('thumbprint')}: {', '.join(first['status'])}"
    elif broken:
        first = broken[0]
        fields["not_run_reason"] = (f"the chain of {first.get('subject') or first.get('thumbprint')} could not be "
                                    f"built as this identity: {first['error']}")
    elif judged:
        fields["chain_ok"] = True
    elif fields["crl"]:
        fields["not_run_reason"] = ("every certificate's CRLs are published over LDAP only, which no HTTP proxy "
                                    "carries: nothing to judge as this identity")
    else:
        fields["not_run_reason"] = "the probe as this identity built no chain"


def run_fields(run: t.Any, ldap_only: t.Collection[str] = ()) -> dict[str, t.Any]:
    """The record's measurement keys for one identity from the host's ``run``: ``chain_ok``, ``chain_ms``, ``crl``,
    ``cache_purged``, ``error``, ``not_run_reason``, ``run_outcome``, ``task_result`` (hex text) and ``start_ms``.

    ``chain_ok`` is False only when a finished run's chain shows revocation flags; it is None, with ``not_run_reason``
    saying why, whenever the proof did not decide (late, refused, ended without a result, a chain not built).
    """
    if not isinstance(run, t.Mapping):
        return {}
    purge = run.get("purge")
    outcome = run.get("outcome") or ("finished" if run.get("chains") else "no_result")
    code = run.get("task_result")
    fields: dict[str, t.Any] = {
        "cache_purged": None if purge is None else isinstance(purge, t.Mapping) and purge.get("rc") == 0,
        "crl": _chain_entries(run, ldap_only), "chain_ms": None, "chain_ok": None, "error": None,
        "not_run_reason": None, "run_outcome": outcome,
        "task_result": None if task_result_text(code) is None else f"0x{int(code) & 0xFFFFFFFF:08X}",
        "start_ms": run.get("start_ms") if isinstance(run.get("start_ms"), int) else None}
    error = str(run.get("error") or "").strip()
    if outcome == "finished":
        _judge_chains(fields, run)
    elif outcome == "late":
        fields["not_run_reason"] = f"the proof as this identity did not finish: {error or 'late'}"
    elif outcome == "no_result":
        named = task_result_text(code) or "not read"
        fields["not_run_reason"] = (f"the scheduled task ended without a result: LastTaskResult {named}"
                                    + (f"; {error}" if error else ""))
    else:
        named = task_result_text(run.get("hresult"))
        fields["not_run_reason"] = ("Task Scheduler did not start the task"
                                    + (f" ({named})" if named else "") + (f": {error}" if error else ""))
    return fields


def missing_run_reason(part: t.Mapping[str, t.Any]) -> str:
    """Why a runnable identity has no ``run`` at all, from the part's keys (host-scripts.md, identities.chain)."""
    folder = part.get("work_folder")
    if isinstance(folder, t.Mapping) and folder.get("trusted") is False:
        return f"the work folder {folder.get('path')} cannot be trusted: {folder.get('reason')}; no task was made"
    if part.get("chain_error"):
        named = task_result_text(part.get("chain_hresult"))
        return (f"the scheduled tasks could not be used{f' ({named})' if named else ''}: {part['chain_error']}")
    if part.get("targets") == 0:
        return "no certificate with a private key in the stores asked for: nothing to build as this identity"
    if "work_folder" not in part and "leftovers_removed" not in part:
        return "the host was not asked to build the chain as this identity"
    return "the host started no task for this identity"


__all__ = ["DEADLINE_MS", "MAX_DEADLINE_MS", "MIN_DEADLINE_MS", "OUTCOMES", "TASK_RESULTS", "missing_run_reason",
           "run_fields", "task_result_text", "validate_deadline"]
