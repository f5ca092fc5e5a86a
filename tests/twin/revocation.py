"""The lab's revocation world as the twins see it: names, outbound policy, and each host's CryptoAPI settings.

One lab process hosts every twin, so the world (name map, intranet, lab directory) is process-wide and set
once by the lab server (``tests/lab/fleet/server.py``, from its ``fleet.json``) through ``configure``. What
differs per host lives in its state file and is read here on every use, so a test that edits the state sees
the effect at once:

- the WinHTTP proxy and bypass list: the **native** registry view. CryptoAPI in a 64-bit process (every
  Windows service that checks revocation: Lync, IIS/Exchange, LSASS for Schannel) reads the 64-bit key;
  only 32-bit processes read ``WOW6432Node`` (windows-facts.md, "The WinHTTP proxy value"). The collection's
  host scripts run in WinRM's 64-bit PowerShell, which sees the same native view.
- the retrieval timeouts: ``state["chain_engine"]`` holds the values of
  ``HKLM\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates\\ChainEngine\\Config``
  (``ChainUrlRetrievalTimeoutMilliseconds``, ``ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds``);
  absent means Windows' defaults, 15 s per URL and 20 s per chain (windows-facts.md, "How CryptoAPI fetches
  revocation data"). The lab fleet sets shorter ones so tests and the demo stay fast.
- the URL cache: ``state["url_cache"]``, a list of ``{"url": ..., <tests.lab.cryptoapi cache entry>}``,
  written through after every retrieval; ``certutil -urlcache * delete`` empties it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab.winhttp import OutboundPolicy, WinHttpProxy
from tests.twin import winhttp_value
from tests.twin.state import HostState

DEFAULT_URL_TIMEOUT_MS = 15000  # ChainUrlRetrievalTimeoutMilliseconds default
DEFAULT_CHAIN_TIMEOUT_MS = 20000  # ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds default
URL_TIMEOUT_VALUE = "ChainUrlRetrievalTimeoutMilliseconds"
CHAIN_TIMEOUT_VALUE = "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds"

# Set when the lab process stops: ends every modelled wait (dropped packets) at once, so no thread outlives it.
SHUTDOWN = threading.Event()


@dataclass
class World:
    """What every twin of one lab shares: the lab directory, the DNS, the firewall, the SIP-style TLS port."""

    lab_dir: Path | None = None
    names: dict[str, str] = field(default_factory=dict)
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    tls_port: int | None = None


_WORLD = World()


def configure(world: World) -> None:
    global _WORLD
    _WORLD = world


def world() -> World:
    return _WORLD


def state_lock(state: HostState) -> threading.RLock:
    return state.lock


def host_proxy(state: HostState) -> WinHttpProxy:
    """The machine WinHTTP proxy CryptoAPI uses: the native view; a missing or unreadable value is direct."""
    value = state.winhttp_value("native")
    if value is None:
        return WinHttpProxy()
    try:
        settings = winhttp_value.decode(value)
    except ValueError:
        return WinHttpProxy()  # WinHTTP ignores a value it cannot parse and goes direct
    if settings.is_direct:
        return WinHttpProxy()
    try:
        return WinHttpProxy(settings.proxy or None, settings.bypass or None)
    except ValueError:
        return WinHttpProxy()  # a proxy string WinHTTP cannot parse: modelled as no proxy


def retrieval_timeouts(state: HostState) -> tuple[float, float]:
    """(per URL, per chain) in seconds, from the host's ChainEngine\\Config policy values or the defaults."""
    config = state.data.get("chain_engine") or {}
    per_url = int(config.get(URL_TIMEOUT_VALUE, DEFAULT_URL_TIMEOUT_MS))
    chain = int(config.get(CHAIN_TIMEOUT_VALUE, DEFAULT_CHAIN_TIMEOUT_MS))
    return max(per_url, 1) / 1000, max(chain, 1) / 1000


def load_cache(state: HostState) -> dict[str, dict[str, Any]]:
    """The URL cache as ``tests.lab.cryptoapi`` wants it; entries without content (listing only) are skipped."""
    cache = {}
    for entry in state.data.get("url_cache", []):
        if entry.get("url") and entry.get("content_b64") and entry.get("next_update"):
            cache[entry["url"]] = {k: v for k, v in entry.items() if k != "url"}
    return cache


def merge_cache(state: HostState, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """Write back what one retrieval added or replaced (under the state lock, then to disk)."""
    changed = {url: entry for url, entry in after.items() if before.get(url) != entry}
    if not changed:
        return
    with state_lock(state):
        kept = [e for e in state.data.get("url_cache", []) if e.get("url") not in changed]
        state.data["url_cache"] = kept + [{"url": url, **entry} for url, entry in changed.items()]
        state.save()
