"""``service_restart`` schema 1: restart the named services, then handshake with the host's own service.

Contract: docs/dev/host-scripts.md.

A named service the host has is stopped and started again (``ServiceController.Stop``/``Start`` with the script's
``WaitForStatus``): when it is the service behind the twin's 5061 listener, that is a new process with nothing in
memory (tests/twin/service_process.py). A name the host does not have fails as ``Get-Service`` does. The handshakes
are ``tls_probe``'s (the same engine, ``probe_all``).
"""

from __future__ import annotations

from typing import Any

from tests.twin import service_process
from tests.twin.scripts import ScriptContext, ScriptError, require
from tests.twin.scripts.tls_probe import probe_all

NAME = "service_restart"
SCHEMAS = {1}
BLOCKING = True  # handshakes and modelled retrieval waits: run in a worker thread
# Get-Service's error for a name the Service Control Manager does not know (Microsoft.PowerShell.Management).
NOT_FOUND = "Cannot find any service with service name '{name}'."


def _restart(ctx: ScriptContext, name: str) -> dict[str, Any]:
    services = {s["name"].casefold(): s for s in ctx.state.data.get("services") or []}
    service = services.get(name.casefold())
    if service is None:
        return {"name": name, "restarted": False, "state": None, "error": NOT_FOUND.format(name=name)}
    service_process.restart(ctx.state, service["name"])
    with ctx.state.lock:
        service["state"] = "Running"
        ctx.state.save()
    return {"name": name, "restarted": True, "state": "Running", "error": None}


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    names = require(args, "services", list)
    require(args, "wait_ms", int)
    tls = require(args, "tls", dict)
    if any(not isinstance(n, str) or not n for n in names):
        raise ScriptError(f"argument 'services': expected service names, got {names!r}")
    restarts = [_restart(ctx, name) for name in names]
    return {"services": restarts, "tls": probe_all(ctx, tls)}
