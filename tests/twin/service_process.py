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

State: ``state["service_process"]`` = ``{"name", "started", "session": null | {"proxy", "bypass"},
"memory_cache": {url: entry}, "offline": {url: {"since", "until", "failures"}}}``; absent means a process started
with the lab, holding nothing. Times are epoch seconds.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from tests.lab.winhttp import WinHttpProxy
from tests.twin import revocation
from tests.twin.state import HostState

FIRST_BACKOFF_S = 60.0
MAX_BACKOFF_S = 1800.0
FILETIME_EPOCH_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01


def process(state: HostState) -> dict[str, Any]:
    """The service process's state (created as a process that started with the lab, holding nothing)."""
    return state.data.setdefault("service_process", {"name": _listener_service(state), "started": time.time(),
                                                     "session": None, "memory_cache": {}, "offline": {}})


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
        state.data["service_process"] = {"name": proc["name"], "started": time.time(), "session": None,
                                         "memory_cache": {}, "offline": {}}
        state.bump("service_restarts")
        state.save()
    return True


__all__ = ["FIRST_BACKOFF_S", "MAX_BACKOFF_S", "prepare", "process", "record", "restart", "resync_time",
           "session_proxy"]
