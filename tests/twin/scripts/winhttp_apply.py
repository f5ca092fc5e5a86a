"""``winhttp_apply`` schemas 1 and 2: set/reset/import through the netsh of each view, or restore exact bytes.

Schema 2 adds ``expect_b64`` to every operation (compare and swap, docs/dev/host-scripts.md): all
expectations are checked against the registry before the first write; one mismatch and nothing is written,
the document lists the ``conflicts``. The twin's ``run`` is not told the header's schema, so it keys on the
arguments: an operation list carrying ``expect_b64`` is schema 2 (the controller sends it on every operation).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tests.twin import netsh
from tests.twin.scripts import ScriptContext, ScriptError, require
from tests.twin.scripts.winhttp_state import read_state

NAME = "winhttp_apply"
SCHEMAS = {1, 2}
ACTIONS = ("set", "reset", "import", "restore")
# [System.IO.Path]::Combine($env:windir, 'SysWOW64', 'netsh.exe') on the twin (windir C:\Windows).
WOW64_NETSH = "C:\\Windows\\SysWOW64\\netsh.exe"


def _validate(operations: list[Any], is_64bit: bool) -> None:
    for index, op in enumerate(operations):
        if not isinstance(op, dict):
            raise ScriptError(f"operations[{index}]: expected an object, got {op!r}")
        view = op.get("view")
        if view not in ("native", "wow6432") or (view == "wow6432" and not is_64bit):
            raise ScriptError(f"operations[{index}].view: unknown view {view!r}")
        action = op.get("action")
        if action not in ACTIONS:
            raise ScriptError(f"operations[{index}].action: unknown action {action!r}")
        if action == "set" and (not isinstance(op.get("proxy"), str) or not op["proxy"]):
            raise ScriptError(f"operations[{index}].proxy: expected a non-empty string, got {op.get('proxy')!r}")
        if action == "set" and not isinstance(op.get("bypass", ""), str):
            raise ScriptError(f"operations[{index}].bypass: expected a string, got {op.get('bypass')!r}")
        if action == "restore" and op.get("value_b64") is not None and not isinstance(op.get("value_b64"), str):
            raise ScriptError(f"operations[{index}].value_b64: expected a string or null, got {op.get('value_b64')!r}")
        if op.get("expect_b64") is not None and not isinstance(op["expect_b64"], str):
            raise ScriptError(f"operations[{index}].expect_b64: expected a string or null, got {op['expect_b64']!r}")


def _conflicts(ctx: ScriptContext, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every operation whose view no longer holds ``expect_b64``, as read now, before anything is written.

    Compared as base64 text, case-sensitively, as the PowerShell script does (``-cne``): base64 from
    ``[Convert]::ToBase64String`` is canonical, so equal bytes give equal text.
    """
    found_conflicts = []
    for op in operations:
        value = ctx.state.winhttp_value(op["view"])
        found = None if value is None else base64.b64encode(value).decode("ascii")
        if found != op.get("expect_b64"):
            found_conflicts.append({"view": op["view"], "expected_b64": op.get("expect_b64"), "found_b64": found})
    return found_conflicts


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    operations = require(args, "operations", list)
    _validate(operations, ctx.state.is_64bit)
    schema2 = any("expect_b64" in op for op in operations)
    conflicts = _conflicts(ctx, operations) if schema2 else []
    results: list[dict[str, Any]] = []
    for op in [] if conflicts else operations:
        view, action = op["view"], op["action"]
        if action in ("set", "reset", "import") and view == "wow6432" and not ctx.state.has_wow64:
            # _common.ps1 Invoke-CrlfixNativeCommand: a program that does not exist answers instead of erroring.
            rc, output = 1, f"{WOW64_NETSH} does not exist on this host"
        elif action == "set":
            netsh_args = ["winhttp", "set", "proxy", f"proxy-server={op['proxy']}"]
            if op.get("bypass"):
                netsh_args.append(f"bypass-list={op['bypass']}")
            res = netsh.run(ctx.state, netsh_args, view)
            rc, output = res.rc, res.stdout.replace("\n", "\r\n")
        elif action in ("reset", "import"):
            netsh_args = ["winhttp", action, "proxy"] + (["source=ie"] if action == "import" else [])
            res = netsh.run(ctx.state, netsh_args, view)
            rc, output = res.rc, res.stdout.replace("\n", "\r\n")
        else:
            rc, output = _restore(ctx, view, op.get("value_b64"))
        results.append({"view": view, "action": action, "rc": rc, "output": output})
        if rc != 0:
            break
    document = {"results": results, **read_state(ctx)}
    if schema2:
        document["conflicts"] = conflicts
    return document


def _restore(ctx: ScriptContext, view: str, value_b64: str | None) -> tuple[int, str]:
    if value_b64 is None:
        ctx.state.set_winhttp_value(view, None)
        return 0, ""
    try:
        value = base64.b64decode(value_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        return 1, f"Cannot convert value_b64 to bytes: {exc}"
    ctx.state.set_winhttp_value(view, value)
    return 0, ""
