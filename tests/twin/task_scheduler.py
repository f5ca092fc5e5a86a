"""Task Scheduler as the twin's identity runs meet it (tests/twin/README.md, "Scheduled tasks as other identities").

What a one-shot task of ``_ps1/_identity_run.ps1`` meets on a host, each from its source or marked as the twin's choice:

- **Which API the script drives** is read from the script itself (``script_facts``), as ``host_classes`` reads the
  floor script, so the stand-in and the script cannot disagree: the ScheduledTasks cmdlets (``Register-ScheduledTask``,
  ``Get-ScheduledTask``, ...) exist only on hosts whose class has the module, Windows Server 2012 and later (Microsoft
  Learn, ScheduledTasks module; WMF 5.1 does not add it to 2008 R2: ansible-modules-extras#1830, Invoke-CommandAs#9).
  On a host without it the first cmdlet the script calls fails with PowerShell's CommandNotFoundException text and no
  task is made. Task Scheduler 2.0's COM API (``Schedule.Service``) is on every class (Windows Vista / Server 2008 on).
- **Start latency**: seconds, from Task Scheduler's launch to a cold ``powershell.exe`` running as the account with
  its profile loaded (no published figure: "seconds" is an inference, and 2 to 4 s uniform is the twin's choice until
  docs/dev/real-windows.md's measurement; a state's ``task_scheduler.start_ms`` fixes it for a test). The runs of one
  host wait on their own threads: nothing is shared with another twin.
- **The logon**: the built-in service accounts log on as services; any other account (a gMSA) needs "Log on as a batch
  job" (win_scheduled_task: the user "must have the SeBatchLogonRight"). Without it
  (``accounts[<sid>].batch_logon_right`` false) Task Scheduler's start fails at the logon: LastTaskResult 0x80070569
  (ERROR_LOGON_TYPE_NOT_GRANTED), no program runs and nothing is written ([C] skygroup.jp, evotec.xyz; the 0.2 s it
  takes is the twin's choice).
- **An execution policy set by Group Policy** (``execution_policy.MachinePolicy``: ``AllSigned`` or ``Restricted``)
  beats ``-ExecutionPolicy Bypass`` (about_Execution_Policies: the Group Policy scopes take precedence over Process); it
  governs script files, not commands, so a ``-File`` action ends with exit code 1 and writes nothing while an
  ``-EncodedCommand`` one runs (Restricted "permits individual commands, but does not allow scripts"). Not modelled:
  the modules such a policy may keep a command from loading.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.twin.state import HostState

SCRIPT = Path(__file__).resolve().parents[2] / "plugins/plugin_utils/_host/_ps1/_identity_run.ps1"
MODULE_CMDLETS = ("Get-ScheduledTask", "Get-ScheduledTaskInfo", "New-ScheduledTaskAction", "New-ScheduledTaskPrincipal",
                  "New-ScheduledTaskSettingsSet", "Register-ScheduledTask", "Start-ScheduledTask", "Stop-ScheduledTask",
                  "Unregister-ScheduledTask")
NOT_RECOGNIZED = ("The term '{}' is not recognized as the name of a cmdlet, function, script file, or operable "
                  "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
                  "and try again.")
SERVICE_ACCOUNT_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20")
LOGON_TYPE_NOT_GRANTED = 0x80070569
EXIT_CODE_ONE = 1
START_SECONDS = (2.0, 4.0)  # twin's choice: a cold powershell.exe started as another account
REFUSED_LOGON_SECONDS = 0.2  # twin's choice: the logon fails before any program starts
SCRIPT_FILE_POLICIES = ("AllSigned", "Restricted")


@dataclass(frozen=True)
class ScriptFacts:
    """What the host script does with Task Scheduler: the module's cmdlets it calls (in file order) and its action."""

    cmdlets: tuple[str, ...]
    action: str  # "-EncodedCommand" or "-File"


def _code(text: str) -> str:
    """The script without its comments: whole-line ``#`` comments and `` # ...`` at a line's end."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(re.sub(r"\s#\s.*$", "", line) for line in lines)


@functools.lru_cache(maxsize=4)
def script_facts(text: str | None = None) -> ScriptFacts:
    """The facts of ``_identity_run.ps1`` (or of ``text``, for a test of an older script)."""
    code = _code(SCRIPT.read_text(encoding="ascii") if text is None else text)
    found = sorted((match.start(), name) for name in MODULE_CMDLETS
                   for match in [re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", code)] if match)
    action = "-File" if re.search(r"-File\b", code) else "-EncodedCommand"
    return ScriptFacts(tuple(name for _at, name in found), action)


def missing_cmdlet_error(state: HostState, facts: ScriptFacts) -> str | None:
    """The CommandNotFoundException text of the first ScheduledTasks cmdlet, on a host whose class has no module."""
    if facts.cmdlets and not state.host_class.scheduled_tasks_module:
        return NOT_RECOGNIZED.format(facts.cmdlets[0])
    return None


def start_seconds(state: HostState) -> float:
    """How long Task Scheduler takes to start the task's program as the account (twin's choice, see above)."""
    fixed = (state.data.get("task_scheduler") or {}).get("start_ms")
    if isinstance(fixed, int) and fixed >= 0:
        return fixed / 1000
    return random.uniform(*START_SECONDS)


def refused_start(state: HostState, account: dict[str, Any], facts: ScriptFacts) -> tuple[int, float] | None:
    """(LastTaskResult, seconds until the task ends) for a task that ends without running the probe; None otherwise."""
    sid = account.get("sid")
    known = (state.data.get("accounts") or {}).get(sid) or {}
    if sid not in SERVICE_ACCOUNT_SIDS and known.get("batch_logon_right") is False:
        return LOGON_TYPE_NOT_GRANTED, REFUSED_LOGON_SECONDS
    policy = (state.data.get("execution_policy") or {}).get("MachinePolicy")
    if facts.action == "-File" and policy in SCRIPT_FILE_POLICIES:
        return EXIT_CODE_ONE, start_seconds(state)
    return None


__all__ = ["LOGON_TYPE_NOT_GRANTED", "MODULE_CMDLETS", "NOT_RECOGNIZED", "ScriptFacts", "missing_cmdlet_error",
           "refused_start", "script_facts", "start_seconds"]
