"""``%ProgramData%\\crlfix``, the identity runs' work folder, as the twin models it (tests/twin/README.md).

The state's optional ``work_folder`` is that folder when it exists (absent: it does not, a fresh host's case):
``{"owner": SID, "protected": bool, "acl": [{"sid", "rights"}], "reparse_target": path|null, "entries": {relative
path: content}}``. A junction's (``reparse_target``) entries are those of its target, the state's
``folders[<target>]``: the twin's file system holds nothing else. The checks mirror ``Get-CrlfixWorkFolderProblem``
(``_ps1/_identity_run.ps1``), each on its Windows ground:

- a junction or symbolic link is a reparse point and reading its attributes does not follow it (Microsoft Learn,
  "Symbolic Link Effects on File Systems Functions");
- an owner may always rewrite the DACL (Microsoft Learn, "Owner of a New Object": it implicitly has WRITE_DAC), so only
  SYSTEM, Administrators or the connecting admin may own it;
- a folder made in %ProgramData% by anyone inherits "Users: create files / create folders" from it, so only a protected
  DACL whose allowed entries are all SYSTEM and Administrators keeps others out.

A folder that fails stops the runs: nothing in it (or behind it) is read, run or deleted. One that is missing is
created for the runs (protected, SYSTEM and Administrators only) and removed again when it is empty, so a host keeps no
folder between two audits; the twin does both in memory. Leftover run folders (``id-*`` entries) of a trusted folder are
removed entry by entry, never through a link.
"""

from __future__ import annotations

from typing import Any

from tests.twin.state import HostState

PATH = "C:\\ProgramData\\crlfix"
TRUSTEES = ("S-1-5-18", "S-1-5-32-544")  # SYSTEM, Administrators


def problem(folder: dict[str, Any], caller_sid: str) -> str | None:
    """``Get-CrlfixWorkFolderProblem``: why this folder may not hold the results, or None (the script's own texts)."""
    if folder.get("reparse_target"):
        return "it is a reparse point (a junction or a symbolic link)"
    owner = folder.get("owner")
    if owner not in TRUSTEES and owner != caller_sid:
        return f"its owner is {owner}, not SYSTEM, Administrators or the connecting account"
    if not folder.get("protected"):
        return "it inherits its ACL from its parent, where Users may create files and folders"
    for entry in folder.get("acl") or []:
        if entry.get("sid") not in TRUSTEES:
            return f"its ACL allows {entry.get('sid')} {entry.get('rights')}"
    return None


def inspect(state: HostState, caller_sid: str) -> dict[str, Any]:
    """The part's ``work_folder`` before anything is done (``{path, existed, created, trusted, reason, removed,
    left}``)."""
    folder = state.data.get("work_folder")
    part: dict[str, Any] = {"path": PATH, "existed": folder is not None, "created": False, "trusted": None,
                            "reason": None, "removed": False, "left": []}
    if folder is not None:
        part["reason"] = problem(folder, caller_sid)
        part["trusted"] = part["reason"] is None
    return part


def remove_leftovers(state: HostState, part: dict[str, Any]) -> int:
    """The ``id-*`` run folders an aborted run left in a trusted folder, removed; how many."""
    if not part["trusted"]:
        return 0
    with state.lock:
        folder = state.data.get("work_folder") or {}
        entries = dict(folder.get("entries") or {})
        runs = {name.split("\\", 1)[0] for name in entries if name.split("\\", 1)[0].startswith("id-")}
        if runs:
            folder["entries"] = {name: content for name, content in entries.items()
                                 if name.split("\\", 1)[0] not in runs}
            state.save()
    return len(runs)


def create(part: dict[str, Any]) -> None:
    """``New-CrlfixProtectedFolder`` for the root, then its check: the twin's new folder passes it."""
    part.update(created=True, trusted=True, reason=None)


def close(state: HostState, part: dict[str, Any]) -> None:
    """``Close-CrlfixIdentityRuns``: the folder removed when it was trusted and is empty."""
    if not part["trusted"]:
        return
    if part["created"]:
        part["removed"] = True
        return
    with state.lock:
        folder = state.data.get("work_folder")
        if folder is not None and not folder.get("entries"):
            del state.data["work_folder"]
            state.save()
            part["removed"] = True


__all__ = ["PATH", "TRUSTEES", "close", "create", "inspect", "problem", "remove_leftovers"]
