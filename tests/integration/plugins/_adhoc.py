"""Run one of the collection's modules against a lab twin with the real ``ansible`` (winrm connection), and
set up a twin's WinHTTP proxy by writing its state (the twin's own encoder, independent of the collection)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.lab.pki import PROFILE_LDAP_ONLY, leaf_profile
from tests.twin import winhttp_value


def run_module(lab, host: str, module: str, args: dict[str, Any], tree: Path, *extra: str) -> dict[str, Any]:
    """``ansible <host> -m crlfix.windows.<module> -a <json>``; returns the host's result document."""
    tree.mkdir(parents=True, exist_ok=True)
    result = lab.run_ansible(host, "-m", f"crlfix.windows.{module}", "-a", json.dumps(args), "--tree", str(tree),
                             *extra)
    doc = json.loads((tree / host).read_text())
    assert result.returncode == 0 and not doc.get("failed"), f"{result.stdout}\n{result.stderr}"
    return doc


def set_proxy(lab, host: str, proxy: str | None, bypass: str = "", url_cache: list | None = None) -> dict[str, Any]:
    """Reset the host to its seeded state, then give it ``proxy`` (None: direct access) in both views."""
    state = lab.reset_state(host)
    value = winhttp_value.encode(7, proxy or "", bypass if proxy else "")
    for view in ("native", "wow6432"):
        state["registry"][view]["WinHttpSettings"] = base64.b64encode(value).decode("ascii")
    state["url_cache"] = [] if url_cache is None else url_cache
    lab.write_state(host, state)
    return state


def http_profile_hosts(lab) -> list[str]:
    """Lab hosts whose leaf has HTTP CRL distribution points (tests/lab/README.md, leaf profiles)."""
    return sorted(name for name in lab.hosts if leaf_profile(name) != PROFILE_LDAP_ONLY)


def ldap_only_hosts(lab) -> list[str]:
    return sorted(name for name in lab.hosts if leaf_profile(name) == PROFILE_LDAP_ONLY)
