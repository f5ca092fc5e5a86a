"""``crl_fetch`` schema 1: fetch revocation URLs through the host's WinHTTP proxy, all at once (host-scripts.md).

On Windows the script opens a ``WinHttp.WinHttpRequest.5.1`` per URL with the default proxy setting (the machine
WinHTTP proxy and bypass list, native view) and waits for all of them, so the total time is one timeout, not the
sum. The twin does the same with ``tests.lab.cryptoapi.retrieve`` (real HTTP through squid, or the modelled
firewall drop for a direct connection to the "internet"), one thread per URL, off the lab's event loop.
This fetch neither reads nor fills the CryptoAPI URL cache; ``purge_cache`` runs ``certutil -urlcache * delete``
first, exactly as the twin's certutil does it.

``host_audit``'s time box (``fetch_urls(box=...)``): the script polls its requests and, when the box ends, calls
``IWinHttpRequest::Abort`` on every one still open and reports it with the box's text. The twin stops waiting at
the same moment, answers the open URLs the same way and discards whatever their threads bring later (the box's
cancel event ends their modelled waits at once).

Each result carries ``winhttp_error`` (the WinHTTP error number of a request without an HTTP answer, null otherwise)
and ``headers`` (``KEPT_HEADERS`` of the answer, lower-cased), as ``_crl.ps1`` reads them.

``foreign_agent`` (host-scripts.md, "The foreign agent"): a URL that got an HTTP answer is asked once more, ``HEAD``,
through the same proxy with WinHttpRequest's own default agent (``WINHTTPREQUEST_AGENT``), and the answer is its
``foreign_agent``. The first answer is kept before the second request starts: a box that ends during the second one
costs only ``foreign_agent.error``, as in the script.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.lab import cryptoapi
from tests.lab.winhttp import ERROR_WINHTTP_TIMEOUT, ERROR_WINHTTP_UNRECOGNIZED_SCHEME, http_get
from tests.twin import identities, native_tools, revocation
from tests.twin.scripts import ScriptContext, ScriptError, require

if TYPE_CHECKING:
    from tests.twin.scripts.host_audit import TimeBox

NAME = "crl_fetch"
DEFAULT_DOCUMENT_CAP = 16777216  # _crl.ps1 $CrlfixDefaultDocumentCap
SCHEMAS = {1}
BLOCKING = True  # network waits: run in a worker thread, never on the lab's event loop


def windows_text(error: str) -> str:
    """``ERROR_WINHTTP_TIMEOUT (12002): The operation timed out (detail)`` -> ``The operation timed out``.

    WinHTTP error texts as FormatMessage gives them (Microsoft Learn, "Error Messages (Winhttp.h)"); the lab's
    winhttp model prefixes each with its symbolic name and code, which the COM object's message does not carry.
    """
    text = error.split("): ", 1)[1] if error.startswith("ERROR_WINHTTP_") and "): " in error else error
    return text.split(" (", 1)[0].strip()


UNRECOGNIZED_SCHEME = windows_text(ERROR_WINHTTP_UNRECOGNIZED_SCHEME)
TIMED_OUT = windows_text(ERROR_WINHTTP_TIMEOUT)
HTTPS_NOT_MODELLED = "The twin does not model HTTPS retrieval (tests/twin/README.md)"
# The User-Agent a WinHttp.WinHttpRequest.5.1 sends when nobody sets one (read back on Windows through
# WinHttpRequestOption_UserAgentString): practitioner knowledge, *unverified*; the script reports what it read.
WINHTTPREQUEST_AGENT = "Mozilla/4.0 (compatible; Win32; WinHttp.WinHttpRequest.5)"


def _validate(args: dict[str, Any]) -> tuple[list[str], float, bool, int]:
    urls = require(args, "urls", list)
    for index, url in enumerate(urls):
        if not isinstance(url, str) or not url:
            raise ScriptError(f"argument 'urls[{index}]': expected a non-empty string, got {url!r}")
    timeout_ms = require(args, "timeout_ms", int, 15000)
    if isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise ScriptError(f"argument 'timeout_ms': expected a positive integer, got {timeout_ms!r}")
    purge = require(args, "purge_cache", bool, False)
    max_bytes = require(args, "max_bytes", int, 4194304)
    if isinstance(max_bytes, bool) or max_bytes < 0:
        raise ScriptError(f"argument 'max_bytes': expected a non-negative integer, got {max_bytes!r}")
    return urls, timeout_ms / 1000, purge, max_bytes


def foreign_agent_asked(args: dict[str, Any]) -> bool:
    """``foreign_agent``, default false (``_crl.ps1`` ``$CrlfixFetchOptions``)."""
    value = args.get("foreign_agent", False)
    if not isinstance(value, bool):
        raise ScriptError(f"argument 'foreign_agent': expected a boolean, got {value!r}")
    return value


def document_cap(args: dict[str, Any]) -> int:
    """``max_document_bytes``, the script's ``Get-CrlfixArgument`` with its default (16 MiB, ``_crl.ps1``)."""
    value = args.get("max_document_bytes")
    return DEFAULT_DOCUMENT_CAP if value is None else int(value)


class DocumentBudget:
    """The bodies one document may still hold (``_crl.ps1`` ``$Budget``): granted first come, first served."""

    def __init__(self, max_document_bytes: int) -> None:
        self.left_bytes = max_document_bytes
        self._lock = threading.Lock()

    def grant(self, size: int) -> bool:
        with self._lock:
            if size > self.left_bytes:
                return False
            self.left_bytes -= size
            return True


def _purge(ctx: ScriptContext) -> dict[str, Any]:
    with revocation.state_lock(ctx.state):
        res = native_tools.certutil(ctx.state, ["-urlcache", "*", "delete"])
    return {"rc": res.rc, "output": (res.stdout + res.stderr).replace("\n", "\r\n")}


# The response headers the script keeps (_crl.ps1: who answered: a proxy's Via and error page, a challenge, the server).
KEPT_HEADERS = ("via", "x-squid-error", "proxy-authenticate", "www-authenticate", "server")
MAX_HEADER_CHARS = 512
_WINHTTP_CODE = re.compile(r"^ERROR_WINHTTP_\w+ \((\d+)\)")


def winhttp_code(error: str | None) -> int | None:
    """The WinHTTP error number of the lab's error text (``ERROR_WINHTTP_TIMEOUT (12002): ...`` -> 12002): what the
    script reads from the COM exception's HRESULT (its low word), docs/dev/host-scripts.md."""
    match = _WINHTTP_CODE.match(error or "")
    return int(match.group(1)) if match else None


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: headers[name][:MAX_HEADER_CHARS] for name in KEPT_HEADERS if name in headers}


def _result(url: str) -> dict[str, Any]:
    return {"url": url, "status": None, "elapsed_ms": 0, "bytes": None, "body_b64": None, "truncated": False,
            "truncated_by": None, "error": None, "foreign_agent": None, "winhttp_error": None, "headers": {}}


def _unanswered(url: str, started: float, timeout: float, box: TimeBox) -> dict[str, Any]:
    """A request still open when the time box ended: aborted. Its own timeout, if it ended first, keeps its text
    (and ERROR_WINHTTP_TIMEOUT's number); one the box cut has no WinHTTP error of its own."""
    elapsed = time.monotonic() - started
    own = elapsed >= timeout
    return {**_result(url), "elapsed_ms": int(elapsed * 1000), "error": TIMED_OUT if own else box.cut(),
            "winhttp_error": 12002 if own else None}


def _fetch_one(url: str, started: float, timeout: float, max_bytes: int, ctx: ScriptContext,
               box: TimeBox | None = None, budget: DocumentBudget | None = None,
               answered: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One URL; with ``answered`` (foreign_agent asked), an answered URL is put there, then asked with the foreign
    agent."""
    out: dict[str, Any] = _result(url)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        out["error"] = UNRECOGNIZED_SCHEME  # refused before sending: elapsed 0
        return out
    if scheme == "https":
        out["error"] = HTTPS_NOT_MODELLED
        return out
    world = revocation.world()
    got = cryptoapi.retrieve(
        url,
        proxy=revocation.host_proxy(ctx.state),
        names=world.names,
        timeout=timeout,
        policy=world.policy,
        cancel=box.cancel if box is not None else revocation.SHUTDOWN,
        user_agent=identities.cryptoapi_agent(ctx.state),  # the script sets CryptoAPI's agent
    )
    if box is not None and box.expired():
        return _unanswered(url, started, timeout, box)  # ended after the box: the script had aborted it
    out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    if got["http_status"] is None:
        out["error"] = windows_text(got["error"] or "The operation timed out")
        out["winhttp_error"] = winhttp_code(got["error"])
        return out
    out["headers"] = kept_headers(got.get("headers") or {})
    # Any HTTP status is an answer, a 404 or a proxy's 503 included: status and body, no error.
    body: bytes = got["content"]
    keep = min(len(body), max_bytes)
    out.update(status=got["http_status"], bytes=len(body), truncated=len(body) > keep,
               truncated_by="max_bytes" if len(body) > keep else None)
    if budget is not None and not budget.grant(keep):
        # The document's cap: the body is left out whole; a smaller one arriving later may still fit.
        keep = 0
        out.update(truncated=True, truncated_by="document_cap")
    out["body_b64"] = base64.b64encode(body[:keep]).decode("ascii")
    if answered is None:
        return out
    answered[url] = out
    again = time.monotonic()
    foreign = http_get(url, proxy=revocation.host_proxy(ctx.state), names=world.names, timeout=timeout,
                       policy=world.policy, cancel=box.cancel if box is not None else revocation.SHUTDOWN,
                       user_agent=WINHTTPREQUEST_AGENT, method="HEAD")
    if box is not None and box.expired():
        # Abandoned by the script's wait: the job never handed over its foreign answer, so no agent is known either.
        return _with_foreign(out, None, error=TIMED_OUT if time.monotonic() - again >= timeout else box.cut())
    if foreign["http_status"] is None:
        return _with_foreign(out, WINHTTPREQUEST_AGENT, error=windows_text(foreign["error"] or TIMED_OUT))
    return _with_foreign(out, WINHTTPREQUEST_AGENT, status=foreign["http_status"])


def _with_foreign(out: dict[str, Any], agent: str | None, *, status: int | None = None,
                  error: str | None = None) -> dict[str, Any]:
    """``out`` with its ``foreign_agent`` answer (a copy: what ``answered`` holds stays the first answer alone)."""
    return {**out, "foreign_agent": {"agent": agent, "status": status, "error": error}}


def fetch_urls(ctx: ScriptContext, urls: list[str], timeout: float, max_bytes: int, *,
               box: TimeBox | None = None, max_document_bytes: int = DEFAULT_DOCUMENT_CAP,
               foreign_agent: bool = False) -> list[dict[str, Any]]:
    """The ``results`` for ``urls``, all started at once; with ``box``, nothing is waited for after it ends.

    The bodies kept add up to at most ``max_document_bytes``, granted in the order they arrive, as the script does.
    """
    started = time.monotonic()
    if not urls:
        return []
    budget = DocumentBudget(max_document_bytes)
    answered: dict[str, dict[str, Any]] | None = {} if foreign_agent else None
    pool = ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="crl_fetch")
    try:
        futures = [pool.submit(_fetch_one, url, started, timeout, max_bytes, ctx, box, budget, answered)
                   for url in urls]
        if box is None:
            return [f.result() for f in futures]
        wait(futures, timeout=box.remaining())
        return [f.result() if f.done() else _open_at_box(url, started, timeout, box, answered)
                for url, f in zip(urls, futures, strict=True)]
    finally:
        pool.shutdown(wait=box is None)


def _open_at_box(url: str, started: float, timeout: float, box: TimeBox,
                 answered: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """A URL still open when the box ended: unanswered, or (only its foreign-agent request open) its answer kept."""
    first = (answered or {}).get(url)
    if first is None:
        return _unanswered(url, started, timeout, box)
    return _with_foreign(first, None, error=box.cut())


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    urls, timeout, purge, max_bytes = _validate(args)
    foreign = foreign_agent_asked(args)
    purge_doc = _purge(ctx) if purge else None
    return {"purge": purge_doc,
            "results": fetch_urls(ctx, urls, timeout, max_bytes, max_document_bytes=document_cap(args),
                                  foreign_agent=foreign)}
