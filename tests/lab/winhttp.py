"""WinHTTP as CryptoAPI uses it on a server without direct internet access: proxy choice, bypass list, and one
real HTTP retrieval per URL with a deadline.

Proxy string (WINHTTP_PROXY_INFO, Microsoft Learn "WINHTTP_PROXY_INFO structure"): entries separated by ``;`` or
whitespace, each ``[<scheme>=][<scheme>://]<server>[:<port>]``. For a URL of scheme *s* the first ``s=`` entry
wins, else the first entry without ``scheme=``; a proxy without a port uses 80. A list holding only
``https=...`` sends ``http://`` URLs (every CRL) direct.

Bypass list (same page): entries separated by ``;`` or whitespace; ``<local>`` matches every host name without
a period; ``*`` is a wildcard for any run of characters (``*.contoso.com`` matches ``a.b.contoso.com`` but not
``contoso.com``; ``10.*`` matches ``10.1.2.3``); a bare name matches that host only; comparison is
case-insensitive on the host as written in the URL (not its address); an optional ``scheme://`` prefix and
``:port`` suffix restrict an entry. Loopback is not bypassed implicitly (that is WinINet's IE9+ rule; for WinHTTP
*unverified*, and no lab URL names a loopback host).

Outbound policy: the modelled server reaches only its intranet (``OutboundPolicy.intranet``; the proxy at
127.0.0.1 and the twins at 127.0.1.x-127.0.3.x). A direct connection to any other address is dropped like a
firewall would: nothing is sent, the caller just waits until its timeout (interruptible by ``cancel``), then gets
ERROR_WINHTTP_TIMEOUT. Through the proxy the request is a real HTTP request to squid.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

USER_AGENT = "Microsoft-CryptoAPI/10.0"  # what cryptnet.dll sends
DEFAULT_INTRANET = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/24", "127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24")
)
MAX_BODY = 64 * 1024 * 1024

# WinHTTP error codes (Microsoft Learn, "Error Messages (Winhttp.h)").
ERROR_WINHTTP_TIMEOUT = "ERROR_WINHTTP_TIMEOUT (12002): The operation timed out"
ERROR_WINHTTP_NAME_NOT_RESOLVED = (
    "ERROR_WINHTTP_NAME_NOT_RESOLVED (12007): The server name or address could not be resolved"
)
ERROR_WINHTTP_CANNOT_CONNECT = (
    "ERROR_WINHTTP_CANNOT_CONNECT (12029): A connection with the server could not be established"
)
ERROR_WINHTTP_CONNECTION_ERROR = (
    "ERROR_WINHTTP_CONNECTION_ERROR (12030): The connection with the server was terminated abnormally"
)
ERROR_WINHTTP_INVALID_SERVER_RESPONSE = (
    "ERROR_WINHTTP_INVALID_SERVER_RESPONSE (12152): The server response could not be parsed"
)
ERROR_WINHTTP_UNRECOGNIZED_SCHEME = "ERROR_WINHTTP_UNRECOGNIZED_SCHEME (12006): The URL scheme could not be recognized"

_PROXY_ENTRY = re.compile(
    r"^(?:(?P<for>[a-z]+)=)?(?:(?P<scheme>[a-z]+)://)?(?P<host>[^:/\s]+)(?::(?P<port>\d+))?$", re.I
)


@dataclass(frozen=True)
class WinHttpProxy:
    """A host's WinHTTP proxy settings as ``netsh winhttp show proxy`` reports them (``proxy`` None = direct)."""

    proxy: str | None = None
    bypass: str | None = None
    _entries: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = []
        for raw in re.split(r"[;\s]+", (self.proxy or "").strip()):
            if not raw:
                continue
            m = _PROXY_ENTRY.match(raw)
            if not m or (m["port"] and not 0 < int(m["port"]) < 65536):
                raise ValueError(f"proxy: cannot parse entry {raw!r} of {self.proxy!r}")
            entries.append(((m["for"] or "").lower(), m["host"], int(m["port"] or 80)))
        object.__setattr__(self, "_entries", tuple(entries))

    @property
    def is_direct(self) -> bool:
        return not self._entries

    def proxy_for(self, url: str) -> tuple[str, int] | None:
        """The (host, port) of the proxy WinHTTP uses for ``url``, or None for a direct connection."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "")
        if self.is_direct or bypassed(host, parts.port, scheme, self.bypass):
            return None
        for wanted in (scheme, ""):
            for entry_scheme, proxy_host, proxy_port in self._entries:
                if entry_scheme == wanted:
                    return proxy_host, proxy_port
        return None


def bypassed(host: str, port: int | None, scheme: str, bypass: str | None) -> bool:
    """True when WinHTTP's bypass list sends a request for ``host`` direct (rules in the module docstring)."""
    host = host.lower()
    for entry in re.split(r"[;\s]+", (bypass or "").strip().lower()):
        if not entry:
            continue
        if entry == "<local>":
            if "." not in host:
                return True
            continue
        entry_scheme = None
        if "://" in entry:
            entry_scheme, entry = entry.split("://", 1)
        entry_port = None
        if re.search(r":\d+$", entry):
            entry, port_text = entry.rsplit(":", 1)
            entry_port = int(port_text)
        if entry_scheme and entry_scheme != scheme:
            continue
        if entry_port is not None and entry_port != (port or (443 if scheme == "https" else 80)):
            continue
        if re.fullmatch(re.escape(entry).replace(r"\*", ".*"), host):
            return True
    return False


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses the modelled server can reach directly; everything else is silently dropped."""

    intranet: tuple = DEFAULT_INTRANET

    def reachable(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.intranet)


DEFAULT_POLICY = OutboundPolicy()


def resolve(name: str, names: dict[str, str]) -> str | None:
    """The lab's DNS: IP literals as they are, else the lab's name map (case-insensitive)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    return {k.lower(): v for k, v in names.items()}.get(name.lower().rstrip("."))


def _result(url: str, via: str, started: float, **kw) -> dict:
    out = {"url": url, "via": via, "reachable": False, "http_status": None, "bytes": 0, "content": b"", "error": None,
           "headers": {}}
    out.update(kw)
    out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return out


def blackhole_wait(timeout: float, cancel: threading.Event | None) -> None:
    """What a dropped SYN looks like to the caller: nothing happens until the timeout (or a cancel)."""
    (cancel or threading.Event()).wait(max(0.0, timeout))


def http_get(
    url: str,
    *,
    proxy: WinHttpProxy,
    names: dict[str, str],
    timeout: float,
    policy: OutboundPolicy | None = None,
    cancel: threading.Event | None = None,
    user_agent: str = USER_AGENT,
    method: str = "GET",
) -> dict:
    """One WinHTTP GET (or ``method`` HEAD) of ``url`` within ``timeout`` seconds (connect + response), sending
    ``user_agent``.

    Returns ``url, via ("proxy"/"direct"), reachable, http_status, elapsed_ms, bytes, content, error, headers``
    (the answer's headers, names lower-cased, a repeated one joined with ", " as RFC 9110 5.3 allows; {} without one).
    ``reachable`` is true when the origin answered (any status); an error page generated by the proxy (squid's
    ``X-Squid-Error``) means the origin was not reached. Never raises for network failures.
    """
    started = time.monotonic()
    if timeout <= 0:
        raise ValueError(f"timeout: must be positive, got {timeout!r}")
    if method not in ("GET", "HEAD"):
        raise ValueError(f"method: expected GET or HEAD, got {method!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        return _result(url, "direct", started, error=ERROR_WINHTTP_UNRECOGNIZED_SCHEME)
    chosen = proxy.proxy_for(url)
    via = "proxy" if chosen else "direct"
    host, port = chosen or (parts.hostname, parts.port or 80)
    address = resolve(host, names)
    if address is None:
        return _result(url, via, started, error=ERROR_WINHTTP_NAME_NOT_RESOLVED)
    if not (policy or DEFAULT_POLICY).reachable(address):
        blackhole_wait(timeout, cancel)
        return _result(url, via, started, error=ERROR_WINHTTP_TIMEOUT)
    target = url if chosen else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    request = (
        f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    deadline = started + timeout
    try:
        raw = _exchange(address, port, request, deadline, cancel)
    except TimeoutError:
        return _result(url, via, started, error=ERROR_WINHTTP_TIMEOUT)
    except ConnectionRefusedError:
        return _result(url, via, started, error=ERROR_WINHTTP_CANNOT_CONNECT)
    except OSError as exc:
        return _result(url, via, started, error=f"{ERROR_WINHTTP_CONNECTION_ERROR} ({exc})")
    try:
        status, headers, body = _parse_response(raw, no_body=method == "HEAD")
    except ValueError:
        return _result(url, via, started, error=ERROR_WINHTTP_INVALID_SERVER_RESPONSE)
    proxy_error = "x-squid-error" in headers
    error = None
    if proxy_error:
        error = f"HTTP {status} from the proxy: {headers['x-squid-error']}"
    elif status != 200:
        error = f"HTTP {status}"
    return _result(url, via, started, reachable=not proxy_error, http_status=status, bytes=len(body), content=body,
                   error=error, headers=headers)


def _exchange(address: str, port: int, request: bytes, deadline: float, cancel: threading.Event | None) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    with socket.create_connection((address, port), timeout=remaining) as sock:
        sock.sendall(request)
        chunks, size = [], 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                raise TimeoutError
            sock.settimeout(min(remaining, 0.25))  # short slices so a cancel is seen promptly
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return b"".join(chunks)
            chunks.append(data)
            size += len(data)
            if size > MAX_BODY:
                raise OSError(f"response larger than {MAX_BODY} bytes")


def _parse_response(raw: bytes, *, no_body: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body; the answer to a HEAD has no body, whatever its Content-Length says (RFC 9110 9.3.2)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no end of headers")
    lines = head.decode("iso-8859-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise ValueError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _sep, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if no_body:
        body = b""
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return int(m.group(1)), headers, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _sep, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        data = rest[size + 2 :]
