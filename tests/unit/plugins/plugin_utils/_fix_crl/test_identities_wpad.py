"""_fix_crl/_identities: CryptoAPI's proxy order per OS build, and what the host's WPAD discovery found.

The order is KB 2623724's (MicrosoftDocs/SupportArticles-docs: support/developer/browsers/security-privacy/
description-of-cryptography-api-proxy-from-crl.md): before Windows 10 three steps, where an identity **without** IE
settings discovers (step 3); from Windows 10 WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY (netsh, then the IE settings). The
``wpad`` parts are shaped as docs/dev/host-scripts.md documents ``identities.wpad``; 12180 is
ERROR_WINHTTP_AUTODETECTION_FAILED (Microsoft Learn, "Error Messages (Winhttp.h)").
"""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _identities
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import state_from_raw

from .test_identities import DIRECT, NS, PRESENT, account, ie, netsh_value, part, paths

AUTODETECTION_FAILED = "ERROR_WINHTTP_AUTODETECTION_FAILED (12180): WPAD found no proxy auto-config URL"


def state(build: int | None, native: bytes | None = DIRECT):
    return dataclasses.replace(state_from_raw({"native": native, "wow6432": native}), os_build=build)


def wpad(*, proxy: str | None = None, pac_url: str | None = "http://wpad.lab.test/wpad.dat",
         error: str | None = None, scripts: list | None = None) -> dict:
    return {"url": "http://crl.public-ca.test/issuing-ca.crl", "elapsed_ms": 40, "error": None,
            "scripts": scripts or [],
            "auto_detect": {"detected": error is None, "pac_url": None if error else pac_url, "proxy": proxy,
                            "error": error}}


@pytest.mark.parametrize(("build", "order"), [
    (7601, "three_step"), (9600, "three_step"), (10240, "automatic_proxy"), (14393, "automatic_proxy"),
    (20348, "automatic_proxy"), (None, "automatic_proxy")])
def test_the_order_follows_the_build(build: int | None, order: str) -> None:
    assert _identities.proxy_order(build) == order


def test_an_identity_without_ie_settings_discovers_before_windows_10_and_goes_direct_after() -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20")]), "wpad": wpad(proxy="127.0.0.1:3128")}
    old, _caller = _identities.summarise(doc, state(9600))
    new, _caller = _identities.summarise(doc, state(14393))
    assert old[NS]["effective_proxy"] == {"source": "wpad", "proxy": "127.0.0.1:3128",
                                          "pac_url": "http://wpad.lab.test/wpad.dat", "error": None}
    assert new[NS]["effective_proxy"] == {"source": "direct", "proxy": None}


def test_a_hive_not_loaded_is_settings_not_present_on_three_step() -> None:
    doc = {**part(accounts=[{**account(NS, "S-1-5-20"), "hive_loaded": False}]), "wpad": wpad(proxy="p:1")}
    identities, _caller = _identities.summarise(doc, state(7601))
    assert identities[NS]["effective_proxy"]["source"] == "wpad"


def test_disable_wpad_stops_the_third_step_on_either_order() -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20", ie(flags=0x09))], wpad_disabled=True), "wpad": wpad(proxy="p:1")}
    for build in (9600, 17763):
        identities, _caller = _identities.summarise(doc, state(build))
        assert identities[NS]["effective_proxy"] == {"source": "direct", "proxy": None}


@pytest.mark.parametrize("build", [9600, 17763])
def test_auto_detect_uses_what_discovery_found_on_either_order(build: int) -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20", ie(flags=0x09))]), "wpad": wpad(proxy="127.0.0.1:3128")}
    intended = {"state": "present", "proxy": "127.0.0.1:3128"}
    identities, _caller = _identities.summarise(doc, state(build))
    findings = paths(identities, _caller, intended)
    assert identities[NS]["effective_proxy"]["proxy"] == "127.0.0.1:3128"
    assert not any("intends" in f["detail"] for f in findings)  # the proxy intended, found by WPAD
    # The admin without IE settings discovers too before Windows 10 (same path); after it, the admin goes direct.
    assert [f["identity"] for f in findings] == ([] if build < 10240 else [NS])


def test_auto_detect_that_finds_nothing_is_wpad_with_no_proxy_and_differs_from_the_intended_path() -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20", ie(flags=0x09))]), "wpad": wpad(error=AUTODETECTION_FAILED)}
    identities, _caller = _identities.summarise(doc, state(17763))
    findings = paths(identities, _caller, PRESENT)
    assert identities[NS]["effective_proxy"] == {"source": "wpad", "proxy": None, "pac_url": None,
                                                 "error": AUTODETECTION_FAILED}
    assert [(f["code"], f["identity"]) for f in findings] == [("identity_path_differs", NS)]
    assert "goes wpad with no proxy found (ERROR_WINHTTP_AUTODETECTION_FAILED (12180)" in findings[0]["detail"]
    assert "so direct" in findings[0]["detail"]


def test_wpad_that_finds_nothing_goes_the_same_way_as_a_direct_admin() -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20", ie(flags=0x09))]), "wpad": wpad(error=AUTODETECTION_FAILED)}
    _identities_found, _caller = _identities.summarise(doc, state(17763))
    findings = paths(_identities_found, _caller, None)
    assert findings == []  # both fetch direct: no difference to report against the admin


def test_auto_settings_come_before_a_manual_server() -> None:
    settings = ie("manual:8080", flags=0x0B)  # manual (0x02) and auto-detect (0x08)
    doc = {**part(accounts=[account(NS, "S-1-5-20", settings)]), "wpad": wpad(error=AUTODETECTION_FAILED)}
    identities, _caller = _identities.summarise(doc, state(9600))
    assert identities[NS]["effective_proxy"]["source"] == "wpad"
    assert identities[NS]["effective_proxy"]["proxy"] is None  # KB step 3: failed discovery is "no proxy"


def test_a_failed_detection_falls_to_the_script_and_the_script_s_answer_is_used() -> None:
    script = "http://pac.contoso.com/proxy.pac"
    settings = ie(flags=0x0D, script=script)
    found = wpad(error=AUTODETECTION_FAILED, scripts=[{"pac_url": script, "proxy": "pac:3128", "error": None}])
    doc = {**part(accounts=[account(NS, "S-1-5-20", settings)]), "wpad": found}
    identities, _caller = _identities.summarise(doc, state(17763))
    assert identities[NS]["effective_proxy"] == {"source": "ie", "proxy": "pac:3128", "script": script, "error": None}


def test_the_netsh_value_still_comes_first_on_three_step() -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20")]), "wpad": wpad(proxy="other:1")}
    identities, _caller = _identities.summarise(doc, state(7601, netsh_value("proxy.contoso.com:8080")))
    assert identities[NS]["effective_proxy"] == {"source": "netsh", "proxy": "proxy.contoso.com:8080"}


def test_a_discovery_the_host_could_not_finish_is_its_error() -> None:
    doc = {**part(accounts=[account(NS, "S-1-5-20", ie(flags=0x09))]),
           "wpad": {"url": None, "auto_detect": None, "scripts": [], "elapsed_ms": 10000,
                    "error": "not finished within 10000 ms"}}
    identities, _caller = _identities.summarise(doc, state(17763))
    assert identities[NS]["effective_proxy"]["error"] == "not finished within 10000 ms"
