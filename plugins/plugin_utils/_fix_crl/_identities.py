# PRIVATE to the crlfix.windows collection; may change without notice.
"""Whose proof: the identities the host's services run as, and the proxy each one gets.

CryptoAPI fetches revocation data through WinHTTP and picks its proxy **as the account the process runs as**
(KB 2623724): the ``netsh winhttp`` value
first, then that account's WinINet (IE) settings (``HKU\\<SID>``, or the machine's when the
``ProxySettingsPerUser`` policy is 0), then WPAD when auto-detection is on, else direct. An admin connected over
WinRM with a working IE proxy can therefore pass a check that NETWORK SERVICE fails: that is the finding
``identity_path_differs``.

The host part (``_ps1/_identity.ps1``, docs/dev/host-scripts.md "host_audit", key ``identities``) only reads: the
named services' ``StartName``, each account's SID and WinINet values, the policy, the WPAD switch. Everything is
decided here, from that data and the native ``WinHttpSettings`` view the same command read.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._identity_runs import (
    DEADLINE_MS,
    missing_run_reason,
    run_fields,
    validate_deadline,
)

if t.TYPE_CHECKING:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import HostState

SYSTEM = "NT AUTHORITY\\SYSTEM"
LOCAL_SERVICE = "NT AUTHORITY\\LOCAL SERVICE"
NETWORK_SERVICE = "NT AUTHORITY\\NETWORK SERVICE"
# The built-in service accounts a scheduled task runs as with -LogonType ServiceAccount, no password
# (identity-evidence-research.md §1.1, TASK_LOGON_SERVICE_ACCOUNT).
SERVICE_ACCOUNT_SIDS = {"S-1-5-18": SYSTEM, "S-1-5-19": LOCAL_SERVICE, "S-1-5-20": NETWORK_SERVICE}
DEFAULT_IDENTITIES = (NETWORK_SERVICE, SYSTEM)
MAX_NAMES = 32
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.$@ -]{1,256}$")
_ACCOUNT_NAME = re.compile(r"^[^\x00-\x1f\"/\[\]:|<>+=;,?*]{1,256}$")  # no control characters nor the characters
# Windows forbids in account names (the backslash of DOMAIN\name is allowed)
# DefaultConnectionSettings byte 8: 0x08 auto-detect (identity-evidence-research.md §3, askie).
AUTO_DETECT = 0x08
SOURCES = ("netsh", "ie", "wpad", "direct")
NOT_DISCOVERED = "the host ran no WPAD discovery"
# KB 2623724: "In Windows 10, CAPI2 ... uses the WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY flag"; earlier releases used
# DEFAULT_PROXY and the KB's three steps. 10240 is Windows 10's first build (Server 2016 is 14393).
WINDOWS_10_BUILD = 10240
THREE_STEP, AUTOMATIC_PROXY = "three_step", "automatic_proxy"
# How long the host's WPAD discovery may take (DHCP, DNS, the PAC download); it runs beside the measurement.
WPAD_TIMEOUT_MS = 10000


def proxy_order(os_build: int | None) -> str:
    """CryptoAPI's proxy order on a build (KB 2623724): ``three_step`` before Windows 10, ``automatic_proxy`` from it.

    The twin's host classes publish the same split (tests/twin/host_classes.py). A build the audit could not read is
    taken as ``automatic_proxy``, the order of every supported release since Server 2016.
    """
    if isinstance(os_build, int) and os_build < WINDOWS_10_BUILD:
        return THREE_STEP
    return AUTOMATIC_PROXY


def wpad_args() -> dict[str, int]:
    """The host's WPAD discovery request: when an account without WinINet settings discovers (``three_step``, builds
    below ``unset_detects_below_build``) and how long discovery may take. The host asks only when some identity's path
    can reach WPAD (host-scripts.md, ``identities.wpad``); the order itself stays here (``proxy_order``)."""
    return {"timeout_ms": WPAD_TIMEOUT_MS, "unset_detects_below_build": WINDOWS_10_BUILD}


def validate_names(services: t.Sequence[t.Any], identities: t.Sequence[t.Any]) -> None:
    """Refuse a bad service or account name before anything runs; the message names the field and the value."""
    for field, names, pattern in (("services", services, _SERVICE_NAME), ("verify_identities", identities,
                                                                          _ACCOUNT_NAME)):
        if len(names) > MAX_NAMES:
            raise ValueError(f"{field}: at most {MAX_NAMES} names, got {len(names)}")
        for index, name in enumerate(names):
            if not isinstance(name, str) or not pattern.match(name) or name != name.strip():
                raise ValueError(f"{field}[{index}]: not a valid {'service' if field == 'services' else 'account'} "
                                 f"name: {name!r}")


def host_args(services: t.Sequence[str], identities: t.Sequence[str], *,
              chain: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The ``identities`` argument of host_audit: explicit accounts win; else the services' accounts; else the
    defaults (NETWORK SERVICE and SYSTEM). The host adds each named service's ``StartName`` to ``accounts``.

    ``chain`` (``{stores, purge_cache, resync, deadline_ms}``): build the chain of every certificate with a private key
    in ``stores`` as each runnable identity, through a one-shot scheduled task (``_identity_run.ps1``); None: not run.
    ``deadline_ms`` (default ``DEADLINE_MS``) is the runs' own deadline, never the measurement's time box; the host
    no longer reads a ``timeout_ms`` there.

    Raises:
        ValueError: ``deadline_ms`` is not an integer from 1000 to 300000.
    """
    accounts = list(identities) or ([] if services else list(DEFAULT_IDENTITIES))
    args = {"services": list(services), "accounts": accounts, "accounts_from_services": not identities,
            "wpad": wpad_args()}
    if chain is not None:
        args["chain"] = {**chain, "deadline_ms": validate_deadline(chain.get("deadline_ms", DEADLINE_MS))}
    return args


def needs_password(name: str, sid: str | None) -> str | None:
    """Why this account cannot be run as without a password, or None (a built-in service account or a gMSA)."""
    if sid in SERVICE_ACCOUNT_SIDS:
        return None
    if name.endswith("$"):
        return None  # a gMSA: -LogonType Password with no password (identity-evidence-research.md §1.1)
    return (f"{name} is neither a built-in service account nor a gMSA: running as it needs its password, which "
            "crlfix does not hold, so it is not run as and the host is not called verified for it")


def _discovered(wpad: t.Any, script: str | None) -> dict[str, t.Any]:
    """``{proxy, pac_url, error}`` the host's discovery gave: auto-detection (``script`` None) or one PAC URL.

    ``proxy`` null with ``error`` null: the PAC answered DIRECT; with an error (e.g. 12180, nothing discovered): no
    proxy, so the fetch goes direct (KB 2623724 step 3, "return 'no proxy' if the automatic proxy discovery fails").
    """
    found: t.Any = None
    if isinstance(wpad, t.Mapping) and not wpad.get("error"):
        found = wpad.get("auto_detect") if script is None else next(
            (s for s in wpad.get("scripts") or [] if isinstance(s, t.Mapping) and s.get("pac_url") == script), None)
    elif isinstance(wpad, t.Mapping):
        return {"proxy": None, "pac_url": script, "error": str(wpad["error"])}
    if not isinstance(found, t.Mapping):
        return {"proxy": None, "pac_url": script, "error": NOT_DISCOVERED}
    return {"proxy": found.get("proxy") or None, "pac_url": found.get("pac_url") or script, "error": found.get("error")}


def _ie_step(ie: t.Mapping[str, t.Any] | None, order: str, *, wpad_disabled: bool,
             wpad: t.Any) -> dict[str, t.Any] | None:
    """The steps after netsh (KB 2623724): the identity's WinINet settings and WPAD; None falls through to direct.

    - No settings at all (no key, or the hive not loaded): ``three_step`` discovers (step 3, "if the Internet Explorer
      proxy settings are not present for the executing user"); ``automatic_proxy`` goes direct (the KB names only the
      netsh value and the IE settings for it: that nothing else is tried is *inferred*).
    - Settings that ask for auto-detection or a script are used before a manual server (step 3: "if the Internet
      Explorer settings for the process identity indicate Automatically detect settings or Use automatic configuration
      script"); auto-detection is tried first, the script when it locates no PAC URL ("WinHTTP AutoProxy Functions");
      what discovery does not find is "no proxy". ``automatic_proxy`` reads the same IE configuration
      (WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY: "including the Internet Explorer proxy configuration"); that it ranks it
      the same way is *inferred*.
    - ``DisableWpad`` = 1 turns auto-detection off on either order.
    """
    if not ie:
        if order == THREE_STEP and not wpad_disabled:
            return {"source": "wpad", **_discovered(wpad, None)}
        return None
    script = str(ie.get("auto_config_url") or "").strip() or None
    flags = ie.get("connection_flags")
    if isinstance(flags, int) and flags & AUTO_DETECT and not wpad_disabled:
        found = _discovered(wpad, None)
        if script is None or found["pac_url"] is not None:  # the script only when detection found no PAC URL
            return {"source": "wpad", **found}
    if script is not None:
        found = _discovered(wpad, script)
        return {"source": "ie", "proxy": found["proxy"], "script": script, "error": found["error"]}
    server = str(ie.get("proxy_server") or "").strip()
    if ie.get("proxy_enable") == 1 and server:
        return {"source": "ie", "proxy": server}
    return None


def effective_proxy(state: HostState, ie: t.Mapping[str, t.Any] | None, *, wpad_disabled: bool,
                    wpad: t.Any = None) -> dict[str, t.Any]:
    """``{source, proxy}`` CryptoAPI uses as an identity with WinINet settings ``ie``, in the order of the host's build.

    The netsh value comes first on every order; the native view is the one 64-bit service processes read
    (windows-facts.md); a value that does not decode is ignored by WinHTTP, as the twin models it. ``wpad`` is the
    host's discovery (host-scripts.md, ``identities.wpad``); a WPAD or script path adds its ``pac_url``/``script`` and
    ``error``.
    """
    native = state.views.get("native")
    settings = native.settings if native is not None else None
    if settings is not None and native is not None and native.error is None and settings.mode == "proxy":
        return {"source": "netsh", "proxy": settings.proxy}
    found = _ie_step(ie, proxy_order(state.os_build), wpad_disabled=wpad_disabled, wpad=wpad)
    return found if found is not None else {"source": "direct", "proxy": None}


def _route(path: t.Mapping[str, t.Any]) -> tuple[str | None, ...]:
    """What a fetch on this path goes through: a proxy, direct, or unknown (the host ran no discovery)."""
    if path.get("proxy"):
        return ("proxy", str(path["proxy"]).casefold())
    if path.get("error") == NOT_DISCOVERED:
        return ("unknown", path["source"], path.get("script"))
    return ("direct",)


def path_text(path: t.Mapping[str, t.Any]) -> str:
    """A path in words, as findings name it."""
    if path["source"] == "direct":
        return "direct (no proxy)"
    if path.get("error") == NOT_DISCOVERED:
        what = f"script {path['script']} " if path.get("script") else ""
        return f"{path['source']} {what}(not discovered on the host)"
    what = f"script {path['script']} " if path.get("script") else ""
    if path.get("proxy"):
        return f"{path['source']} {what}{path['proxy']}"
    why = f" ({path['error']})" if path.get("error") else ""
    return f"{path['source']} {what}with no proxy found{why}, so direct"


def same_path(a: t.Mapping[str, t.Any], b: t.Mapping[str, t.Any]) -> bool:
    """Whether two paths go through the same proxy (or both direct, or both undiscovered the same way)."""
    return _route(a) == _route(b)


def intended_path(desired: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    """The path the inventory intends: the netsh proxy it sets, or direct."""
    if not desired:
        return None
    if desired.get("state") == "absent" or not desired.get("proxy"):
        return {"source": "direct", "proxy": None}
    return {"source": "netsh", "proxy": desired["proxy"]}


def summarise(part: t.Mapping[str, t.Any], state: HostState,
              ldap_only: t.Collection[str] = (),
              ) -> tuple[dict[str, dict[str, t.Any]], dict[str, t.Any] | None]:
    """(identities, the caller's path) from the host's ``identities`` part and the WinHTTP state.

    ``identities`` maps each account name as Windows prints it to the record's entry (roles/fix_crl/README.md,
    "The host record"); the measurement keys (``chain_ok``, ``chain_ms``, ``crl``, ``cache_purged``) stay null until
    a run as that identity fills them. ``chain_ok`` null always comes with ``not_run_reason`` (why the proof did not
    run as it, or did not decide: ``_identity_runs``), with ``run_outcome``, ``task_result`` and ``start_ms`` from
    the host's run. The findings are the path findings and ``work_folder_untrusted`` (the host refused its work
    folder: no run was made).

    Raises:
        ValueError: the part does not have the documented shape.
    """
    if not isinstance(part, t.Mapping) or not isinstance(part.get("accounts"), list):
        raise ValueError(f"identities: expected an object with an 'accounts' list, got {part!r:.120}")
    per_user = part.get("per_user") is not False
    machine_ie = part.get("machine_ie")
    wpad_disabled = part.get("wpad_disabled") is True
    wpad = part.get("wpad")
    services: dict[str, list[str]] = {}
    for service in part.get("services") or []:
        if isinstance(service, t.Mapping) and service.get("account"):
            services.setdefault(str(service["account"]), []).append(str(service.get("name")))
    identities: dict[str, dict[str, t.Any]] = {}
    for account in part["accounts"]:
        if not isinstance(account, t.Mapping) or not isinstance(account.get("name"), str):
            raise ValueError(f"identities.accounts: expected objects with a 'name', got {account!r:.120}")
        name, sid = account["name"], account.get("sid")
        ie = account.get("ie") if per_user else machine_ie
        password = needs_password(name, sid)
        runnable = password is None and account.get("error") is None
        identities[name] = {
            "sid": sid,
            "services": services.get(name, []),
            "profile_loaded": account.get("hive_loaded"),
            "effective_proxy": effective_proxy(state, ie, wpad_disabled=wpad_disabled, wpad=wpad),
            "runnable": runnable,
            "chain_ok": None, "chain_ms": None, "crl": [], "cache_purged": None,
            "error": account.get("error") or password,
            # Why chain_ok is null (null when it is not): the proof did not run as this identity, or did not decide.
            "not_run_reason": None if runnable else account.get("error") or password,
            "run_outcome": None, "task_result": None, "start_ms": None,
        }
        if runnable and isinstance(account.get("run"), t.Mapping):
            identities[name].update(run_fields(account["run"], ldap_only))
        elif runnable:
            identities[name]["not_run_reason"] = missing_run_reason(part)
    caller_part = part.get("caller")
    caller = None
    if isinstance(caller_part, t.Mapping) and caller_part.get("name"):
        ie = caller_part.get("ie") if per_user else machine_ie
        caller = {"name": str(caller_part["name"]), "sid": caller_part.get("sid"),
                  "effective_proxy": effective_proxy(state, ie, wpad_disabled=wpad_disabled, wpad=wpad)}
    return identities, caller


__all__ = ["AUTOMATIC_PROXY", "DEFAULT_IDENTITIES", "SERVICE_ACCOUNT_SIDS", "THREE_STEP", "effective_proxy",
           "host_args", "intended_path", "needs_password", "path_text", "proxy_order", "same_path", "summarise",
           "validate_names", "wpad_args"]
