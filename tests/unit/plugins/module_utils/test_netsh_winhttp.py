"""netsh winhttp show proxy / show advproxy text, replayed from fixtures (sources in fixtures/winhttp/SOURCES.md)."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils._netsh_winhttp import (
    ADVPROXY_FIELDS,
    NetshOutputError,
    NetshProxy,
    parse_show_advproxy,
    parse_show_proxy,
)
from tests.unit.plugins.fixtures.winhttp.replay import read_fixture


def fixture(name: str) -> str:
    return read_fixture(name)


def test_fixtures_keep_windows_line_endings() -> None:
    assert "\r\n" in fixture("show_proxy_en_proxy.txt")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("show_proxy_en_direct.txt", NetshProxy(mode="direct")),
        ("show_proxy_en_proxy.txt", NetshProxy(mode="proxy", proxy="proxy.contoso.com:8080",
                                               bypass="<local>;*.contoso.com")),
        ("show_proxy_en_no_bypass.txt", NetshProxy(mode="proxy",
                                                   proxy="http=proxy.contoso.com:8080;https=proxy.contoso.com:8443")),
        ("show_proxy_de_direct.txt", NetshProxy(mode="direct")),
        ("show_proxy_de_proxy.txt", NetshProxy(mode="proxy", proxy="proxy.contoso.com:8080")),
    ],
)
def test_show_proxy(name: str, expected: NetshProxy) -> None:
    assert parse_show_proxy(fixture(name)) == expected


def test_bypass_list_is_split() -> None:
    assert parse_show_proxy(fixture("show_proxy_en_proxy.txt")).bypass_list == ["<local>", "*.contoso.com"]


def test_unknown_language_falls_back_to_the_layout() -> None:
    # French-like text: neither header nor sentence is known, the structure is.
    direct = "\r\nParamètres actuels du proxy WinHTTP :\r\n\r\n    Accès direct (pas de serveur proxy).\r\n"
    assert parse_show_proxy(direct) == NetshProxy(mode="direct")
    proxy = ("\r\nParamètres actuels du proxy WinHTTP :\r\n\r\n    Serveur(s) proxy :  [fd00::1]:3128\r\n"
             "    Liste de contournement :  <local>\r\n")
    assert parse_show_proxy(proxy) == NetshProxy(mode="proxy", proxy="[fd00::1]:3128", bypass="<local>")


@pytest.mark.parametrize(
    "text",
    ["", "\r\n\r\n", "The following command was not found: winhttp show proxi.\r\n",
     "Current WinHTTP proxy settings:\r\n\r\n    Proxy Server(s) :  p:1\r\n"],
)
def test_show_proxy_refuses_other_text(text: str) -> None:
    with pytest.raises(NetshOutputError):
        parse_show_proxy(text)


def test_advproxy_server_2022_capture() -> None:
    result = parse_show_advproxy(fixture("show_advproxy_2022.txt"))
    assert result["proxy"] == "localhost:8080"
    assert result["proxy_bypass"] == "*"
    assert result["proxy_is_enabled"] is None
    assert result["raw"] == {"Proxy": "localhost:8080", "ProxyBypass": "*"}


def test_advproxy_windows_11_capture() -> None:
    result = parse_show_advproxy(fixture("show_advproxy_win11.txt"))
    assert set(result) == set(ADVPROXY_FIELDS) | {"raw"}
    assert result["proxy_is_enabled"] is True
    assert result["per_user_proxy_settings"] is True
    assert result["auto_detect"] is False
    assert result["autoconfig_url"] == " "


def test_advproxy_keys_match_case_insensitively() -> None:
    result = parse_show_advproxy('{"AutoconfigIsEnabled": true, "autoconfigurl": "http://wpad/wpad.dat"}')
    assert (result["autoconfig_is_enabled"], result["autoconfig_url"]) == (True, "http://wpad/wpad.dat")


@pytest.mark.parametrize("text", ["", "Current WinHTTP advanced proxy settings:\r\n", "{ not json }", "[1]"])
def test_advproxy_refuses_other_text(text: str) -> None:
    with pytest.raises(NetshOutputError):
        parse_show_advproxy(text)
