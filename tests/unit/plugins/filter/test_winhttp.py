"""Filters winhttp_settings / winhttp_settings_value, directly and through Jinja as a playbook uses them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.crlfix.windows.plugins.filter.winhttp import (
    FilterModule,
    winhttp_settings,
    winhttp_settings_value,
)
from tests.unit.plugins.fixtures.ansible_cli import render_with_ansible

REPO_ROOT = Path(__file__).resolve().parents[4]
# Microsoft Learn, "Use Group Policy to apply WinHTTP proxy settings to Windows clients".
DIRECT_HEX = "1800000000000000010000000000000000000000"
# The layout of plugins/module_utils/_winhttp_settings.py: version 0x18, counter 3, flags 3,
# "proxy.contoso.com:8080", "<local>;*.contoso.com".
PROXY_B64 = "GAAAAAMAAAADAAAAFgAAAHByb3h5LmNvbnRvc28uY29tOjgwODAVAAAAPGxvY2FsPjsqLmNvbnRvc28uY29t"


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {"winhttp_settings", "winhttp_settings_value"}


def test_decode_direct() -> None:
    assert winhttp_settings(DIRECT_HEX) == {"mode": "direct", "proxy": "", "bypass": [], "flags": 1, "counter": 0,
                                            "version": 24, "trailing_b64": ""}


def test_decode_proxy_from_base64_and_bytes() -> None:
    expected = {"mode": "proxy", "proxy": "proxy.contoso.com:8080", "bypass": ["<local>", "*.contoso.com"],
                "flags": 3, "counter": 3, "version": 24, "trailing_b64": ""}
    assert winhttp_settings(PROXY_B64) == expected
    assert winhttp_settings(base64.b64decode(PROXY_B64)) == expected
    assert winhttp_settings(base64.b64decode(PROXY_B64).hex(), encoding="hex") == expected


@pytest.mark.parametrize("bad", ["180000", "GAAAAAMAAAADAAAAFgAAAHBy", "not a value", 42])
def test_decode_errors_are_filter_errors(bad: object) -> None:
    with pytest.raises(AnsibleFilterError, match="^winhttp_settings: "):
        winhttp_settings(bad)


def test_encode_direct_is_what_netsh_reset_writes() -> None:
    assert winhttp_settings_value(None) == {"base64": "GAAAAAAAAAABAAAAAAAAAAAAAAA=", "hex": DIRECT_HEX.upper()}
    assert winhttp_settings_value({"mode": "direct"})["hex"] == DIRECT_HEX.upper()


def test_encode_proxy_string_with_bypass_option() -> None:
    value = winhttp_settings_value("proxy.contoso.com:8080", bypass=["<local>", "*.contoso.com"], counter=3)
    assert value["base64"] == PROXY_B64
    assert value["hex"] == base64.b64decode(PROXY_B64).hex().upper()


@pytest.mark.parametrize(
    "value",
    [
        DIRECT_HEX,
        PROXY_B64,
        # per-scheme, version 0x28, trailing bytes, large counter
        winhttp_settings_value({"proxy": "http=a:1;https=b:2", "bypass": ["<local>"], "version": 0x28,
                                "counter": 4000000000, "trailing_b64": "AAAAAA=="})["base64"],
    ],
)
def test_decode_encode_round_trip(value: str) -> None:
    decoded = winhttp_settings(value)
    encoded = winhttp_settings_value(decoded)
    assert winhttp_settings(encoded["base64"]) == decoded
    assert base64.b64decode(encoded["base64"]) == bytes.fromhex(encoded["hex"])


def test_options_override_the_dict() -> None:
    decoded = winhttp_settings(PROXY_B64)
    encoded = winhttp_settings_value(decoded, counter=decoded["counter"] + 1, bypass="<local>")
    value = winhttp_settings(encoded["base64"])
    assert (value["counter"], value["bypass"], value["proxy"]) == (4, ["<local>"], "proxy.contoso.com:8080")


@pytest.mark.parametrize(
    ("data", "kwargs", "fragment"),
    [
        ("proxy:8080\"; calc; \"", {}, "winhttp_settings_value proxy: "),
        ("$(calc):1", {}, "winhttp_settings_value proxy: "),
        ("proxy:8080", {"bypass": ["<local>", "a`b"]}, "winhttp_settings_value bypass: "),
        ({"mode": "proxy"}, {}, "needs a proxy"),
        ({"mode": "direct", "flags": 3, "proxy": "p:1"}, {}, "contradicts"),
        ({"mode": "auto"}, {}, "mode must be direct or proxy"),
        ("p:1", {"counter": -1}, "counter must be an integer"),
        ("p:1", {"version": "24"}, "version must be an integer"),
        (["p:1"], {}, "input must be a dict"),
        ({"trailing_b64": "!!"}, {}, "winhttp_settings_value: "),
    ],
)
def test_encode_refuses_bad_input(data: object, kwargs: dict, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        winhttp_settings_value(data, **kwargs)
    assert fragment in str(info.value)


def test_validate_false_re_encodes_what_a_host_holds() -> None:
    # A value written by hand with an unknown scheme: refused by default, kept exactly with validate=false.
    odd = winhttp_settings_value({"proxy": "gopher=proxy:70", "bypass": ["<local>"]}, validate=False)
    assert winhttp_settings(odd["base64"])["proxy"] == "gopher=proxy:70"
    with pytest.raises(AnsibleFilterError):
        winhttp_settings_value({"proxy": "gopher=proxy:70"})


def test_filters_through_ansible_by_fqcn(tmp_path: Path) -> None:
    # As a playbook sees them: found by FQCN through the collection loader (fixtures/ansible_cli.py).
    expr = ("{{ {'decoded': value | crlfix.windows.winhttp_settings, "
            "'encoded': 'p.contoso.com:8080' | crlfix.windows.winhttp_settings_value(bypass=['<local>'])} | to_json }}")
    got = render_with_ansible(expr, tmp_path, f"value={DIRECT_HEX}")
    assert got["decoded"]["mode"] == "direct"
    assert winhttp_settings(got["encoded"]["base64"])["bypass"] == ["<local>"]
