"""The twin's accounts, services and CryptoAPI proxy per identity (tests/twin/identities.py), against their sources.

Each test names the source the behaviour comes from; none imports the collection. KB 2623724: netsh value, then the
identity's WinINet settings (HKU\\<SID>), then WPAD, else direct; ProxySettingsPerUser = 0 reads the machine's
settings (IEInternals). StartName spellings: Microsoft Learn, "NetworkService Account"; SIDs: the HKU hive names of
SupportArticles-docs (browsers, proxy settings per account).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.lab.fleet import scenarios
from tests.twin import identities
from tests.twin.state import HostState, new_state, write_json_atomic

DIRECT = bytes.fromhex("1800000000000000010000000000000000000000")
PROXY = struct.pack("<IIII", 0x18, 1, 3, 14) + b"127.0.0.1:3128" + struct.pack("<I", 0)
NS = "NT AUTHORITY\\NETWORK SERVICE"


def make_state(tmp_path: Path, native: bytes | None, group: str = "lync_servers") -> HostState:
    data = new_state("fe01.lab.test", os_build=17763, user="ansible", password="p", native=native, wow6432=native)
    scenarios.seed_services(data, group)
    path = tmp_path / "host.json"
    write_json_atomic(path, data)
    return HostState.load(path)


def test_kb2623724_netsh_first_for_every_identity(tmp_path: Path) -> None:
    state = make_state(tmp_path, PROXY)
    state.data["ie_proxy"] = {"proxy": "10.0.0.9:8080", "bypass": ""}
    for sid in (None, "S-1-5-18", "S-1-5-20"):
        source, proxy = identities.cryptoapi_proxy(state, sid)
        assert (source, proxy.proxy) == ("netsh", "127.0.0.1:3128")


def test_kb2623724_then_the_identity_s_own_winin_et_settings(tmp_path: Path) -> None:
    state = make_state(tmp_path, DIRECT)
    state.data["ie_proxy"] = {"proxy": "127.0.0.1:3128", "bypass": "<local>"}  # the admin's HKCU only
    assert identities.cryptoapi_proxy(state, None)[0] == "ie"
    assert identities.cryptoapi_proxy(state, "S-1-5-20") == ("direct", identities.WinHttpProxy())
    state.data["accounts"]["S-1-5-20"]["ie"] = {"ProxyEnable": 1, "ProxyServer": "127.0.0.1:3129"}
    source, proxy = identities.cryptoapi_proxy(state, "S-1-5-20")
    assert (source, proxy.proxy) == ("ie", "127.0.0.1:3129")


def test_a_profile_hive_not_loaded_has_no_settings_to_read(tmp_path: Path) -> None:
    state = make_state(tmp_path, DIRECT)
    state.data["accounts"]["S-1-5-20"].update(hive_loaded=False, ie={"ProxyEnable": 1, "ProxyServer": "p:1"})
    assert identities.cryptoapi_proxy(state, "S-1-5-20")[0] == "direct"


def test_proxy_settings_per_user_0_reads_the_machine_settings(tmp_path: Path) -> None:
    state = make_state(tmp_path, DIRECT)
    state.data["ie_policy"] = {"per_user": False, "machine": {"ProxyEnable": 1, "ProxyServer": "127.0.0.1:3130"}}
    assert identities.cryptoapi_proxy(state, "S-1-5-20")[1].proxy == "127.0.0.1:3130"
    assert identities.cryptoapi_proxy(state, None)[1].proxy == "127.0.0.1:3130"


def test_wpad_finds_nothing_in_the_lab_so_auto_detect_goes_direct(tmp_path: Path) -> None:
    state = make_state(tmp_path, DIRECT)
    state.data["accounts"]["S-1-5-20"]["ie"] = {"ProxyEnable": 0, "AutoDetect": True}
    assert identities.cryptoapi_proxy(state, "S-1-5-20") == ("wpad", identities.WinHttpProxy())


@pytest.mark.parametrize(("start_name", "printed"), [
    ("LocalSystem", "NT AUTHORITY\\SYSTEM"),
    ("NT AUTHORITY\\NetworkService", NS),
    ("NT AUTHORITY\\LocalService", "NT AUTHORITY\\LOCAL SERVICE"),
    ("nt authority\\network service", NS),
])
def test_start_names_resolve_to_the_names_ntaccount_prints(tmp_path: Path, start_name: str, printed: str) -> None:
    assert identities.resolve(make_state(tmp_path, DIRECT), start_name)[1] == printed


def test_an_unknown_account_fails_as_translate_does(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Some or all identity references could not be translated."):
        identities.resolve(make_state(tmp_path, DIRECT), "LAB\\nobody")


def test_the_part_lists_the_services_accounts_then_the_explicit_ones(tmp_path: Path) -> None:
    state = make_state(tmp_path, DIRECT, group="adfs_servers")
    part = identities.identities_part(state, {"services": ["adfssrv", "nosuch"], "accounts": [NS],
                                              "accounts_from_services": True})
    assert [(s["name"], s["found"], s["account"]) for s in part["services"]] == [
        ("adfssrv", True, scenarios.GMSA_NAME), ("nosuch", False, None)]
    assert [a["name"] for a in part["accounts"]] == [NS, scenarios.GMSA_NAME]
    assert part["caller"]["name"] == "FE01\\ansible" and part["caller"]["ie"] is None


def test_admin_ie_only_gives_the_admin_alone_a_proxy(tmp_path: Path) -> None:
    state = make_state(tmp_path, PROXY)
    scenarios.apply_scenario(state.data, "admin_ie_only", "127.0.0.1:3128")
    assert identities.cryptoapi_proxy(state, None)[0] == "ie"
    assert all(identities.cryptoapi_proxy(state, sid)[0] == "direct" for sid in state.data["accounts"])
    assert state.data["lab"]["scenario"] == "admin_ie_only"


@pytest.mark.parametrize(("build", "agent"), [(7601, "Microsoft-CryptoAPI/6.1"), (9600, "Microsoft-CryptoAPI/6.3"),
                                              (14393, "Microsoft-CryptoAPI/10.0"), (20348, "Microsoft-CryptoAPI/10.0")])
def test_the_cryptoapi_agent_names_the_nt_version(tmp_path: Path, build: int, agent: str) -> None:
    state = make_state(tmp_path, DIRECT)
    state.data["os"]["build"] = build
    assert identities.cryptoapi_agent(state) == agent
