# PRIVATE to the crlfix.windows collection; may change without notice.
"""Parse and encode the ``WinHttpSettings`` REG_BINARY value (the machine-wide WinHTTP proxy).

The value lives under ``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections``
(and its WOW6432Node twin). Microsoft documents the location and the direct-access value (Microsoft Learn,
"Use Group Policy to apply WinHTTP proxy settings to Windows clients") but not the layout; it is consistent
across public reverse-engineering write-ups. All DWORDs are little-endian::

    offset 0   DWORD version      0x18 as written by netsh on Server 2012 R2-2019; other values exist
    offset 4   DWORD counter      incremented by every netsh write
    offset 8   DWORD flags        bit 0x1 always set, 0x2 = manual proxy (1 = direct, 3 = proxy)
    offset 12  DWORD proxy length, then that many ASCII bytes (not NUL-terminated)
    next       DWORD bypass length, then that many ASCII bytes (entries separated by ';')
    rest       trailing bytes, kept as they are

The parser never looks at the version, so a value of a newer build still decodes; bytes past the
bypass string are kept in ``trailing`` so that encoding a parsed value gives the same bytes back.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import typing as t
from dataclasses import dataclass

VERSION_NETSH = 0x18
FLAG_ALWAYS = 0x1
FLAG_PROXY = 0x2
# What `netsh winhttp reset proxy` writes (Microsoft Learn, "Use Group Policy to apply WinHTTP proxy
# settings to Windows clients").
DIRECT_ACCESS_VALUE = bytes.fromhex("1800000000000000010000000000000000000000")

_DWORD = struct.Struct("<I")
_HEX_RE = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class WinHttpSettingsError(ValueError):
    """The value is not a well-formed ``WinHttpSettings`` value; the message names the problem and offset."""


@dataclass(frozen=True)
class WinHttpSettings:
    """One decoded ``WinHttpSettings`` value.

    ``proxy`` and ``bypass`` are the strings exactly as stored (empty when absent); ``trailing`` holds
    any bytes after the bypass string.
    """

    version: int = VERSION_NETSH
    counter: int = 0
    flags: int = FLAG_ALWAYS
    proxy: str = ""
    bypass: str = ""
    trailing: bytes = b""

    @property
    def mode(self) -> str:
        """``proxy`` when the manual-proxy flag is set, else ``direct`` (what WinHTTP acts on)."""
        return "proxy" if self.flags & FLAG_PROXY else "direct"

    @property
    def bypass_list(self) -> list[str]:
        """The bypass entries; WinHTTP accepts ``;`` and whitespace as separators."""
        return [entry for entry in re.split(r"[;\s]+", self.bypass) if entry]

    def to_dict(self) -> dict[str, t.Any]:
        """The filter/module representation: ``mode``, ``proxy``, ``bypass`` (list), ``flags``, ``counter``,
        ``version`` and ``trailing_b64`` (empty string when there are no trailing bytes)."""
        return {
            "mode": self.mode,
            "proxy": self.proxy,
            "bypass": self.bypass_list,
            "flags": self.flags,
            "counter": self.counter,
            "version": self.version,
            "trailing_b64": base64.b64encode(self.trailing).decode("ascii"),
        }


def _read_dword(data: bytes, offset: int, what: str) -> int:
    if offset + 4 > len(data):
        raise WinHttpSettingsError(
            f"WinHttpSettings value is truncated: the {what} DWORD at offset {offset} needs 4 bytes, "
            f"only {max(len(data) - offset, 0)} remain (value is {len(data)} bytes)"
        )
    return _DWORD.unpack_from(data, offset)[0]


def _read_string(data: bytes, length_offset: int, what: str) -> tuple[str, int]:
    length = _read_dword(data, length_offset, f"{what} length")
    start = length_offset + 4
    if start + length > len(data):
        raise WinHttpSettingsError(
            f"WinHttpSettings value is inconsistent: the {what} length at offset {length_offset} is {length}, "
            f"but only {len(data) - start} bytes follow (value is {len(data)} bytes)"
        )
    raw = data[start:start + length]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise WinHttpSettingsError(
            f"WinHttpSettings value has a non-ASCII byte 0x{raw[exc.start]:02x} in the {what} string "
            f"at offset {start + exc.start}"
        ) from None
    if "\x00" in text:
        raise WinHttpSettingsError(
            f"WinHttpSettings value has a NUL byte in the {what} string at offset {start + text.index(chr(0))}"
        )
    return text, start + length


def parse_winhttp_settings(data: bytes) -> WinHttpSettings:
    """Decode a raw ``WinHttpSettings`` value.

    Raises:
        WinHttpSettingsError: truncated value, a length that runs past the end, or non-ASCII strings.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"parse_winhttp_settings expects bytes, got {type(data).__name__}")
    data = bytes(data)
    version = _read_dword(data, 0, "version")
    counter = _read_dword(data, 4, "counter")
    flags = _read_dword(data, 8, "flags")
    proxy, pos = _read_string(data, 12, "proxy")
    bypass, pos = _read_string(data, pos, "bypass")
    return WinHttpSettings(version=version, counter=counter, flags=flags, proxy=proxy, bypass=bypass,
                           trailing=data[pos:])


def encode_winhttp_settings(settings: WinHttpSettings) -> bytes:
    """Encode ``settings`` exactly; ``parse_winhttp_settings(encode_winhttp_settings(x)) == x``."""
    for what, value in (("version", settings.version), ("counter", settings.counter), ("flags", settings.flags)):
        if not 0 <= value <= 0xFFFFFFFF:
            raise WinHttpSettingsError(f"WinHttpSettings {what} {value!r} does not fit in a DWORD")
    try:
        proxy = settings.proxy.encode("ascii")
        bypass = settings.bypass.encode("ascii")
    except UnicodeEncodeError as exc:
        raise WinHttpSettingsError(f"WinHttpSettings strings must be ASCII: {exc.object!r}") from None
    return b"".join((
        _DWORD.pack(settings.version), _DWORD.pack(settings.counter), _DWORD.pack(settings.flags),
        _DWORD.pack(len(proxy)), proxy, _DWORD.pack(len(bypass)), bypass, settings.trailing,
    ))


def build_winhttp_settings(*, proxy: str = "", bypass: str = "", counter: int = 0,
                           version: int = VERSION_NETSH) -> WinHttpSettings:
    """The value netsh writes for ``set proxy`` (``proxy`` given: flags 3) or ``reset proxy`` (flags 1).

    The caller supplies ``counter``: netsh writes the previous counter plus one (:func:`next_counter`).
    """
    flags = FLAG_ALWAYS | (FLAG_PROXY if proxy else 0)
    return WinHttpSettings(version=version, counter=counter & 0xFFFFFFFF, flags=flags, proxy=proxy, bypass=bypass)


def next_counter(previous: WinHttpSettings | None) -> int:
    """The counter netsh writes after ``previous`` (0 when there was no value)."""
    return 0 if previous is None else (previous.counter + 1) & 0xFFFFFFFF


def value_to_bytes(value: str | bytes | bytearray, *, encoding: str = "auto") -> bytes:
    """Turn a registry value as admins meet it into bytes.

    Accepts ``bytes``; base64 text; hex as ``reg query`` prints it (``1800000000…``, optionally the whole
    ``WinHttpSettings    REG_BINARY    1800…`` line); and ``.reg`` export text (``hex:18,00,…`` with ``\\``
    line continuations). ``encoding`` is ``auto``, ``base64`` or ``hex``. In ``auto`` mode text made only of
    hex digit pairs is read as hex: the base64 of a value netsh wrote starts with ``G`` (version 0x18) or
    ``K`` (0x28), so it is never mistaken for hex; pass ``encoding`` to force one reading.

    Raises:
        WinHttpSettingsError: the text is neither valid hex nor valid base64.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise WinHttpSettingsError(f"expected bytes, base64 or hex text, got {type(value).__name__}")
    if encoding not in ("auto", "base64", "hex"):
        raise WinHttpSettingsError(f"encoding must be auto, base64 or hex, not {encoding!r}")
    text = value.strip()
    reg_line = re.search(r"REG_BINARY\s+([0-9A-Fa-f]*)\s*$", text)
    if reg_line:
        text, encoding = reg_line.group(1), "hex"
    elif re.search(r"hex:", text, re.IGNORECASE):
        # .reg export: "WinHttpSettings"=hex:18,00,... with "\" line continuations
        text = re.sub(r"[\s,\\]", "", re.split(r"hex:", text, maxsplit=1, flags=re.IGNORECASE)[1])
        encoding = "hex"
    compact = re.sub(r"\s", "", text)
    if encoding == "hex" or (encoding == "auto" and _HEX_RE.match(compact)):
        if not _HEX_RE.match(compact):
            raise WinHttpSettingsError(f"not a hex registry value (need pairs of hex digits): {value[:60]!r}")
        return bytes.fromhex(compact)
    if not _B64_RE.match(compact) or len(compact) % 4:
        raise WinHttpSettingsError(f"not a base64 or hex registry value: {value[:60]!r}")
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as exc:
        raise WinHttpSettingsError(f"not valid base64 ({exc}): {value[:60]!r}") from None


def bytes_to_reg_hex(data: bytes) -> str:
    """Hex as ``reg add … /t REG_BINARY /d <hex>`` expects it (and ``reg query`` prints it)."""
    return data.hex().upper()


__all__ = [
    "DIRECT_ACCESS_VALUE", "FLAG_ALWAYS", "FLAG_PROXY", "VERSION_NETSH", "WinHttpSettings", "WinHttpSettingsError",
    "build_winhttp_settings", "bytes_to_reg_hex", "encode_winhttp_settings", "next_counter",
    "parse_winhttp_settings", "value_to_bytes",
]
