# PRIVATE to the crlfix.windows collection; may change without notice.
"""Whose proof: the identities the host's services run as, and the proxy each one gets.

CryptoAPI fetches revocation data through WinHTTP and picks its proxy **as the account the process runs as**
(KB 2623724; ../shared/windows-facts.md, "How CryptoAPI fetches revocation data"): the ``netsh winhttp`` value
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

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._findings import (
    IDENTITY_PATH_DIFFERS,
    Finding,
    add_finding,
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


def proxy_order(os_build: int | None) -> tuple[str, ...]:
    """CryptoAPI's proxy order on a build: the hook the twin's host classes table feeds.

    KB 2623724: before Windows 10 three steps with ``WINHTTP_ACCESS_TYPE_DEFAULT_PROXY`` (netsh, the identity's IE
    settings, WPAD); Windows 10 / Server 2016+ ``AUTOMATIC_PROXY`` (netsh default first, then IE settings, which
    include auto-detection). Both put the same sources in the same order; only how a failing source falls through
    differs, which the registry alone cannot show.
    """
    del os_build  # one order for every class until a source shows a class that differs
    return ("netsh", "ie", "wpad")


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

    ``chain`` (``{stores, timeout_ms, purge_cache}``): build the chain of every certificate with a private key in
    ``stores`` as each runnable identity, through a one-shot scheduled task (``_identity_run.ps1``); None: not run.
    """
    accounts = list(identities) or ([] if services else list(DEFAULT_IDENTITIES))
    args = {"services": list(services), "accounts": accounts, "accounts_from_services": not identities}
    if chain is not None:
        args["chain"] = dict(chain)
    return args


def _run_fields(run: t.Any, ldap_only: t.Collection[str] = ()) -> dict[str, t.Any]:
    """``chain_ok``, ``chain_ms``, ``crl``, ``cache_purged`` and ``error`` from one identity's task result.

    A certificate whose CRLs are published over LDAP only (``ldap_only``, by thumbprint) is listed but not judged:
    no HTTP proxy carries LDAP (the role's ``flags.ldap_only`` finding), so its chain says nothing about the path.
    """
    if not isinstance(run, t.Mapping):
        return {}
    purge = run.get("purge")
    fields: dict[str, t.Any] = {
        "cache_purged": None if purge is None else isinstance(purge, t.Mapping) and purge.get("rc") == 0,
        "crl": [], "chain_ms": None, "chain_ok": None, "error": None}
    if run.get("error"):
        return {**fields, "chain_ok": False, "error": f"the chain built as this identity: {run['error']}"}
    task_result = run.get("task_result")
    if task_result not in (0, None):
        return {**fields, "chain_ok": False, "error": f"the scheduled task ended with 0x{int(task_result):08X}"}
    chains = [c for c in run.get("chains") or [] if isinstance(c, t.Mapping)]
    skipped = {str(thumbprint).upper() for thumbprint in ldap_only}
    fields["crl"] = [{"thumbprint": c.get("thumbprint"), "subject": c.get("subject"), "elapsed_ms": c.get("elapsed_ms"),
                      "status": list(c.get("status") or []), "elements": list(c.get("elements") or []),
                      "error": c.get("error"), "ldap_only": str(c.get("thumbprint")).upper() in skipped}
                     for c in chains]
    chains = [c for c in chains if str(c.get("thumbprint")).upper() not in skipped]
    times = [c["elapsed_ms"] for c in chains if isinstance(c.get("elapsed_ms"), int)]
    fields["chain_ms"] = max(times) if times else None
    if chains:
        fields["chain_ok"] = all(not c.get("status") and not c.get("error") for c in chains)
        bad = [c for c in chains if c.get("status") or c.get("error")]
        if bad:
            first = bad[0]
            fields["error"] = (f"chain of {first.get('subject') or first.get('thumbprint')}: "
                               f"{first.get('error') or ', '.join(first['status'])}")
    return fields


def chain_failures(identities: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[str]:
    """One text per identity whose chain failed (the proof as that account does not pass)."""
    out = []
    for name, entry in identities.items():
        if entry.get("chain_ok") is False:
            took = f" after {entry['chain_ms']} ms" if entry.get("chain_ms") is not None else ""
            out.append(f"as {name}{took}: {entry.get('error') or 'the chain fails'}")
    return out


def needs_password(name: str, sid: str | None) -> str | None:
    """Why this account cannot be run as without a password, or None (a built-in service account or a gMSA)."""
    if sid in SERVICE_ACCOUNT_SIDS:
        return None
    if name.endswith("$"):
        return None  # a gMSA: -LogonType Password with no password (identity-evidence-research.md §1.1)
    return (f"{name} is neither a built-in service account nor a gMSA: running as it needs its password, which "
            "crlfix does not hold, so it is not run as and the host is not called verified for it")


def _ie_proxy(ie: t.Mapping[str, t.Any] | None, *, wpad_disabled: bool) -> dict[str, t.Any] | None:
    """The step of an identity's WinINet settings: a manual proxy, a script, WPAD, or None (falls through)."""
    if not ie:
        return None
    server = str(ie.get("proxy_server") or "").strip()
    if ie.get("proxy_enable") == 1 and server:
        return {"source": "ie", "proxy": server}
    if ie.get("auto_config_url"):
        return {"source": "ie", "proxy": None, "script": str(ie["auto_config_url"])}
    flags = ie.get("connection_flags")
    if isinstance(flags, int) and flags & AUTO_DETECT and not wpad_disabled:
        # The host does not run WPAD discovery (DHCP, then DNS): the proxy it would find is not known here.
        return {"source": "wpad", "proxy": None}
    return None


def effective_proxy(state: HostState, ie: t.Mapping[str, t.Any] | None, *, wpad_disabled: bool) -> dict[str, t.Any]:
    """``{source, proxy}`` CryptoAPI uses for an identity with WinINet settings ``ie`` (KB 2623724's order).

    The native view is the one 64-bit service processes read (windows-facts.md); a value that does not decode is
    ignored by WinHTTP, as the twin models it.
    """
    for step in proxy_order(state.os_build):
        if step == "netsh":
            native = state.views.get("native")
            settings = native.settings if native is not None else None
            if settings is not None and native is not None and native.error is None and settings.mode == "proxy":
                return {"source": "netsh", "proxy": settings.proxy}
        elif step == "ie":
            found = _ie_proxy(ie, wpad_disabled=wpad_disabled)
            if found is not None:
                return found
    return {"source": "direct", "proxy": None}


def _path_text(path: t.Mapping[str, t.Any]) -> str:
    if path["source"] == "direct":
        return "direct (no proxy)"
    what = path.get("proxy") or (f"script {path['script']}" if path.get("script") else "a proxy WPAD would find")
    return f"{path['source']} {what}"


def _same(a: t.Mapping[str, t.Any], b: t.Mapping[str, t.Any]) -> bool:
    return (a.get("proxy") or "").casefold() == (b.get("proxy") or "").casefold() and (
        a.get("script") == b.get("script")) and (a["source"] == "direct") == (b["source"] == "direct")


def _intended(desired: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    if not desired:
        return None
    if desired.get("state") == "absent" or not desired.get("proxy"):
        return {"source": "direct", "proxy": None}
    return {"source": "netsh", "proxy": desired["proxy"]}


def summarise(part: t.Mapping[str, t.Any], state: HostState, desired: t.Mapping[str, t.Any] | None,
              ldap_only: t.Collection[str] = (),
              ) -> tuple[dict[str, dict[str, t.Any]], dict[str, t.Any] | None, list[Finding]]:
    """(identities, the caller's path, findings) from the host's ``identities`` part and the WinHTTP state.

    ``identities`` maps each account name as Windows prints it to the record's entry (roles/fix_crl/README.md,
    "The host record"); the measurement keys (``chain_ok``, ``chain_ms``, ``crl``, ``cache_purged``) stay null until
    a run as that identity fills them.

    Raises:
        ValueError: the part does not have the documented shape.
    """
    if not isinstance(part, t.Mapping) or not isinstance(part.get("accounts"), list):
        raise ValueError(f"identities: expected an object with an 'accounts' list, got {part!r:.120}")
    per_user = part.get("per_user") is not False
    machine_ie = part.get("machine_ie")
    wpad_disabled = part.get("wpad_disabled") is True
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
        identities[name] = {
            "sid": sid,
            "services": services.get(name, []),
            "profile_loaded": account.get("hive_loaded"),
            "effective_proxy": effective_proxy(state, ie, wpad_disabled=wpad_disabled),
            "runnable": password is None and account.get("error") is None,
            "chain_ok": None, "chain_ms": None, "crl": [], "cache_purged": None,
            "error": account.get("error") or password,
        }
        if password is None:
            identities[name].update(_run_fields(account.get("run"), ldap_only))
    caller_part = part.get("caller")
    caller = None
    if isinstance(caller_part, t.Mapping) and caller_part.get("name"):
        ie = caller_part.get("ie") if per_user else machine_ie
        caller = {"name": str(caller_part["name"]), "sid": caller_part.get("sid"),
                  "effective_proxy": effective_proxy(state, ie, wpad_disabled=wpad_disabled)}
    return identities, caller, path_findings(identities, caller, desired)


def path_findings(identities: t.Mapping[str, t.Mapping[str, t.Any]], caller: t.Mapping[str, t.Any] | None,
                  desired: t.Mapping[str, t.Any] | None) -> list[Finding]:
    """``identity_path_differs`` for each identity whose path is not the admin's, or not the one intended."""
    findings: list[Finding] = []
    intended = _intended(desired)
    for name, entry in identities.items():
        path = entry["effective_proxy"]
        reasons = []
        if caller is not None and caller["name"] != name and not _same(path, caller["effective_proxy"]):
            reasons.append(f"the connecting account {caller['name']} goes {_path_text(caller['effective_proxy'])}, "
                           "so a check run as it does not prove this identity's path")
        if intended is not None and not _same(path, intended):
            reasons.append(f"the inventory intends {_path_text(intended)}")
        if reasons:
            add_finding(findings, IDENTITY_PATH_DIFFERS, f"CryptoAPI as {name} goes {_path_text(path)}; "
                        + "; ".join(reasons), identity=name)
    return findings


__all__ = ["DEFAULT_IDENTITIES", "IDENTITY_PATH_DIFFERS", "SERVICE_ACCOUNT_SIDS", "chain_failures",
           "effective_proxy", "host_args",
           "needs_password", "path_findings", "proxy_order", "summarise", "validate_names"]
