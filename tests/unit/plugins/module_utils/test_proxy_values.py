"""Proxy/bypass validation (strict, refuses anything command-like) and comparison keys (lenient)."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils import _proxy_values as pv
from tests.unit.plugins.fixtures.hostile import HOSTILE_PROXIES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("proxy.contoso.com:8080", "proxy.contoso.com:8080"),
        ("  PROXY.Contoso.com:3128 ", "PROXY.Contoso.com:3128"),
        ("10.0.0.1:80", "10.0.0.1:80"),
        ("[fd00::1]:3128", "[fd00::1]:3128"),
        ("proxy_01:1", "proxy_01:1"),
        ("http=p1:8080;https=p2:8443", "http=p1:8080;https=p2:8443"),
        ("HTTPS=p2:8443", "HTTPS=p2:8443"),
        ("proxy:65535", "proxy:65535"),
        # win_http_proxy's forms: no port (WinHTTP uses the scheme's default) and ftp=/socks= entries.
        ("proxyhost", "proxyhost"),
        ("[fd00::1]", "[fd00::1]"),
        ("http=proxy:8080;https=proxy:8443;ftp=proxy:821;socks=proxy:888",
         "http=proxy:8080;https=proxy:8443;ftp=proxy:821;socks=proxy:888"),
        ("socks=proxy", "socks=proxy"),
    ],
)
def test_valid_proxies(value: str, expected: str) -> None:
    assert pv.validate_proxy(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("proxy:0", "from 1 to 65535"),
        ("proxy:65536", "from 1 to 65535"),
        ("proxy:http", "from 1 to 65535"),
        ("http://proxy:8080", "not allowed"),
        ("gopher=p:70", "must start with http=, https=, ftp=, socks="),
        ("http=p:1;;https=q:2", "must start with http="),
        ("http=a:1;http=b:2", "names scheme 'http' twice"),
        ("http=a:1;b:2", "must start with http="),
        ("a:1;b:2", "per-scheme"),
        ("256.1.1.1:80", "invalid IPv4"),
        ("[fd00::zz]:80", "invalid IPv6"),
        ("[fd00::1:80", "unterminated"),
        ("-proxy:80", "invalid host name"),
        ("proxy..contoso:80", "invalid host name"),
        ("", "non-empty string"),
        (None, "non-empty string"),
        (8080, "non-empty string"),
    ],
)
def test_invalid_proxies_name_field_and_value(value: object, fragment: str) -> None:
    with pytest.raises(pv.ProxyValueError) as info:
        pv.validate_proxy(value, field="proxy")
    message = str(info.value)
    assert message.startswith("proxy: ")
    assert fragment in message
    if isinstance(value, str) and value:
        assert repr(value) in message


def test_proxy_dict_is_written_in_win_http_proxys_order() -> None:
    value = {"socks": "proxy:888", "ftp": "proxy:821", "https": "proxy:8443", "http": "proxy:8080"}
    assert pv.proxy_from_dict(value) == "http=proxy:8080;https=proxy:8443;ftp=proxy:821;socks=proxy:888"
    assert pv.proxy_from_dict({"https": "proxyhost"}) == "https=proxyhost"


def test_proxy_dict_keys_are_refused_with_win_http_proxys_text() -> None:
    with pytest.raises(pv.ProxyKeysError) as info:
        pv.proxy_from_dict({"fail2": "fail", "http": "p:1", "fail1": "fail"})
    assert str(info.value) == "Invalid keys found in proxy: fail1, fail2. Valid keys are http, https, ftp, socks."


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({}, "an empty dict names no proxy"),
        ({"http": ""}, "proxy.http: expected a non-empty string"),
        ({"http": 8080}, "proxy.http: expected a non-empty string"),
        ({"http": "a:1;https=b:2"}, "proxy.http: 'a:1;https=b:2' must be host or host:port"),
        ({"http": "https=b:2"}, "must be host or host:port"),
        ({"http": "p:8080\" calc"}, "contains"),
        ({"https": "$(calc):1"}, "contains '$'"),
    ],
)
def test_proxy_dict_values_are_validated(value: dict, fragment: str) -> None:
    with pytest.raises(pv.ProxyValueError) as info:
        pv.proxy_from_dict(value)
    assert fragment in str(info.value)
    assert not isinstance(info.value, pv.ProxyKeysError)


@pytest.mark.parametrize("value", HOSTILE_PROXIES)
def test_hostile_proxies_are_refused(value: str) -> None:
    with pytest.raises(pv.ProxyValueError) as info:
        pv.validate_proxy(value)
    assert str(info.value).startswith("proxy: ")


@pytest.mark.parametrize("value", HOSTILE_PROXIES)
def test_hostile_strings_are_refused_as_bypass_entries(value: str) -> None:
    with pytest.raises(pv.ProxyValueError) as info:
        pv.validate_bypass([value])
    assert str(info.value).startswith("bypass: ")


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], []),
        (None, []),
        (["<local>"], ["<local>"]),
        (["<LOCAL>", "<-loopback>"], ["<LOCAL>", "<-loopback>"]),
        (["*.contoso.com", "10.*", "192.168.1.*", "*", "crl.contoso.com:80"],
         ["*.contoso.com", "10.*", "192.168.1.*", "*", "crl.contoso.com:80"]),
        (["10.1.2.3", "[fd00::1]", "fd00::2", "[fd00::3]:443"], ["10.1.2.3", "[fd00::1]", "fd00::2", "[fd00::3]:443"]),
        (["a.contoso.com", "A.Contoso.COM", " b "], ["a.contoso.com", "b"]),
        (["*contoso.com"], ["*contoso.com"]),
    ],
)
def test_valid_bypass_lists(entries: object, expected: list[str]) -> None:
    assert pv.validate_bypass(entries) == expected


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ("<local>;*.contoso.com", "expected a list"),
        (["<local>;*.contoso.com"], "one entry per list item"),
        ([""], "non-empty strings"),
        ([None], "non-empty strings"),
        (["<remote>"], "'<' or '>'"),
        (["http://crl.contoso.com"], "contains '/'"),
        (["10.0.0.0/8"], "contains '/'"),
        (["crl.contoso.com:0"], "from 1 to 65535"),
        (["a..b"], "invalid host name"),
        (["fd00::zz"], "not a valid IPv6"),
        (["*.con$oso.com"], "contains '$'"),
        (["a b"], "a space"),
    ],
)
def test_invalid_bypass_entries(entries: object, fragment: str) -> None:
    with pytest.raises(pv.ProxyValueError) as info:
        pv.validate_bypass(entries)
    assert str(info.value).startswith("bypass: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ("proxy.contoso.com:8080", "PROXY.contoso.COM:8080", True),
        ("proxy:8080", " proxy:8080 ", True),
        ("proxy:08080", "proxy:8080", True),
        ("http=a:1;https=b:2", "https=B:2;HTTP=a:1", True),
        ("[fd00::1]:80", "[FD00:0::1]:80", True),
        ("proxy:8080", "proxy:8081", False),
        ("proxy:80", "proxy", False),
        ("http=a:1;https=a:1", "a:1", False),
        ("", None, True),
    ],
)
def test_proxy_equality(left: str, right: str | None, equal: bool) -> None:
    assert (pv.proxy_key(left) == pv.proxy_key(right)) is equal


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (["<local>", "*.contoso.com"], "*.CONTOSO.com;<LOCAL>", True),
        (["a", "a", "b"], ["b", "a"], True),
        ("<local>; *.contoso.com ;", ["<local>", "*.contoso.com"], True),
        ("[fd00::1]", ["[FD00:0::1]"], True),
        ("fd00::1", ["FD00:0::1"], True),
        (["<local>"], [], False),
        (["*.contoso.com"], ["contoso.com"], False),
        (None, "", True),
    ],
)
def test_bypass_equality(left: object, right: object, equal: bool) -> None:
    assert (pv.bypass_key(left) == pv.bypass_key(right)) is equal  # type: ignore[arg-type]


def test_split_bypass_uses_semicolons_and_whitespace() -> None:
    assert pv.split_bypass("<local>; *.a.com\t10.*;;") == ["<local>", "*.a.com", "10.*"]
    assert pv.split_bypass("") == []
