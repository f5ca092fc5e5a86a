"""_fix_crl/_identities: whose proof, and the proxy CryptoAPI uses as each identity.

The identities parts below are shaped as ``_ps1/_identity.ps1`` documents them (docs/dev/host-scripts.md,
host_audit ``identities``); the WinHttpSettings bytes are the documented direct value and a netsh-written proxy
(Microsoft Learn, "Use Group Policy to apply WinHTTP proxy settings to Windows clients"; layout:
plugins/module_utils/_winhttp_settings.py). The expected proxy order is KB 2623724's.
"""

from __future__ import annotations

import struct

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _findings, _identities
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import chain_failures
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import state_from_raw

DIRECT = bytes.fromhex("1800000000000000010000000000000000000000")  # Microsoft Learn (netsh winhttp reset proxy)
NS = "NT AUTHORITY\\NETWORK SERVICE"
SYSTEM = "NT AUTHORITY\\SYSTEM"
ADMIN = "LAB\\ansible"


def netsh_value(proxy: str) -> bytes:
    data = proxy.encode("ascii")
    return struct.pack("<IIII", 0x18, 1, 3, len(data)) + data + struct.pack("<I", 0)


def ie(proxy: str | None = None, *, flags: int = 1, script: str | None = None) -> dict:
    return {"proxy_enable": 1 if proxy else 0, "proxy_server": proxy, "proxy_override": "<local>" if proxy else None,
            "auto_config_url": script, "connection_flags": flags}


def part(*, accounts: list[dict], caller_ie: dict | None = None, per_user: bool = True, machine_ie: dict | None = None,
         wpad_disabled: bool = False, services: list[dict] | None = None) -> dict:
    return {"services": services or [], "accounts": accounts,
            "caller": {"name": ADMIN, "sid": "S-1-5-21-1-2-3-1001", "hive_loaded": True, "ie": caller_ie},
            "per_user": per_user, "machine_ie": machine_ie, "wpad_disabled": wpad_disabled}


def account(name: str, sid: str | None, ie_settings: dict | None = None, **extra) -> dict:
    return {"name": name, "requested": name, "sid": sid, "hive_loaded": True, "ie": ie_settings, "error": None,
            **extra}


def state(native: bytes | None):
    return state_from_raw({"native": native, "wow6432": native})


PRESENT = {"state": "present", "proxy": "proxy.contoso.com:8080"}


def paths(identities: dict, caller: dict | None, desired: dict | None) -> list[dict]:
    """The judge's identity_path_differs findings of these identities, in record order."""
    return [f.as_dict() for f in _findings.ordered(_findings.path_findings(identities, caller, desired))]


def test_admin_ie_only_the_services_go_direct_and_the_finding_says_whose_path_differs() -> None:
    doc = part(accounts=[account(NS, "S-1-5-20"), account(SYSTEM, "S-1-5-18")],
               caller_ie=ie("proxy.contoso.com:8080"))
    identities, caller = _identities.summarise(doc, state(DIRECT))
    findings = paths(identities, caller, PRESENT)
    assert caller["effective_proxy"] == {"source": "ie", "proxy": "proxy.contoso.com:8080"}
    assert {n: e["effective_proxy"] for n, e in identities.items()} == {
        NS: {"source": "direct", "proxy": None}, SYSTEM: {"source": "direct", "proxy": None}}
    assert [(f["code"], f["identity"]) for f in findings] == [
        ("identity_path_differs", NS), ("identity_path_differs", SYSTEM)]
    assert "LAB\\ansible goes ie proxy.contoso.com:8080" in findings[0]["detail"]
    assert "intends netsh proxy.contoso.com:8080" in findings[0]["detail"]


def test_the_netsh_value_wins_over_every_identity_s_ie_settings() -> None:
    doc = part(accounts=[account(NS, "S-1-5-20", ie("other:3128"))], caller_ie=ie("other:3128"))
    identities, caller = _identities.summarise(doc, state(netsh_value("proxy.contoso.com:8080")))
    findings = paths(identities, caller, PRESENT)
    assert identities[NS]["effective_proxy"] == caller["effective_proxy"] == {
        "source": "netsh", "proxy": "proxy.contoso.com:8080"}
    assert findings == []


def test_an_identity_s_own_ie_proxy_is_its_second_step() -> None:
    doc = part(accounts=[account(NS, "S-1-5-20", ie("svcproxy:8080"))])
    identities, _caller = _identities.summarise(doc, state(None))
    assert identities[NS]["effective_proxy"] == {"source": "ie", "proxy": "svcproxy:8080"}


def test_proxy_settings_per_machine_reads_the_machine_settings_for_everyone() -> None:
    doc = part(accounts=[account(NS, "S-1-5-20", ie("ignored:1"))], per_user=False, machine_ie=ie("machine:8080"))
    identities, caller = _identities.summarise(doc, state(DIRECT))
    assert identities[NS]["effective_proxy"] == caller["effective_proxy"] == {"source": "ie", "proxy": "machine:8080"}


@pytest.mark.parametrize(("flags", "disabled", "expected"), [
    (0x09, False, {"source": "wpad", "proxy": None, "pac_url": None,  # 0x08 auto-detect (askie's flags byte); the
                   "error": "the host ran no WPAD discovery"}),        # part has no wpad result: not known
    (0x09, True, {"source": "direct", "proxy": None}),  # DisableWpad = 1
    (0x01, False, {"source": "direct", "proxy": None}),
])
def test_auto_detect_is_wpad_unless_disabled(flags: int, disabled: bool, expected: dict) -> None:
    doc = part(accounts=[account(NS, "S-1-5-20", ie(flags=flags))], wpad_disabled=disabled)
    identities, _caller = _identities.summarise(doc, state(DIRECT))
    assert identities[NS]["effective_proxy"] == expected


def test_an_account_that_needs_a_password_is_reported_not_run_as() -> None:
    doc = part(accounts=[account("CONTOSO\\svc-lync", "S-1-5-21-9-9-9-1200"),
                         account("CONTOSO\\gmsa-adfs$", "S-1-5-21-9-9-9-1105")])
    identities, _caller = _identities.summarise(doc, state(DIRECT))
    assert identities["CONTOSO\\svc-lync"]["runnable"] is False
    assert "needs its password" in identities["CONTOSO\\svc-lync"]["error"]
    assert identities["CONTOSO\\gmsa-adfs$"]["runnable"] is True and identities["CONTOSO\\gmsa-adfs$"]["error"] is None


def test_services_name_their_identity() -> None:
    doc = part(accounts=[account(NS, "S-1-5-20")], services=[
        {"name": "RTCSRV", "found": True, "start_name": "NT AUTHORITY\\NetworkService", "state": "Running",
         "account": NS, "error": None}])
    identities, _caller = _identities.summarise(doc, state(DIRECT))
    assert identities[NS]["services"] == ["RTCSRV"]


def test_host_args_explicit_identities_win_then_the_services_then_the_defaults() -> None:
    wpad = {"wpad": {"timeout_ms": 10000, "unset_detects_below_build": 10240}}
    assert _identities.host_args([], []) == {"services": [], "accounts": [NS, SYSTEM], "accounts_from_services": True,
                                             **wpad}
    assert _identities.host_args(["RTCSRV"], []) == {"services": ["RTCSRV"], "accounts": [],
                                                     "accounts_from_services": True, **wpad}
    assert _identities.host_args(["RTCSRV"], ["LAB\\x$"]) == {"services": ["RTCSRV"], "accounts": ["LAB\\x$"],
                                                              "accounts_from_services": False, **wpad}


@pytest.mark.parametrize(("services", "identities", "message"), [
    (["RTC SRV'; Remove-Item"], [], "services[0]: not a valid service name"),
    ([], ["NT AUTHORITY\\NETWORK SERVICE\n"], "verify_identities[0]: not a valid account name"),
    ([], ["a:b"], "verify_identities[0]"),
    (["x"] * 33, [], "services: at most 32 names"),
])
def test_bad_names_are_refused_with_the_field_and_the_value(services, identities, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _identities.validate_names(services, identities)


def test_a_part_without_accounts_is_refused() -> None:
    with pytest.raises(ValueError, match="identities: expected an object with an 'accounts' list"):
        _identities.summarise({"services": []}, state(DIRECT))


def test_findings_are_ordered_by_code_then_identity_and_listed_once() -> None:
    found = _findings.ordered([_findings.finding("service_stale", "b", "Z"),
                               _findings.finding("identity_path_differs", "a", "B"),
                               _findings.finding("identity_path_differs", "host"),
                               _findings.finding("identity_path_differs", "a", "B")])
    assert [(f.code, f.identity) for f in found] == [
        ("identity_path_differs", None), ("identity_path_differs", "B"), ("service_stale", "Z")]
    with pytest.raises(ValueError, match="'Not Snake' is not a finding code"):
        _findings.finding("Not Snake", "x")


def _with_run(run: dict) -> dict:
    return part(accounts=[account(NS, "S-1-5-20", run=run)])


def test_a_chain_built_as_the_identity_fills_its_entry() -> None:
    run = {"task_result": 0, "elapsed_ms": 900, "purge": {"rc": 0, "output": ""}, "error": None, "chains": [
        {"store": "My", "thumbprint": "AB", "subject": "CN=fe01", "elapsed_ms": 812, "status": [], "elements": [],
         "error": None}]}
    identities, _caller = _identities.summarise(_with_run(run), state(DIRECT))
    entry = identities[NS]
    assert (entry["chain_ok"], entry["chain_ms"], entry["cache_purged"], entry["error"]) == (True, 812, True, None)
    assert entry["crl"][0]["thumbprint"] == "AB"
    assert chain_failures(identities) == []


def test_a_chain_with_revocation_flags_says_why_and_fails_the_identity() -> None:
    run = {"outcome": "finished", "task_result": 0, "purge": None, "error": None, "chains": [
        {"thumbprint": "AB", "subject": "CN=fe01", "elapsed_ms": 4012, "status": [
            "RevocationStatusUnknown", "OfflineRevocation"], "elements": [], "error": None}]}
    identities, _caller = _identities.summarise(_with_run(run), state(DIRECT))
    entry = identities[NS]
    assert entry["chain_ok"] is False and entry["not_run_reason"] is None
    assert entry["error"] == "chain of CN=fe01: RevocationStatusUnknown, OfflineRevocation"
    assert chain_failures(identities)[0].startswith(f"as {NS} after 4012 ms")


def test_no_run_leaves_the_measurement_null_and_says_why() -> None:
    identities, _caller = _identities.summarise(_with_run(None), state(DIRECT))
    assert (identities[NS]["chain_ok"], identities[NS]["cache_purged"], identities[NS]["crl"]) == (None, None, [])
    assert identities[NS]["not_run_reason"] == "the host was not asked to build the chain as this identity"


def test_a_refused_url_on_the_netsh_path_is_proxy_rejects_agent() -> None:
    crl = {"results": [{"url": "http://crl.a/x.crl", "http_status": 407},
                       {"url": "http://crl.a/y.crl", "http_status": 200},
                       {"url": "http://crl.a/z.crl", "http_status": 503}]}
    findings = _findings.refusal_findings(crl)
    assert [(f.code, f.identity) for f in findings] == [("proxy_rejects_agent", None)]
    assert findings[0].detail.startswith("http://crl.a/x.crl answered HTTP 407 to the netsh path")
    assert _findings.refusal_findings(None) == []


def test_a_certificate_with_ldap_only_crls_is_listed_not_judged() -> None:
    run = {"task_result": 0, "purge": None, "error": None, "chains": [
        {"thumbprint": "AB", "subject": "CN=adfs", "elapsed_ms": 18, "status": ["RevocationStatusUnknown"],
         "elements": [], "error": None}]}
    identities, _caller = _identities.summarise(_with_run(run), state(DIRECT), ldap_only=["ab"])
    assert identities[NS]["chain_ok"] is None and identities[NS]["crl"][0]["ldap_only"] is True
    assert chain_failures(identities) == []
