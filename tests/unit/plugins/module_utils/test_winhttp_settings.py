"""The WinHttpSettings parser/encoder: the layout plugins/module_utils/_winhttp_settings.py documents."""

from __future__ import annotations

import base64
import struct

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils._winhttp_settings import (
    DIRECT_ACCESS_VALUE,
    WinHttpSettings,
    WinHttpSettingsError,
    build_winhttp_settings,
    bytes_to_reg_hex,
    encode_winhttp_settings,
    next_counter,
    parse_winhttp_settings,
    value_to_bytes,
)

# Microsoft Learn, "Use Group Policy to apply WinHTTP proxy settings to Windows clients": netsh winhttp reset proxy.
DIRECT_HEX = "1800000000000000010000000000000000000000"


def layout(version: int, counter: int, flags: int, proxy: bytes, bypass: bytes, trailing: bytes = b"") -> bytes:
    """The layout written out by hand, independent of the encoder under test."""
    return (struct.pack("<IIII", version, counter, flags, len(proxy)) + proxy + struct.pack("<I", len(bypass))
            + bypass + trailing)


def test_documented_direct_value() -> None:
    assert DIRECT_ACCESS_VALUE.hex() == DIRECT_HEX
    settings = parse_winhttp_settings(bytes.fromhex(DIRECT_HEX))
    assert settings == WinHttpSettings(version=0x18, counter=0, flags=1, proxy="", bypass="", trailing=b"")
    assert settings.mode == "direct"
    assert settings.to_dict() == {"mode": "direct", "proxy": "", "bypass": [], "flags": 1, "counter": 0,
                                  "version": 24, "trailing_b64": ""}


@pytest.mark.parametrize(
    ("raw", "mode", "proxy", "bypass_list"),
    [
        pytest.param(layout(0x18, 1, 3, b"proxy.contoso.com:8080", b""), "proxy", "proxy.contoso.com:8080", [],
                     id="proxy-no-bypass"),
        pytest.param(layout(0x18, 7, 3, b"proxy:8080", b"<local>;*.contoso.com"), "proxy", "proxy:8080",
                     ["<local>", "*.contoso.com"], id="proxy-bypass"),
        pytest.param(layout(0x18, 2, 3, b"http=p1:8080;https=p2:8443", b"<local>"), "proxy",
                     "http=p1:8080;https=p2:8443", ["<local>"], id="per-scheme"),
        pytest.param(layout(0x28, 9, 3, b"[fd00::1]:3128", b"10.*; 192.168.*"), "proxy", "[fd00::1]:3128",
                     ["10.*", "192.168.*"], id="version-0x28-ipv6-space-separated"),
        pytest.param(layout(0x18, 4, 1, b"stale:8080", b"<local>"), "direct", "stale:8080", ["<local>"],
                     id="direct-flag-with-leftover-strings"),
        pytest.param(layout(0, 0, 1, b"", b""), "direct", "", [], id="version-zero"),
    ],
)
def test_parse_table(raw: bytes, mode: str, proxy: str, bypass_list: list[str]) -> None:
    settings = parse_winhttp_settings(raw)
    assert (settings.mode, settings.proxy, settings.bypass_list) == (mode, proxy, bypass_list)
    assert encode_winhttp_settings(settings) == raw


def test_trailing_bytes_are_kept() -> None:
    raw = layout(0x18, 5, 3, b"p:1", b"", trailing=b"\x00\x00\x00\x00\xde\xad")
    settings = parse_winhttp_settings(raw)
    assert settings.trailing == b"\x00\x00\x00\x00\xde\xad"
    assert settings.to_dict()["trailing_b64"] == base64.b64encode(b"\x00\x00\x00\x00\xde\xad").decode()
    assert encode_winhttp_settings(settings) == raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"", "version DWORD at offset 0", id="empty"),
        pytest.param(bytes.fromhex(DIRECT_HEX)[:6], "counter DWORD at offset 4", id="cut-in-counter"),
        pytest.param(bytes.fromhex(DIRECT_HEX)[:14], "proxy length DWORD at offset 12", id="cut-in-proxy-length"),
        pytest.param(bytes.fromhex(DIRECT_HEX)[:16], "bypass length DWORD at offset 16", id="no-bypass-length"),
        pytest.param(layout(0x18, 0, 3, b"proxy:8080", b"")[:20], "proxy length at offset 12 is 10", id="proxy-cut"),
        pytest.param(struct.pack("<IIII", 0x18, 0, 3, 0xFFFFFFF0) + b"abc", "proxy length at offset 12",
                     id="huge-proxy-length"),
        pytest.param(layout(0x18, 0, 3, b"p:1", b"<local>")[:-2], "bypass length at offset 19 is 7",
                     id="bypass-cut"),
        pytest.param(layout(0x18, 0, 3, b"pr\xf6xy:1", b""), "non-ASCII byte 0xf6 in the proxy string at offset 18",
                     id="non-ascii"),
        pytest.param(layout(0x18, 0, 3, b"p\x00:1", b""), "NUL byte in the proxy string at offset 17", id="nul"),
    ],
)
def test_malformed_values_are_refused_with_offset(raw: bytes, message: str) -> None:
    with pytest.raises(WinHttpSettingsError) as info:
        parse_winhttp_settings(raw)
    assert message in str(info.value)


def test_parse_wants_bytes() -> None:
    with pytest.raises(TypeError):
        parse_winhttp_settings(DIRECT_HEX)  # type: ignore[arg-type]


def test_build_writes_what_netsh_writes() -> None:
    assert encode_winhttp_settings(build_winhttp_settings()) == bytes.fromhex(DIRECT_HEX)
    raw = encode_winhttp_settings(build_winhttp_settings(proxy="proxy:8080", bypass="<local>", counter=3))
    assert raw == layout(0x18, 3, 3, b"proxy:8080", b"<local>")


def test_next_counter_increments_and_wraps() -> None:
    assert next_counter(None) == 0
    assert next_counter(WinHttpSettings(counter=4)) == 5
    assert next_counter(WinHttpSettings(counter=0xFFFFFFFF)) == 0


@pytest.mark.parametrize(
    "settings",
    [
        WinHttpSettings(),
        WinHttpSettings(version=0x28, counter=12345, flags=3, proxy="http=a:1;https=b:2", bypass="<local>;10.*"),
        WinHttpSettings(counter=0xFFFFFFFF, flags=3, proxy="p:65535", bypass="", trailing=b"\x01\x02"),
    ],
)
def test_decode_encode_round_trip(settings: WinHttpSettings) -> None:
    assert parse_winhttp_settings(encode_winhttp_settings(settings)) == settings


@pytest.mark.parametrize(
    "bad",
    [WinHttpSettings(counter=-1), WinHttpSettings(version=2**32), WinHttpSettings(proxy="pr\u00f6xy:1")],
)
def test_encoder_refuses_what_cannot_be_stored(bad: WinHttpSettings) -> None:
    with pytest.raises(WinHttpSettingsError):
        encode_winhttp_settings(bad)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (DIRECT_HEX, "auto"),
        (DIRECT_HEX.lower(), "auto"),
        ("GAAAAAAAAAABAAAAAAAAAAAAAAA=", "auto"),
        (" GAAAAAAAAAAB\nAAAAAAAAAAAAAAA= ", "auto"),
        ("    WinHttpSettings    REG_BINARY    " + DIRECT_HEX, "auto"),
        ('"WinHttpSettings"=hex:18,00,00,00,00,00,00,00,01,00,00,00,00,00,\\\r\n  00,00,00,00,00,00', "auto"),
        (bytes.fromhex(DIRECT_HEX), "auto"),
        (bytearray.fromhex(DIRECT_HEX), "auto"),
        ("GAAAAAAAAAABAAAAAAAAAAAAAAA=", "base64"),
        (DIRECT_HEX, "hex"),
    ],
)
def test_value_to_bytes_accepts_every_admin_form(text: object, encoding: str) -> None:
    assert value_to_bytes(text, encoding=encoding) == bytes.fromhex(DIRECT_HEX)  # type: ignore[arg-type]


def test_forced_base64_reads_hex_looking_text_as_base64() -> None:
    assert value_to_bytes("AAAA", encoding="base64") == b"\x00\x00\x00"
    assert value_to_bytes("AAAA") == b"\xaa\xaa"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("not base64!", "auto"), ("GAAAA", "auto"), ("18000", "hex"), ("xyz", "hex"), (12, "auto"), ("AA", "yaml")],
)
def test_value_to_bytes_refuses_garbage(text: object, encoding: str) -> None:
    with pytest.raises(WinHttpSettingsError):
        value_to_bytes(text, encoding=encoding)  # type: ignore[arg-type]


def test_reg_hex_is_what_reg_add_takes() -> None:
    assert bytes_to_reg_hex(bytes.fromhex(DIRECT_HEX)) == DIRECT_HEX.upper()
