"""The lab's service identities and the scenarios that a test seeds on one host.

Services per role, with the account each runs as (identity-evidence-research.md §1, fact 3): Lync Server 2010 runs
"all services and application pools … as Network Service" [D, Microsoft blog]; Exchange 2013 runs Transport as
Network Service and most others as LocalSystem [D]; AD FS runs as a domain account or a gMSA [D] (here a gMSA, which
needs no password to run a task as). The names are the products' service names; the lab keeps two per role.

Scenarios that are not in the seeded rotation (``plan.SCENARIOS``), so that adding one does not move which host
starts in which state: a test applies one to a host's state with :func:`apply_scenario` (``lab.scenario`` records
it) and ``write_state``.

- ``admin_ie_only``: netsh direct in both views; the connecting admin has a working IE proxy (``ie_proxy``); the
  service identities have none. CryptoAPI as the admin goes through the IE proxy (KB 2623724), as a service it goes
  direct and waits out its timeouts.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.twin import winhttp_value

GMSA_SID = "S-1-5-21-3623811015-3361044348-30300820-1105"
GMSA_NAME = "LAB\\gmsa-adfs$"
SERVICES: dict[str, list[dict[str, str]]] = {
    "lync_servers": [{"name": "RTCSRV", "start_name": "NT AUTHORITY\\NetworkService", "state": "Running"},
                     {"name": "RTCMEDSRV", "start_name": "NT AUTHORITY\\NetworkService", "state": "Running"}],
    "exchange_servers": [{"name": "MSExchangeTransport", "start_name": "NT AUTHORITY\\NetworkService",
                          "state": "Running"},
                         {"name": "MSExchangeIS", "start_name": "LocalSystem", "state": "Running"}],
    "adfs_servers": [{"name": "adfssrv", "start_name": GMSA_NAME, "state": "Running"}],
}
EXTRA_SCENARIOS = ("admin_ie_only",)


def seed_services(state: dict[str, Any], group: str) -> None:
    """Give a host its role's services, and the gMSA's account (profile loaded, no WinINet proxy) where one runs."""
    state["services"] = [dict(s) for s in SERVICES.get(group, [])]
    if any(s["start_name"] == GMSA_NAME for s in state["services"]):
        state["accounts"][GMSA_SID] = {"name": GMSA_NAME, "hive_loaded": True, "ie": None, "url_cache": []}


def service_names(group: str) -> list[str]:
    return [s["name"] for s in SERVICES.get(group, [])]


def apply_scenario(state: dict[str, Any], scenario: str, proxy: str) -> dict[str, Any]:
    """``state`` changed to start in ``scenario`` (one of EXTRA_SCENARIOS); ``proxy`` is the site's working proxy."""
    if scenario not in EXTRA_SCENARIOS:
        raise ValueError(f"scenario: expected one of {', '.join(EXTRA_SCENARIOS)}, got {scenario!r}")
    if scenario == "admin_ie_only":
        direct = winhttp_value.encode(0, "", "")
        for view in ("native", "wow6432"):
            state["registry"][view]["WinHttpSettings"] = _b64(direct)
        state["ie_proxy"] = {"proxy": proxy, "bypass": "<local>"}
        for account in state["accounts"].values():
            account["ie"] = None
    state.setdefault("lab", {})["scenario"] = scenario
    return state


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
