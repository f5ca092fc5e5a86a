"""``service_restart`` schema 1: restart the named services, wait for the service's port, then handshake with it.

Contract: docs/dev/host-scripts.md.

A named service the host has is stopped and started again (``ServiceController.Stop``/``Start`` with the script's
``WaitForStatus``): when it is the service behind the twin's 5061 listener, that is a new process with nothing in
memory, which opens its port only ``service_process.LISTEN_DELAY_S`` after the Service Control Manager says Running
(tests/twin/service_process.py). A name the host does not have fails as ``Get-Service`` does. Then, as
``Wait-CrlfixListening`` does, the script connects to the host's own service every 500 ms until it accepts (at most
``listen_wait_ms``, default ``wait_ms``), and the handshakes are ``tls_probe``'s (the same engine, ``probe_all``).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from tests.lab.winhttp import resolve
from tests.twin import revocation, service_process
from tests.twin.scripts import ScriptContext, ScriptError, require
from tests.twin.scripts.tls_probe import REFUSED, probe_all

NAME = "service_restart"
SCHEMAS = {1}
BLOCKING = True  # handshakes and modelled retrieval waits: run in a worker thread
# Get-Service's error for a name the Service Control Manager does not know (Microsoft.PowerShell.Management).
NOT_FOUND = "Cannot find any service with service name '{name}'."
LISTEN_INTERVAL_S = 0.5  # the script's interval between connect attempts


def _restart(ctx: ScriptContext, name: str) -> dict[str, Any]:
    services = {s["name"].casefold(): s for s in ctx.state.data.get("services") or []}
    service = services.get(name.casefold())
    if service is None:
        return {"name": name, "restarted": False, "state": None, "error": NOT_FOUND.format(name=name)}
    service_process.restart(ctx.state, service["name"])
    with ctx.state.lock:
        service["state"] = "Running"  # the SCM says Running at once; the port may not listen yet
        ctx.state.save()
    return {"name": name, "restarted": True, "state": "Running", "error": None}


def wait_listening(host: str, port: int, wait_ms: int) -> dict[str, Any]:
    """``Wait-CrlfixListening``: real TCP connects to the service until one is accepted or ``wait_ms`` is over."""
    started = time.monotonic()
    address = resolve(host, revocation.world().names) or host
    result: dict[str, Any] = {"host": host, "port": port, "listening": False, "waited_ms": 0, "attempts": 0,
                              "error": None}
    while not result["listening"]:
        result["attempts"] += 1
        left = wait_ms / 1000 - (time.monotonic() - started)
        try:
            with socket.create_connection((address, port), timeout=max(0.001, min(5.0, left))):
                result.update(listening=True, error=None)
        except ConnectionRefusedError:
            result["error"] = REFUSED.format(address=address, port=port)
        except OSError:
            result["error"] = "The TCP connection timed out"
        if result["listening"] or (time.monotonic() - started) + LISTEN_INTERVAL_S >= wait_ms / 1000:
            break
        if revocation.SHUTDOWN.wait(LISTEN_INTERVAL_S):
            break
    result["waited_ms"] = int((time.monotonic() - started) * 1000)
    return result


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    names = require(args, "services", list)
    wait_ms = require(args, "wait_ms", int)
    tls = require(args, "tls", dict)
    if any(not isinstance(n, str) or not n for n in names):
        raise ScriptError(f"argument 'services': expected service names, got {names!r}")
    restarts = [_restart(ctx, name) for name in names]
    peers = tls.get("peers") or []
    listen = None
    if peers and isinstance(peers[0], dict):
        listen_wait_ms = require(args, "listen_wait_ms", int, wait_ms)
        listen = wait_listening(str(peers[0].get("host")), int(peers[0].get("port") or 0), listen_wait_ms)
    return {"services": restarts, "listen": listen, "tls": probe_all(ctx, tls)}
