# PRIVATE to the crlfix.windows collection; may change without notice.
"""Validate, normalise and compare WinHTTP proxy and bypass values.

Two kinds of functions:

* ``validate_*`` check what a user asks for. They accept only a strict grammar built from an allow-list
  of characters, so nothing that reaches a host can be a command: quotes (ASCII and typographic),
  whitespace, ``$``, backticks, ``&``, ``|``, ``%``, ``^``, parentheses, newlines and non-ASCII are all
  refused, and ``;`` only separates the entries of a per-scheme proxy. Errors name the field and value.
* ``*_key`` turn any string read from a host (which may not pass validation) into a comparison key.

What "equal" means (assumptions, stated because Windows does not document its matching):

* Host names compare case-insensitively (DNS names are case-insensitive; WinHTTP lower-cases host names
  before matching). IPv6 literals compare by address (``[::1]`` equals ``[0:0::1]``).
* Surrounding whitespace and empty entries are ignored: WinHTTP splits both lists on ``;`` and whitespace.
* Bypass order and duplicates do not matter: an address bypasses the proxy when any entry matches.
* Per-scheme proxy order does not matter (``http=a:1;https=b:2`` equals ``https=b:2;http=a:1``).
* A port is part of the value: ``proxy:80`` and ``proxy`` (no port) are different, even though WinHTTP
  would use port 80 for both; we do not guess defaults and at worst rewrite an equivalent value once.

What is accepted is what ``ansible.windows.win_http_proxy`` accepts (its ``proxy`` option: ``hostname``,
``hostname:port``, ``protocol=hostname:port`` for http, https, ftp and socks, or a dict keyed by those
protocols), each part checked against the grammar above.
"""

from __future__ import annotations

import ipaddress
import re
import typing as t

# win_http_proxy builds a per-scheme string from a dict in this order (ansible.windows win_http_proxy.ps1).
PROXY_SCHEMES = ("http", "https", "ftp", "socks")
BYPASS_MACROS = ("<local>", "<-loopback>")

_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_WILD_LABEL_RE = re.compile(r"^[a-z0-9_*-]{1,63}$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")
_PROXY_CHARS = re.compile(r"[A-Za-z0-9.\-_:\[\]=;]")
_BYPASS_CHARS = re.compile(r"[A-Za-z0-9.\-_:\[\]*<>]")


class ProxyValueError(ValueError):
    """A proxy or bypass value is refused; the message names the field and the value."""


def _first_forbidden(value: str, allowed: re.Pattern[str]) -> str | None:
    for char in value:
        if not allowed.fullmatch(char):
            return char
    return None


def _describe(char: str) -> str:
    names = {" ": "a space", "\t": "a tab", "\n": "a newline", "\r": "a carriage return", ";": "';'"}
    if char in names:
        return names[char]
    if not char.isascii() or not char.isprintable():
        return f"U+{ord(char):04X}"
    return repr(char)


def _check_port(port: str, field: str, value: str) -> int:
    if not _PORT_RE.match(port) or not 1 <= int(port) <= 65535:
        raise ProxyValueError(f"{field}: {value!r} has port {port!r}; a port must be a number from 1 to 65535")
    return int(port)


def _check_host(host: str, field: str, value: str) -> str:
    """Validate a host name, IPv4 address or bracketed IPv6 address; return it lower-cased."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise ProxyValueError(f"{field}: {value!r} has an unterminated IPv6 literal {host!r}")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ProxyValueError(f"{field}: {value!r} has an invalid IPv6 address {host!r}") from None
    lowered = host.lower()
    if re.fullmatch(r"[0-9.]+", lowered):
        try:
            return str(ipaddress.IPv4Address(lowered))
        except ValueError:
            raise ProxyValueError(f"{field}: {value!r} has an invalid IPv4 address {host!r}") from None
    labels = lowered.split(".")
    if not host or len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise ProxyValueError(f"{field}: {value!r} has an invalid host name {host!r}")
    return lowered


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            return hostport, None
        rest = hostport[end + 1:]
        return hostport[:end + 1], (rest[1:] if rest.startswith(":") else (rest or None))
    if hostport.count(":") == 1:
        host, port = hostport.split(":")
        return host, port
    return hostport, None


def validate_proxy(value: t.Any, *, field: str = "proxy") -> str:
    """Check a proxy as ``netsh winhttp set proxy proxy-server=`` takes it; return it without surrounding spaces.

    Accepted: ``host``, ``host:port``, ``ipv4[:port]``, ``[ipv6][:port]``, or per-scheme entries
    ``scheme=host[:port]`` joined by ``;`` for the schemes of ``PROXY_SCHEMES`` (each at most once). Without a
    port WinHTTP uses the scheme's default port (Microsoft Learn, WINHTTP_PROXY_INFO).
    """
    if not isinstance(value, str) or not value.strip(" "):
        raise ProxyValueError(f"{field}: expected a non-empty string like 'proxy.example.com:8080', got {value!r}")
    text = value.strip(" ")  # only spaces: a newline or tab is refused below, wherever it is
    bad = _first_forbidden(text, _PROXY_CHARS)
    if bad is not None:
        raise ProxyValueError(f"{field}: {value!r} contains {_describe(bad)}, which is not allowed in a proxy")
    entries = text.split(";")
    per_scheme = any("=" in entry for entry in entries)
    if len(entries) > 1 and not per_scheme:
        raise ProxyValueError(f"{field}: {value!r}: ';' only separates per-scheme entries like 'http=h:p;https=h:p'")
    seen: set[str] = set()
    for entry in entries:
        scheme, hostport = entry.split("=", 1) if "=" in entry else ("", entry)
        if per_scheme and scheme.lower() not in PROXY_SCHEMES:
            raise ProxyValueError(f"{field}: {value!r}: per-scheme entry {entry!r} must start with "
                                  f"{', '.join(s + '=' for s in PROXY_SCHEMES)}")
        if scheme.lower() in seen:
            raise ProxyValueError(f"{field}: {value!r} names scheme {scheme!r} twice")
        seen.add(scheme.lower())
        host, port = _split_host_port(hostport)
        _check_host(host, field, value)
        if port is not None:
            _check_port(port, field, value)
    return text


class ProxyKeysError(ProxyValueError):
    """A proxy dict has keys other than the schemes; the text is win_http_proxy's, word for word."""


def proxy_from_dict(value: t.Mapping[str, t.Any], *, field: str = "proxy") -> str:
    """The per-scheme string of a proxy dict ``{http: ..., https: ..., ftp: ..., socks: ...}``, validated.

    As ``ansible.windows.win_http_proxy`` builds it: entries in the order of ``PROXY_SCHEMES``, whatever the
    dict's order; unknown keys are refused with its message (sorted, so the text does not depend on the order).
    """
    invalid = sorted(str(key) for key in value if key not in PROXY_SCHEMES)
    if invalid:
        raise ProxyKeysError(f"Invalid keys found in {field}: {', '.join(invalid)}. "
                             f"Valid keys are {', '.join(PROXY_SCHEMES)}.")
    entries = []
    for scheme in PROXY_SCHEMES:
        if scheme in value:
            hostport = value[scheme]
            if not isinstance(hostport, str) or not hostport.strip(" "):
                raise ProxyValueError(f"{field}.{scheme}: expected a non-empty string like 'proxy.example.com:8080', "
                                      f"got {hostport!r}")
            if "=" in hostport or ";" in hostport:
                raise ProxyValueError(f"{field}.{scheme}: {hostport!r} must be host or host:port, without '=' or ';'")
            entries.append(f"{scheme}={hostport.strip(' ')}")
    if not entries:
        raise ProxyValueError(f"{field}: an empty dict names no proxy; use '' (or leave {field} out) for direct access")
    return validate_proxy(";".join(entries), field=field)


def _validate_bypass_entry(entry: str, field: str) -> str:
    lowered = entry.lower()
    if lowered in BYPASS_MACROS:
        return lowered
    bad = _first_forbidden(entry, _BYPASS_CHARS)
    if bad is not None or "<" in entry or ">" in entry:
        shown = _describe(bad) if bad is not None else "'<' or '>'"
        raise ProxyValueError(
            f"{field}: entry {entry!r} contains {shown}; allowed are host names, IP addresses, '*' wildcards, "
            f"an optional ':port' and the macros {', '.join(BYPASS_MACROS)}"
        )
    if ":" in entry and not entry.startswith("[") and entry.count(":") > 1:
        try:
            ipaddress.IPv6Address(entry)  # a bare IPv6 address (no port)
            return lowered
        except ValueError:
            raise ProxyValueError(f"{field}: entry {entry!r} is not a valid IPv6 address") from None
    host, port = _split_host_port(entry)
    if port is not None:
        _check_port(port, field, entry)
    if "*" not in host:
        _check_host(host, field, entry)
    elif not all(_WILD_LABEL_RE.match(label) for label in host.lower().split(".")) or len(host) > 253:
        raise ProxyValueError(f"{field}: entry {entry!r} is not a valid wildcard pattern like '*.example.com'")
    return lowered


def validate_bypass(entries: t.Any, *, field: str = "bypass") -> list[str]:
    """Check a bypass list (one entry per item); return it stripped, without duplicates, order kept.

    Duplicates are detected case-insensitively; the first spelling is kept.
    """
    if entries is None:
        return []
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ProxyValueError(f"{field}: expected a list of entries, got {type(entries).__name__} {entries!r}")
    result: list[str] = []
    seen: set[str] = set()
    for item in entries:
        if not isinstance(item, str) or not item.strip(" "):
            raise ProxyValueError(f"{field}: entries must be non-empty strings, got {item!r}")
        entry = item.strip(" ")
        if ";" in entry:
            raise ProxyValueError(f"{field}: entry {item!r} contains ';'; give one entry per list item")
        key = _validate_bypass_entry(entry, field)
        if key not in seen:
            seen.add(key)
            result.append(entry)
    return result


def split_bypass(raw: str) -> list[str]:
    """Split a bypass string as stored on the host (``;`` or whitespace separated)."""
    return [entry for entry in re.split(r"[;\s]+", raw or "") if entry]


def _hostport_key(hostport: str) -> str:
    host, port = _split_host_port(hostport.strip().lower())
    if host.startswith("[") and host.endswith("]"):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            pass
    return host if port is None else f"{host}:{port.lstrip('0') or '0'}"


def proxy_key(value: str | None) -> frozenset[tuple[str, str]]:
    """Comparison key of any proxy string (validated or read from a host): ``{(scheme, host:port)}``."""
    key = set()
    for entry in split_bypass(value or ""):
        scheme, hostport = entry.split("=", 1) if "=" in entry else ("", entry)
        key.add((scheme.lower(), _hostport_key(hostport)))
    return frozenset(key)


def bypass_key(entries: t.Iterable[str] | str | None) -> frozenset[str]:
    """Comparison key of a bypass list or string: the lower-cased set of entries."""
    items = split_bypass(entries) if isinstance(entries, str) else list(entries or [])
    keys = set()
    for item in items:
        lowered = item.strip().lower()
        if ":" in lowered and not lowered.startswith("[") and lowered.count(":") > 1:
            try:
                lowered = ipaddress.IPv6Address(lowered).compressed
            except ValueError:
                pass
        elif lowered:
            lowered = _hostport_key(lowered)
        if lowered:
            keys.add(lowered)
    return frozenset(keys)


__all__ = [
    "BYPASS_MACROS", "PROXY_SCHEMES", "ProxyKeysError", "ProxyValueError", "bypass_key", "proxy_from_dict", "proxy_key",
    "split_bypass", "validate_bypass", "validate_proxy",
]
