"""``winhttp_apply`` schema 1: set/reset through the netsh of each view, or restore exact bytes."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tests.twin import netsh
from tests.twin.scripts import ScriptContext, ScriptError, require
from tests.twin.scripts.winhttp_state import read_state

NAME = "winhttp_apply"
SCHEMAS = {1}
ACTIONS = ("set", "reset", "restore")


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


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    operations = require(args, "operations", list)
    _validate(operations, ctx.state.is_64bit)
    results: list[dict[str, Any]] = []
    for op in operations:
        view, action = op["view"], op["action"]
        if action == "set":
            netsh_args = ["winhttp", "set", "proxy", f"proxy-server={op['proxy']}"]
            if op.get("bypass"):
                netsh_args.append(f"bypass-list={op['bypass']}")
            res = netsh.run(ctx.state, netsh_args, view)
            rc, output = res.rc, res.stdout.replace("\n", "\r\n")
        elif action == "reset":
            res = netsh.run(ctx.state, ["winhttp", "reset", "proxy"], view)
            rc, output = res.rc, res.stdout.replace("\n", "\r\n")
        else:
            rc, output = _restore(ctx, view, op.get("value_b64"))
        results.append({"view": view, "action": action, "rc": rc, "output": output})
        if rc != 0:
            break
    return {"results": results, **read_state(ctx)}


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
