"""The twin's own encoder/decoder of the ``WinHttpSettings`` REG_BINARY value.

Written independently of the collection's parser on purpose: the twin is the reference the collection is
tested against. Layout (windows-facts.md, "The WinHTTP proxy value"; all DWORDs little-endian):

    DWORD version (0x18)  DWORD change counter  DWORD flags (1 direct, 3 manual proxy)
    DWORD len + ASCII proxy   DWORD len + ASCII bypass

``netsh winhttp reset proxy`` on a host without a value yields exactly the bytes Microsoft documents for
"direct access" (``1800000000000000010000000000000000000000``, Microsoft Learn: "Use Group Policy to apply
WinHTTP proxy settings to Windows clients"): version 0x18, counter 0, flags 1, two empty strings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 0x18
FLAG_DIRECT = 0x1
FLAG_PROXY = 0x2
DIRECT_ACCESS_DOCUMENTED = bytes.fromhex("1800000000000000010000000000000000000000")


@dataclass(frozen=True)
class WinHttpSettings:
    """Decoded value; ``proxy``/``bypass`` are empty strings when absent."""

    version: int
    counter: int
    flags: int
    proxy: str
    bypass: str

    @property
    def is_direct(self) -> bool:
        return not self.flags & FLAG_PROXY


def encode(counter: int, proxy: str = "", bypass: str = "", version: int = VERSION) -> bytes:
    """Bytes as netsh writes them: flags 3 with a proxy, 1 without; strings are ASCII, not NUL-terminated."""
    proxy_b = proxy.encode("ascii")
    bypass_b = bypass.encode("ascii")
    flags = FLAG_DIRECT | (FLAG_PROXY if proxy_b else 0)
    return (
        struct.pack("<III", version, counter & 0xFFFFFFFF, flags)
        + struct.pack("<I", len(proxy_b))
        + proxy_b
        + struct.pack("<I", len(bypass_b))
        + bypass_b
    )


def decode(value: bytes) -> WinHttpSettings:
    """Parse a value; raises ValueError naming the offset when the bytes are truncated."""
    if len(value) < 16:
        raise ValueError(f"WinHttpSettings: {len(value)} bytes, need at least 16")
    version, counter, flags, proxy_len = struct.unpack_from("<IIII", value, 0)
    pos = 16
    if pos + proxy_len + 4 > len(value):
        raise ValueError(f"WinHttpSettings: proxy length {proxy_len} at offset 12 runs past {len(value)} bytes")
    proxy = value[pos : pos + proxy_len].decode("ascii", "replace")
    pos += proxy_len
    (bypass_len,) = struct.unpack_from("<I", value, pos)
    pos += 4
    if pos + bypass_len > len(value):
        raise ValueError(
            f"WinHttpSettings: bypass length {bypass_len} at offset {pos - 4} runs past {len(value)} bytes"
        )
    bypass = value[pos : pos + bypass_len].decode("ascii", "replace")
    return WinHttpSettings(version, counter, flags, proxy, bypass)


def next_counter(previous: bytes | None) -> int:
    """Counter for the next netsh write: previous + 1, or 0 when there is no readable previous value."""
    if previous is None:
        return 0
    try:
        return (decode(previous).counter + 1) & 0xFFFFFFFF
    except ValueError:
        return 0
