# PRIVATE to the crlfix.windows collection; may change without notice.
"""Parse what ``netsh winhttp show proxy`` and ``netsh winhttp show advproxy`` print.

The registry value is the source of truth (it does not depend on the display language); this text is
parsed to read hosts where only netsh output is at hand and to cross-check what ``set proxy`` reports.

``show proxy`` (the command: Microsoft Learn, "Netsh Commands for Windows Hypertext Transfer Protocol
(WINHTTP)"; its output on Windows Server 2012 R2-2019 as published captures show it) prints a header line
ending in ``:``, a blank line, then either one indented sentence (direct access) or two indented
``label :  value`` lines (proxy, then bypass; ``(none)`` when there is no bypass list). The parser relies on
that *structure*, not on the words, so it reads every display language whose layout is the same; the
header and direct-access sentences of English and German are recognised explicitly, other languages
fall back to the structure.

``show advproxy`` (build 20348+) prints a header and a JSON object. Its exact layout is *unverified*
against Microsoft documentation; the keys below come from published captures (revo.place, "Clearing
Windows proxy from PowerShell", 2022, Server 2022; community write-ups of Windows 11 output).
"""

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import split_bypass

# Header and direct-access sentences as Windows prints them, in English and German (fixtures/winhttp/SOURCES.md
# in tests/unit/plugins says which are recorded and which are unverified).
_HEADERS = ("current winhttp proxy settings:", "aktuelle winhttp-proxyeinstellungen:")
_DIRECT_SENTENCES = ("direct access (no proxy server).", "direkter zugriff (kein proxyserver).")
_PAIR_RE = re.compile(r"^(?P<label>[^:]+?)\s*:\s+(?P<value>\S.*?)\s*$")
# "(none)", "(keine)", …: bypass lists cannot contain parentheses, so a parenthesised value is a placeholder.
_PLACEHOLDER_RE = re.compile(r"^\(.*\)$")

# advproxy JSON key -> our key
_ADVPROXY_KEYS = {
    "ProxyIsEnabled": "proxy_is_enabled",
    "Proxy": "proxy",
    "ProxyBypass": "proxy_bypass",
    "AutoConfigIsEnabled": "autoconfig_is_enabled",
    "AutoconfigUrl": "autoconfig_url",
    "AutoDetect": "auto_detect",
    "PerUserProxySettings": "per_user_proxy_settings",
}
ADVPROXY_FIELDS = tuple(_ADVPROXY_KEYS.values())


class NetshOutputError(ValueError):
    """netsh printed something this parser does not understand; the message quotes it."""


@dataclass(frozen=True)
class NetshProxy:
    """The proxy settings netsh reported: ``mode`` is ``direct`` or ``proxy``; ``bypass`` as printed."""

    mode: str
    proxy: str = ""
    bypass: str = ""

    @property
    def bypass_list(self) -> list[str]:
        return split_bypass(self.bypass)


def parse_show_proxy(text: str) -> NetshProxy:
    """Parse ``netsh winhttp show proxy`` (or the echo of ``set``/``reset proxy``, which is the same).

    Raises:
        NetshOutputError: no header, or a body that is neither a sentence nor two ``label : value`` lines.
    """
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    header_at = next((i for i, line in enumerate(lines) if line.lower() in _HEADERS), None)
    if header_at is None:
        # Unknown language: the header is the first line that ends in ":" and has no value after it.
        header_at = next((i for i, line in enumerate(lines) if line.endswith(":") and not _PAIR_RE.match(line)),
                         None)
    if header_at is None:
        raise NetshOutputError(f"not the output of 'netsh winhttp show proxy': {text[:200]!r}")
    body = lines[header_at + 1:]
    pairs = [m for m in (_PAIR_RE.match(line) for line in body) if m]
    if body and body[0].lower() in _DIRECT_SENTENCES:
        return NetshProxy(mode="direct")
    if len(pairs) >= 2:
        proxy = pairs[0].group("value")
        bypass = pairs[1].group("value")
        if _PLACEHOLDER_RE.match(bypass):
            bypass = ""
        return NetshProxy(mode="proxy", proxy=proxy, bypass=bypass)
    if body and not pairs:
        # A single sentence in a language we do not know: direct access is the only one-sentence state.
        return NetshProxy(mode="direct")
    raise NetshOutputError(f"cannot read the proxy settings in: {text[:200]!r}")


def parse_show_advproxy(text: str) -> dict[str, t.Any]:
    """Parse ``netsh winhttp show advproxy`` (*unverified* layout: a header, then a JSON object).

    Returns:
        ``raw`` (the JSON object as printed) and every key of ``_ADVPROXY_KEYS`` in snake case (``None``
        when netsh did not print it).

    Raises:
        NetshOutputError: no JSON object in the text.
    """
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end < start:
        raise NetshOutputError(f"no JSON object in 'netsh winhttp show advproxy' output: {text[:200]!r}")
    try:
        raw = json.loads(text[start:end + 1])
    except ValueError as exc:
        raise NetshOutputError(f"'netsh winhttp show advproxy' printed invalid JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(raw, dict):
        raise NetshOutputError(f"'netsh winhttp show advproxy' printed {type(raw).__name__}, not an object")
    # Key case differs between captures (AutoConfigIsEnabled / AutoconfigIsEnabled): match case-insensitively.
    folded = {str(key).lower(): value for key, value in raw.items()}
    result: dict[str, t.Any] = {ours: folded.get(theirs.lower()) for theirs, ours in _ADVPROXY_KEYS.items()}
    result["raw"] = raw
    return result


__all__ = ["ADVPROXY_FIELDS", "NetshOutputError", "NetshProxy", "parse_show_advproxy", "parse_show_proxy"]
