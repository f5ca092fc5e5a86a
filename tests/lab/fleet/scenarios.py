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
- ``stale_service``: netsh holds the site's proxy in both views (set by hand, say, as in the incident), but the running
  service (tests/twin/service_process.py) still holds the WinHTTP session it opened when netsh was direct and an
  offline entry for each CRL URL of the host's certificates whose back-off has run out: its next check goes to the
  wire, direct, and waits out its timeouts. A fresh process (the audit, a task as NETWORK SERVICE) goes through the
  proxy. Only a restart of the service (or a resync, for the offline entries) clears it.
- ``wpad_identity``: netsh direct; the service identities have "Automatically detect settings" on and no proxy, so
  CryptoAPI as them takes the WPAD path (``source: wpad``); in the lab that finds nothing (no DHCP, no wpad name) and
  goes direct, unless the test gives the host a PAC through DHCP option 252.
- ``ua_restricted``: its site's proxy lets only CryptoAPI's own agent through (``Microsoft-CryptoAPI/*``; 403 for any
  other: squid's ``127.0.0.2`` listener, tests/lab/squid.py ``AGENT_FILTERS``), and the host already uses it in both
  views. The ACL belongs to the proxy: a test runs the host with ``fix_crl_proxy`` set to that proxy
  (:func:`ua_restricted_proxy`), as the site's group variable would name it for every host of the site.

The identity runs' scenarios (tests/twin/task_scheduler.py, tests/twin/work_folder.py):

- ``planted_work_folder``: a local user (not an administrator) created ``%ProgramData%\\crlfix`` before any audit, so
  they own it and it inherits ProgramData's ACL (Users may create files and folders), and put in it a script and a
  forged result. The host must refuse it (``work_folder_untrusted``), make no task and leave all of it as it is.
- ``planted_junction``: the same user made ``%ProgramData%\\crlfix`` a junction to another folder (``folders`` in the
  state), whose content, a folder named like a leftover run among it, must stay untouched: nothing deleted through it.
- ``gmsa_no_batch_right``: the AD FS gMSA lacks "Log on as a batch job" on this host: its task ends with 0x80070569 and
  writes nothing (an ``adfs_servers`` host: the only role that runs a gMSA).
- ``gpo_execution_policy``: Group Policy sets the execution policy to AllSigned (MachinePolicy), which beats
  ``-ExecutionPolicy Bypass`` for a script file; a probe sent as ``-EncodedCommand`` is not a script file.
- ``slow_task_start``: Task Scheduler takes 40 s to start a task's powershell.exe (a loaded host), longer than the runs'
  default deadline of 30 s: every identity's proof is late, which proves nothing either way.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from cryptography import x509

from tests.lab.squid import CRYPTOAPI_ONLY_ADDRESS, filtered_proxy
from tests.twin import winhttp_value
from tests.twin.state import utc_text

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
EXTRA_SCENARIOS = ("admin_ie_only", "stale_service", "wpad_identity", "ua_restricted", "planted_work_folder",
                   "planted_junction", "gmsa_no_batch_right", "gpo_execution_policy", "slow_task_start")
# A local user of the host who is not an administrator (the one who plants the work folder), and what a folder they
# create in %ProgramData% inherits from it (Windows Server's ProgramData ACL: SYSTEM and Administrators full control,
# CREATOR OWNER full control on what is made inside, Users read and create files and folders).
PLANTING_USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1003"
INHERITED_ACL = [{"sid": "S-1-5-18", "rights": "FullControl"}, {"sid": "S-1-5-32-544", "rights": "FullControl"},
                 {"sid": PLANTING_USER_SID, "rights": "FullControl"},
                 {"sid": "S-1-5-32-545", "rights": "ReadAndExecute, Synchronize"},
                 {"sid": "S-1-5-32-545", "rights": "AppendData, CreateFiles, Synchronize"}]
JUNCTION_TARGET = "C:\\ProgramData\\Contoso\\Backups"
SLOW_TASK_START_MS = 40000


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
            _seed_view(state, view, direct)
        state["ie_proxy"] = {"proxy": proxy, "bypass": "<local>"}
        for account in state["accounts"].values():
            account["ie"] = None
    if scenario == "stale_service":
        # As on Windows, the running service's process is older than the proxy value: it started an hour ago, when
        # netsh was direct, and the value was written now (the Connections key's last write time, RegQueryInfoKey).
        now = time.time()
        fixed = winhttp_value.encode(0, proxy, "")
        for view in ("native", "wow6432"):
            _seed_view(state, view, fixed, written=now)
        offline = {url: {"since": now - 120, "until": now - 60, "failures": 1} for url in _crl_urls(state)}
        state["service_process"] = {"name": (state.get("services") or [{}])[0].get("name"), "pid": 4 * 1234,
                                    "started": now - 3600, "session": {"proxy": "", "bypass": ""},
                                    "memory_cache": {}, "offline": offline}
    if scenario == "wpad_identity":
        # netsh direct; every service account's IE settings say "Automatically detect settings" and nothing else
        # (DefaultConnectionSettings flags 0x09, a fresh profile's default): CryptoAPI as it discovers (KB 2623724
        # step 3). The lab runs no DHCP and names no wpad.lab.test, so discovery finds nothing until a test gives the
        # host a DHCP option 252 (state wpad.dhcp_url) that names a PAC (tests/twin/wpad.py).
        direct = winhttp_value.encode(0, "", "")
        for view in ("native", "wow6432"):
            _seed_view(state, view, direct)
        for account in state["accounts"].values():
            account["ie"] = {"ProxyEnable": 0, "ProxyServer": None, "ProxyOverride": None, "AutoConfigURL": None,
                             "AutoDetect": True}
    if scenario == "ua_restricted":
        restricted = winhttp_value.encode(0, ua_restricted_proxy(proxy), "")
        for view in ("native", "wow6432"):
            _seed_view(state, view, restricted)
    _apply_identity_run_scenario(state, scenario)
    state.setdefault("lab", {})["scenario"] = scenario
    return state


def _seed_view(state: dict[str, Any], view: str, value: bytes, written: float | None = None) -> None:
    """The view's ``WinHttpSettings`` as the scenario starts with it, and its key's last write time: ``written``, or
    (a starting state, which the host had before its services started) a minute before its service process started."""
    state["registry"][view]["WinHttpSettings"] = _b64(value)
    if written is None:
        written = ((state.get("service_process") or {}).get("started") or time.time()) - 60
    state.setdefault("registry_write_times", {})[view] = utc_text(written)


def _apply_identity_run_scenario(state: dict[str, Any], scenario: str) -> None:
    """The identity runs' scenarios (module docstring)."""
    if scenario == "planted_work_folder":
        state["work_folder"] = {
            "owner": PLANTING_USER_SID, "protected": False, "acl": [dict(e) for e in INHERITED_ACL],
            "reparse_target": None,
            "entries": {"probe.ps1": "Add-LocalGroupMember -Group Administrators -Member lab-user",
                        "id-00000000000000000000000000000001\\result.json": '{"purge":null,"chains":[],"error":null}'}}
    if scenario == "planted_junction":
        state["work_folder"] = {"owner": PLANTING_USER_SID, "protected": False, "acl": [], "entries": {},
                                "reparse_target": JUNCTION_TARGET}
        state["folders"] = {JUNCTION_TARGET: {"id-weekly\\orders.bak": "the weekly backup", "README.txt": "keep"}}
    if scenario == "gmsa_no_batch_right":
        if GMSA_SID not in state.get("accounts", {}):
            raise ValueError("scenario gmsa_no_batch_right: the host runs no gMSA service (an adfs_servers host does)")
        state["accounts"][GMSA_SID]["batch_logon_right"] = False
    if scenario == "gpo_execution_policy":
        state["execution_policy"] = {"MachinePolicy": "AllSigned"}
    if scenario == "slow_task_start":
        state["task_scheduler"] = {"start_ms": SLOW_TASK_START_MS}


def _crl_urls(state: dict[str, Any]) -> list[str]:
    """The HTTP CRL URLs of the certificates in the host's My and CA stores (what its service checks first)."""
    urls: list[str] = []
    for store in ("My", "CA"):
        for entry in state.get("cert_stores", {}).get(store, []):
            cert = x509.load_der_x509_certificate(base64.b64decode(entry["der_b64"]))
            try:
                points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            except x509.ExtensionNotFound:
                continue
            urls += [n.value for p in points for n in p.full_name or [] if isinstance(n, x509.UniformResourceIdentifier)
                     and n.value.startswith("http") and n.value not in urls]
    return urls


def ua_restricted_proxy(proxy: str) -> str:
    """The ``ua_restricted`` site's proxy: the agent-filtering listener of the squid whose own proxy is ``proxy``."""
    return filtered_proxy(proxy, CRYPTOAPI_ONLY_ADDRESS)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
