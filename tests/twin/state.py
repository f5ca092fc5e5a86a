"""Per-host state of a twin: one JSON file, written through to disk before a command returns.

Schema (documented in tests/twin/README.md, "Host state"): see ``new_state`` for every key.
A twin that is killed and restarted loads the file back and so keeps what Windows would have kept.
New per-host data gets a key with its default in ``new_state`` and methods on ``HostState`` that change it
through ``save`` (the way the registry's ``set_winhttp_value`` does), so every change is on disk at once.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.twin.host_classes import HOST_CLASSES, HostClass, host_class

SCHEMA = 1
# One lock per state file: the lab's event loop (counters) and worker threads running host scripts (URL cache)
# both write it.
_LOCKS: dict[Path, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
VIEWS = ("native", "wow6432")
# The built-in service accounts' SIDs and names as NTAccount prints them; their profile hives are loaded and hold no
# WinINet proxy (identity-evidence-research.md §3; tests/twin/identities.py).
BUILT_IN_ACCOUNTS = {
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-19": "NT AUTHORITY\\LOCAL SERVICE",
    "S-1-5-20": "NT AUTHORITY\\NETWORK SERVICE",
}
# os.caption as the scripts read it: the registry's ProductName (HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion),
# without the "Microsoft " that WMI's Win32_OperatingSystem.Caption adds (docs/dev/host-scripts.md, winhttp_state).
OS_CAPTIONS = {build: known.caption for build, known in HOST_CLASSES.items()}


def new_state(
    inventory_name: str,
    *,
    os_build: int,
    user: str,
    password: str,
    native: bytes | None = None,
    wow6432: bytes | None = None,
    ie_proxy: dict[str, Any] | None = None,
    cert_stores: dict[str, list[dict[str, Any]]] | None = None,
    allow_unencrypted: bool = False,
    services: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A fresh state document for one host."""
    short = inventory_name.split(".", 1)[0]
    return {
        "schema": SCHEMA,
        "inventory_name": inventory_name,
        "hostname": short.upper(),
        "fqdn": inventory_name,
        "os": {"build": os_build, "caption": OS_CAPTIONS.get(os_build, "Windows Server"), "is_64bit": True},
        "registry": {
            "native": {"WinHttpSettings": _b64(native)},
            "wow6432": {"WinHttpSettings": _b64(wow6432)},
        },
        # The Connections key's last write time per view (RegQueryInfoKey's lpftLastWriteTime): the value was seeded
        # now, before the host boots and starts its services; every write through set_winhttp_value moves it.
        "registry_write_times": dict.fromkeys(VIEWS, utc_text()),
        "ie_proxy": ie_proxy,
        "cert_stores": cert_stores if cert_stores is not None else {"My": [], "CA": [], "Root": []},
        "url_cache": [],
        # Win32_Service entries {name, start_name, state}; accounts by SID {name, hive_loaded, ie,
        # url_cache}; the ProxySettingsPerUser policy and the machine's WinINet values; the DisableWpad switch.
        "services": services or [],
        "accounts": {sid: {"name": name, "hive_loaded": True, "ie": None, "url_cache": []}
                     for sid, name in BUILT_IN_ACCOUNTS.items()},
        "ie_policy": {"per_user": True, "machine": None},
        "wpad": {"disabled": False},
        "scheduled_tasks": [],  # tasks an aborted run left under \\crlfix\\ (identity_runs removes them)
        "winrm": {
            "AllowUnencrypted": allow_unencrypted,
            "Basic": True,
            "users": [{"domain": "", "user": user, "password": password}],
        },
        "counters": {"commands": 0, "netsh_writes": 0, "urlcache_deletes": 0, "scheduled_tasks": 0},
        # Event logs (tests/twin/event_logs.py): the logs every Windows Server has; CAPI2's is off by default.
        "event_logs": {"System": [], "Application": [], "Microsoft-Windows-CAPI2/Operational": []},
        "event_log_enabled": {"Microsoft-Windows-CAPI2/Operational": False},
    }


def utc_text(epoch: float | None = None) -> str:
    """A time as the host scripts write it (UTC, to the second; docs/dev/host-scripts.md)."""
    moment = dt.datetime.now(dt.UTC) if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


class HostState:
    """The state of one host, bound to its file; every mutation goes through ``save``."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path) -> HostState:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: state schema {data.get('schema')!r} is not {SCHEMA}")
        return cls(path, data)

    @property
    def lock(self) -> threading.RLock:
        """Hold it around a read-modify-write of ``data`` done off the event loop."""
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(self.path, threading.RLock())

    def save(self) -> None:
        """Atomic write (temp file + os.replace) so a killed lab never leaves half a file."""
        with self.lock:
            write_json_atomic(self.path, self.data)

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    # -- registry -------------------------------------------------------------------------------
    def winhttp_value(self, view: str) -> bytes | None:
        if view not in VIEWS:
            raise ValueError(f"registry view {view!r} is not one of {VIEWS}")
        raw = self.data["registry"][view]["WinHttpSettings"]
        return None if raw is None else base64.b64decode(raw)

    def set_winhttp_value(self, view: str, value: bytes | None) -> None:
        """Write (or delete, ``None``) the value; the key's last write time becomes now, as the registry keeps it."""
        if view not in VIEWS:
            raise ValueError(f"registry view {view!r} is not one of {VIEWS}")
        with self.lock:
            self.data["registry"][view]["WinHttpSettings"] = _b64(value)
            self.data.setdefault("registry_write_times", {})[view] = utc_text(self.epoch())
            self.save()

    def registry_write_time(self, view: str) -> str | None:
        """The Connections key's last write time of ``view`` (UTC text), or None when the state has none."""
        return (self.data.get("registry_write_times") or {}).get(view)

    # -- the host's clock --------------------------------------------------------------------------
    @property
    def clock_offset_s(self) -> float:
        """How far the host's clock is from the lab's (``clock_offset_s``, seconds, + ahead; absent: 0)."""
        return float(self.data.get("clock_offset_s") or 0)

    def epoch(self) -> float:
        """Now by the host's clock, as seconds since the epoch (``time.time()`` plus the offset)."""
        return time.time() + self.clock_offset_s

    def now(self) -> dt.datetime:
        """Now by the host's clock, aware UTC: what the host stamps and judges times with (its events, its
        registry, its fix marker, its chain engine's CRL validity)."""
        return dt.datetime.fromtimestamp(self.epoch(), dt.UTC)

    # -- misc -----------------------------------------------------------------------------------
    @property
    def os_build(self) -> int:
        return int(self.data["os"]["build"])

    @property
    def host_class(self) -> HostClass:
        """The host's class (tests/twin/host_classes.py): its build's, with ``os.overrides``."""
        return host_class(self.data["os"])

    @property
    def is_64bit(self) -> bool:
        return bool(self.data["os"]["is_64bit"])

    @property
    def has_wow64(self) -> bool:
        """Whether ``%windir%\\SysWOW64`` exists: ``os.wow64`` (Server Core can leave WoW64 out), else a 64-bit OS."""
        return bool(self.data["os"].get("wow64", self.is_64bit))

    def bump(self, counter: str, by: int = 1) -> None:
        counters = self.data.setdefault("counters", {})
        counters[counter] = int(counters.get(counter, 0)) + by
        self.save()


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
