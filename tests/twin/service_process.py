"""The one long-running service of a twin (the process behind its 5061 listener) and what it keeps in memory.

A service checks a peer's certificate in its own process, with what that process holds (tests/twin/README.md,
"The running service"). Modelled, each from its source:

- A **memory cache** per process: CRLs the process retrieved, kept until NextUpdate, lost when the process restarts
  (cryptoapi-research.md 1.4: "cleared only when the process restarts" [C]; identity-evidence-research.md §7 [D]).
- An **offline list** per process: a URL whose wire retrieval failed is offline until its back-off ends; until then
  a check that needs it fails at once, without waiting (cryptoapi-research.md 1.4 [C]; Microsoft publishes no
  figures). When the back-off ends the next check goes back to the wire. The twin's figures are its own choice:
  60 s after the first failure, doubling to 1800 s (the secondary summary's "up to about 30 min").
- ``ChainCacheResyncFiletime``: what the process cached or marked offline before that time is no longer valid
  (CERT_CHAIN_PARA ``pftCacheResync`` [D]). Whether a running engine re-reads the value is undocumented [—]; the twin
  reads it at every check (``state["chain_engine_resync"]``, written by ``identity_runs.resync``).
- Its **WinHTTP session**: a new default proxy applies to new sessions ([D] WinHttpSetDefaultProxyConfiguration);
  whether cryptnet in a running process opens a new one is undocumented [—]. The twin's services follow the current
  ``netsh winhttp`` value (the incident was mended with netsh alone), unless the state holds the session the process
  opened (``session``, seeded by the ``stale_service`` scenario): that one lasts until the process restarts.
- A **restart** (``Restart-Service``) is a new process: a new session, an empty memory cache and offline list.

- A **process id and start time**: the host's boot (``boot``, when the twin starts) starts every service, so each
  has a process that started then; a restart gives the listener's service a new process. ``process_fields`` answers
  what host_audit's services part reads (QueryServiceStatusEx's dwProcessId, GetProcessTimes' creation time), so the
  controller can set the process's start against the proxy value's last write (``registry_write_times``).
- **Listening after a restart**: the Service Control Manager reports a service Running as soon as it says so, before
  it has opened its ports. After a restart the 5061 listener is closed (the old process is gone) and opens again
  ``LISTEN_DELAY_S`` later (the twin's choice: a Lync front end takes longer, no figure is published).

State: ``state["service_process"]`` = ``{"name", "pid", "started", "session": null | {"proxy", "bypass"},
"memory_cache": {url: entry}, "offline": {url: {"since", "until", "failures"}}}``; ``state["booted"]`` the host's boot.
Absent means a process started with the lab, holding nothing. Times are epoch seconds.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

from tests.lab.winhttp import WinHttpProxy
from tests.twin import revocation
from tests.twin.state import HostState, utc_text

FIRST_BACKOFF_S = 60.0
MAX_BACKOFF_S = 1800.0
FILETIME_EPOCH_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01
LISTEN_DELAY_S = 3.0
# Who is told when a host's service restarts (the twin closes its listener and opens it again): state path -> callback.
_RESTART_WATCHERS: dict[Any, Callable[[float], None]] = {}


def _fresh(name: str | None, started: float) -> dict[str, Any]:
    # Windows process ids are multiples of 4; which one is the twin's choice.
    return {"name": name, "pid": 4 * random.randrange(250, 16000), "started": started, "session": None,
            "memory_cache": {}, "offline": {}}


def process(state: HostState) -> dict[str, Any]:
    """The service process's state (created as a process that started with the lab, holding nothing)."""
    return state.data.setdefault("service_process", _fresh(_listener_service(state), state.data.get("booted")
                                                           or time.time()))


def new_process(data: dict[str, Any], started: float) -> dict[str, Any]:
    """A state's ``service_process`` for a process of its listener's service that started at ``started``."""
    services = data.get("services") or []
    return _fresh(services[0]["name"] if services else None, started)


def boot(state: HostState, now: float | None = None) -> None:
    """The host boots (the twin starts): every service starts a new process, holding nothing."""
    now = time.time() if now is None else now
    with state.lock:
        state.data["booted"] = now
        state.data["service_process"] = _fresh(_listener_service(state), now)
        state.save()


def process_fields(state: HostState, name: str) -> dict[str, Any]:
    """``process_id``, ``process_started`` (UTC text), ``process_error`` of a service, as host_audit reads them: the
    listener's service from its process; another running service from the boot; a stopped one has no process."""
    service = next((s for s in state.data.get("services") or [] if s["name"].casefold() == name.casefold()), None)
    if service is None or service.get("state", "Running") != "Running":
        return {"process_id": None, "process_started": None, "process_error": None}
    proc = process(state)
    if proc.get("name") is not None and proc["name"].casefold() == name.casefold():
        return {"process_id": proc.get("pid"), "process_started": utc_text(proc["started"] + state.clock_offset_s),
                "process_error": None}
    started = state.data.get("booted") or proc["started"]
    pid = 4 * (250 + int(hashlib.sha256(name.casefold().encode()).hexdigest(), 16) % 15000)
    # Kept on the lab's clock (back-offs compare them with it); reported by the host's, as Windows stamps them.
    return {"process_id": pid, "process_started": utc_text(started + state.clock_offset_s), "process_error": None}


def watch_restarts(state: HostState, callback: Callable[[float], None] | None) -> None:
    """Tell ``callback(delay_s)`` when the host's listener service restarts (None: stop telling)."""
    if callback is None:
        _RESTART_WATCHERS.pop(state.path, None)
    else:
        _RESTART_WATCHERS[state.path] = callback


def _listener_service(state: HostState) -> str | None:
    """The service behind the listener: the host's first service (RTCSRV on a Lync front end), if it has one."""
    services = state.data.get("services") or []
    return services[0]["name"] if services else None


def resync_time(state: HostState) -> float:
    """``ChainCacheResyncFiletime`` as epoch seconds (0 when never written)."""
    value = state.data.get("chain_engine_resync")
    if not value:
        return 0.0
    filetime = int.from_bytes(base64.b64decode(value), "little")
    return filetime / 10_000_000 - FILETIME_EPOCH_OFFSET


def session_proxy(state: HostState) -> WinHttpProxy:
    """The proxy the process's retrievals use: the session it holds, else the current netsh value."""
    session = process(state).get("session")
    if session is None:
        return revocation.host_proxy(state)
    try:
        return WinHttpProxy(session.get("proxy") or None, session.get("bypass") or None)
    except ValueError:
        return WinHttpProxy()


def prepare(state: HostState, now: float | None = None) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """(the cache a check starts from, the URLs that fail at once) for one check by the service.

    The cache is the host's disk cache overlaid with the process's memory cache; a URL the process holds as offline
    is left out of it (its next attempt is a wire retrieval, when the back-off ends). Entries older than the last
    resync are dropped first.
    """
    now = time.time() if now is None else now
    proc = process(state)
    since = resync_time(state)
    with state.lock:
        proc["memory_cache"] = {u: e for u, e in proc.get("memory_cache", {}).items() if e.get("stored", 0) >= since}
        proc["offline"] = {u: e for u, e in proc.get("offline", {}).items() if e.get("since", 0) >= since}
    offline = set(proc["offline"])
    cache = {u: e for u, e in revocation.load_cache(state).items() if u not in offline}
    cache.update({u: {k: v for k, v in e.items() if k != "stored"} for u, e in proc["memory_cache"].items()})
    failing = {u for u, e in proc["offline"].items() if e.get("until", 0) > now}
    for url in failing:
        cache.pop(url, None)
    return cache, failing


def record(state: HostState, before: dict[str, Any], after: dict[str, Any], retrievals: list[dict[str, Any]],
           now: float | None = None) -> None:
    """After a check: what the process retrieved goes to its memory cache; what failed on the wire to the offline
    list with a longer back-off; a success clears the URL's offline entry."""
    now = time.time() if now is None else now
    proc = process(state)
    with state.lock:
        for url, entry in after.items():
            if before.get(url) != entry:
                proc["memory_cache"][url] = {**entry, "stored": now}
                proc["offline"].pop(url, None)
        for attempt in retrievals:
            url = attempt.get("url")
            if not url or attempt.get("from_cache") or attempt.get("offline_list"):
                continue
            if attempt.get("http_status") != 200 or attempt.get("error"):
                previous = proc["offline"].get(url) or {}
                failures = int(previous.get("failures", 0)) + 1
                backoff = min(FIRST_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S)
                proc["offline"][url] = {"since": now, "until": now + backoff, "failures": failures}
        state.save()


def restart(state: HostState, name: str) -> bool:
    """``Restart-Service`` of ``name``: True when it is the listener's service (a new process), else False."""
    proc = process(state)
    if proc.get("name") is None or proc["name"].casefold() != name.casefold():
        return False
    with state.lock:
        state.data["service_process"] = _fresh(proc["name"], time.time())
        state.bump("service_restarts")
        state.save()
    watcher = _RESTART_WATCHERS.get(state.path)
    if watcher is not None:
        watcher(LISTEN_DELAY_S)  # the old process's port is gone; the new one listens only after it has started
    return True


__all__ = ["FIRST_BACKOFF_S", "LISTEN_DELAY_S", "MAX_BACKOFF_S", "boot", "prepare", "process", "process_fields",
           "new_process", "record", "restart", "resync_time", "session_proxy", "watch_restarts"]
