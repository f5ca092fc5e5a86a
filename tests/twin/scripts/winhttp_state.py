"""``winhttp_state`` schema 1: both WinHTTP registry views, OS, and `show advproxy` from build 20348.

With ``include_ie_proxy`` also ``ie_proxy``, the connecting user's IE settings as the script reads them from HKCU
(``ProxyEnable``/``ProxyServer``/``ProxyOverride``): the host's ``ie_proxy`` state (tests/twin/README.md, "Host
state": one set of IE settings per host, the lab's connecting user's); ``null`` there means none of the values exist.
"""

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
            # RegQueryInfoKey's last write time of the Connections key; null when the state holds none.
            "last_write": state.registry_write_time(view),
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


def ie_proxy(ctx: ScriptContext) -> dict[str, Any]:
    """The three HKCU values as ``Get-CrlfixInternetExplorerProxy`` answers them (null: the value does not exist)."""
    settings = ctx.state.data.get("ie_proxy")
    if not settings:
        return {"proxy_enable": None, "proxy_server": None, "proxy_override": None}
    proxy = settings.get("proxy") or ""
    # WinINet writes ProxyEnable 0 and keeps ProxyServer when the proxy is switched off; the twin's state has no
    # switch, so an empty proxy is "not enabled".
    return {"proxy_enable": 1 if proxy else 0, "proxy_server": proxy or None,
            "proxy_override": settings.get("bypass") or None}


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    document = read_state(ctx)
    if args.get("include_ie_proxy"):  # the script's Get-CrlfixArgument: any true value asks for it
        document["ie_proxy"] = ie_proxy(ctx)
    return document
