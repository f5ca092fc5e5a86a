"""Accounts, services and CryptoAPI's proxy per identity on a twin (tests/twin/README.md, "Identities").

Windows behaviour modelled here, each from its source:

- CryptoAPI picks its proxy as the account the process runs as: the ``netsh winhttp`` value (native view), then
  that account's WinINet settings in ``HKU\\<SID>\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet
  Settings`` (the machine's ``HKLM`` ones when the ``ProxySettingsPerUser`` policy is 0), then WPAD when
  auto-detection is on, else direct (KB 2623724; identity-evidence-research.md §3).
- The order follows the host's class (``host_classes.proxy_order``): ``three_step`` (before Windows 10) discovers for
  an identity with no IE settings at all; ``automatic_proxy`` goes direct then (*inferred*: the KB names only the
  netsh value and the IE settings). Settings asking for auto-detection or a script are used before a manual server
  on both (KB step 3). WPAD itself (DHCP, DNS, the PAC) is ``wpad.py``; ``DisableWpad`` = 1 skips auto-detection.
- ``Win32_Service.StartName`` spells the built-ins ``LocalSystem``, ``NT AUTHORITY\\LocalService``,
  ``NT AUTHORITY\\NetworkService``; their SIDs are S-1-5-18/19/20 and ``NTAccount`` prints them
  ``NT AUTHORITY\\SYSTEM``, ``NT AUTHORITY\\LOCAL SERVICE``, ``NT AUTHORITY\\NETWORK SERVICE``
  (identity-evidence-research.md §1, §3).
- An unknown name fails as ``NTAccount.Translate`` does: "Some or all identity references could not be
  translated." (IdentityNotMappedException, .NET).

The connecting admin's WinINet settings are the state's ``ie_proxy`` (``{"proxy", "bypass"}``, ProxyEnable = 1),
as ``netsh winhttp import proxy source=ie`` has always read them; the service accounts' are ``accounts[<sid>].ie``.
"""

from __future__ import annotations

from typing import Any

from tests.lab.winhttp import WinHttpProxy
from tests.twin import host_classes, revocation, service_process, wpad
from tests.twin.state import BUILT_IN_ACCOUNTS as BUILT_IN
from tests.twin.state import HostState

SYSTEM_SID, LOCAL_SERVICE_SID, NETWORK_SERVICE_SID = "S-1-5-18", "S-1-5-19", "S-1-5-20"
START_NAME_SIDS = {"localsystem": SYSTEM_SID, "nt authority\\localservice": LOCAL_SERVICE_SID,
                   "nt authority\\networkservice": NETWORK_SERVICE_SID}
NOT_MAPPED = "Some or all identity references could not be translated."
# The connecting admin's SID (WindowsIdentity.GetCurrent().User), a local administrator of the twin.
CALLER_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
AUTO_DETECT = 0x08  # DefaultConnectionSettings flags byte (askie blog, identity-evidence-research.md §3)


def default_accounts() -> dict[str, dict[str, Any]]:
    """The built-in service accounts: profile hives loaded (S-1-5-18/19/20 normally are), no WinINet proxy."""
    return {sid: {"name": name, "hive_loaded": True, "ie": None, "url_cache": []} for sid, name in BUILT_IN.items()}


def accounts(state: HostState) -> dict[str, dict[str, Any]]:
    return state.data.get("accounts") or default_accounts()


def resolve(state: HostState, name: str) -> tuple[str, str]:
    """(sid, name as Windows prints it) of an account name or StartName; ValueError(NOT_MAPPED) when unknown."""
    sid = START_NAME_SIDS.get(name.casefold())
    table = accounts(state)
    if sid is None:
        sid = next((s for s, a in table.items() if a["name"].casefold() == name.casefold()), None)
    if sid is None or sid not in table:
        raise ValueError(NOT_MAPPED)
    return sid, table[sid]["name"]


def cryptoapi_agent(state: HostState) -> str:
    """``Microsoft-CryptoAPI/<NT version>`` of the host's build (6.1 on 7601, 6.2 on 9200, 6.3 on 9600, 10.0 on 10240+;
    the strings are practitioner knowledge, *unverified*), as ``Get-CrlfixCryptoApiAgent`` gives it."""
    build = state.os_build
    version = "6.1" if build < 9200 else "6.2" if build < 9600 else "6.3" if build < 10240 else "10.0"
    return f"Microsoft-CryptoAPI/{version}"


def caller_name(state: HostState) -> str:
    """The connecting account, as ``WindowsIdentity.GetCurrent().Name`` prints it (the lab's one WinRM user)."""
    user = (state.data.get("winrm", {}).get("users") or [{}])[0]
    return f"{user.get('domain') or state.data['hostname']}\\{user.get('user', 'ansible')}"


def caller_ie(state: HostState) -> dict[str, Any] | None:
    """The connecting admin's WinINet settings (``HKCU``) as registry values, from the state's ``ie_proxy``."""
    ie = state.data.get("ie_proxy")
    if not ie:
        return None
    return {"ProxyEnable": 1, "ProxyServer": ie.get("proxy"), "ProxyOverride": ie.get("bypass"), "AutoConfigURL": None,
            "AutoDetect": False}


def ie_of(state: HostState, sid: str | None) -> dict[str, Any] | None:
    """The WinINet settings CryptoAPI reads for an identity (None: the caller): per user, or the machine's."""
    policy = state.data.get("ie_policy") or {}
    if policy.get("per_user") is False:
        return policy.get("machine")
    if sid is None:
        return caller_ie(state)
    account = accounts(state).get(sid) or {}
    return account.get("ie") if account.get("hive_loaded", True) else None


def cryptoapi_proxy(state: HostState, sid: str | None = None) -> tuple[str, WinHttpProxy]:
    """(source, proxy) CryptoAPI uses as the identity ``sid`` (None: the connecting admin), in the order of the host's
    class (``host_classes.proxy_order``; KB 2623724, tests/twin/README.md "CryptoAPI's proxy order")."""
    netsh = revocation.host_proxy(state)
    if not netsh.is_direct:
        return "netsh", netsh
    order = host_classes.proxy_order(state.os_build)
    wpad_disabled = bool((state.data.get("wpad") or {}).get("disabled"))
    ie = ie_of(state, sid)
    if not ie:
        # KB step 3: no IE settings for the identity -> discovery; AUTOMATIC_PROXY names no such step (inferred: none).
        if order == host_classes.THREE_STEP and not wpad_disabled:
            return "wpad", wpad.ask(state, None, detect=True).winhttp_proxy()
        return "direct", WinHttpProxy()
    script = ie.get("AutoConfigURL") or None
    if ie.get("AutoDetect") and not wpad_disabled:
        found = wpad.ask(state, None, detect=True)
        # WinHttpGetProxyForUrl with both flags falls back to the script only when detection finds no PAC URL.
        if script is None or found.pac_url is not None:
            return "wpad", found.winhttp_proxy()
    if script is not None:
        return "ie", wpad.ask(state, str(script), detect=False).winhttp_proxy()
    if ie.get("ProxyEnable") == 1 and ie.get("ProxyServer"):
        try:
            return "ie", WinHttpProxy(ie["ProxyServer"], ie.get("ProxyOverride") or None)
        except ValueError:
            pass  # a proxy string WinHTTP cannot parse: falls through, as an unparsable netsh value does
    return "direct", WinHttpProxy()


def registry_values(ie: dict[str, Any] | None) -> dict[str, Any] | None:
    """The identities part's ``ie`` object (docs/dev/host-scripts.md) for WinINet registry values."""
    if ie is None:
        return None
    return {"proxy_enable": ie.get("ProxyEnable"), "proxy_server": ie.get("ProxyServer"),
            "proxy_override": ie.get("ProxyOverride"), "auto_config_url": ie.get("AutoConfigURL"),
            "connection_flags": 0x01 | (AUTO_DETECT if ie.get("AutoDetect") else 0) | (
                0x02 if ie.get("ProxyEnable") == 1 else 0)}


def identities_part(state: HostState, request: dict[str, Any]) -> dict[str, Any]:
    """``Get-CrlfixIdentitiesPart`` (``_ps1/_identity.ps1``): services, accounts, the caller, policy, WPAD."""
    names: list[str] = [str(n) for n in request.get("accounts") or []]
    services = []
    table = {s["name"].casefold(): s for s in state.data.get("services") or []}
    for name in request.get("services") or []:
        service = table.get(str(name).casefold())
        entry: dict[str, Any] = {"name": str(name), "found": service is not None, "start_name": None, "state": None,
                                 "account": None, "error": None, "process_id": None, "process_started": None,
                                 "process_error": None}
        if service is not None:
            entry.update(start_name=service["start_name"], state=service.get("state", "Running"))
            entry.update(service_process.process_fields(state, service["name"]))  # Get-CrlfixServiceProcess
            try:
                entry["account"] = resolve(state, service["start_name"])[1]
            except ValueError as exc:
                entry["error"] = str(exc)
            if request.get("accounts_from_services") and entry["account"] and entry["account"] not in names:
                names.append(entry["account"])
        services.append(entry)
    parts = []
    for name in dict.fromkeys(names):
        entry = {"name": name, "requested": name, "sid": None, "hive_loaded": False, "ie": None, "error": None}
        try:
            sid, printed = resolve(state, name)
        except ValueError as exc:
            entry["error"] = str(exc)
        else:
            account = accounts(state)[sid]
            entry.update(name=printed, sid=sid, hive_loaded=bool(account.get("hive_loaded", True)))
            if entry["hive_loaded"]:
                entry["ie"] = registry_values(account.get("ie"))
        parts.append(entry)
    policy = state.data.get("ie_policy") or {}
    return {
        "services": services,
        "accounts": parts,
        "caller": {"name": caller_name(state), "sid": CALLER_SID,
                   "hive_loaded": True, "ie": registry_values(caller_ie(state))},
        "per_user": policy.get("per_user") is not False,
        "machine_ie": registry_values(policy.get("machine")),
        "wpad_disabled": bool((state.data.get("wpad") or {}).get("disabled")),
    }
