"""``winhttp_state`` schema 1: both WinHTTP registry views, OS, and `show advproxy` from build 20348."""

from __future__ import annotations

import base64
from typing import Any

from tests.twin import netsh
from tests.twin.scripts import ScriptContext

NAME = "winhttp_state"
SCHEMAS = {1}
PATHS = {
    "native": "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections",
    "wow6432": "HKLM:\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections",
}


def read_state(ctx: ScriptContext) -> dict[str, Any]:
    """The keys of a winhttp_state document after ``script``/``schema``; reused by winhttp_apply/cert_inventory."""
    state = ctx.state
    views: dict[str, Any] = {}
    for view in ("native", "wow6432"):
        if view == "wow6432" and not state.is_64bit:
            views[view] = None
            continue
        value = state.winhttp_value(view)
        views[view] = {
            "path": PATHS[view],
            "present": value is not None,
            "value_b64": None if value is None else base64.b64encode(value).decode("ascii"),
        }
    advproxy = None
    if state.os_build >= netsh.ADVPROXY_MIN_BUILD:
        result = netsh.run(state, ["winhttp", "show", "advproxy"], "native")
        advproxy = {"rc": result.rc, "output": result.stdout.replace("\n", "\r\n")}
    return {
        "computer_name": state.data["hostname"],
        "os": dict(state.data["os"]),
        "views": views,
        "advproxy": advproxy,
    }


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    return read_state(ctx)
