# PRIVATE to the crlfix.windows collection; may change without notice.
"""crl_retrieval_check: fetch revocation endpoints from the host, judge what came back on the controller.

The host runs ``_ps1/crl_fetch.ps1`` (docs/dev/host-scripts.md, ``crl_fetch``):
every http/https URL is requested at once with the ``WinHttp.WinHttpRequest.5.1``
COM object. That object, without ``SetProxy``, uses
``HTTPREQUEST_PROXYSETTING_DEFAULT``, which Microsoft Learn
("IWinHttpRequest::SetProxy") documents as equivalent to ``PRECONFIG``: the
proxy and bypass list in the registry that ``netsh winhttp set proxy`` (the
successor of proxycfg.exe) writes, i.e. the path CryptoAPI's own retrieval
takes. ``Open(..., async=True)`` + ``Send()`` start a request without waiting;
``WaitForResponse(0)`` (Learn: "IWinHttpRequest::WaitForResponse", timeout in
seconds, returns FALSE when it ran out and does not abort) lets one loop poll
all of them, so the host's total time is one ``timeout_ms`` and every URL gets
its own elapsed time. The script aborts a request still running at
``timeout_ms`` with the text WinHTTP gives for ERROR_WINHTTP_TIMEOUT (12002,
0x80072EE2): "The operation timed out".

LDAP URLs are never sent: WinHTTP proxies only HTTP(S), so an LDAP distribution
point cannot be made reachable by the machine proxy. OCSP responders are only
checked for reachability (any HTTP answer that is not a proxy's gateway error);
no OCSP request is built or parsed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import typing as t
from urllib.parse import urlsplit

from ansible_collections.crlfix.windows.plugins.module_utils._crl_info import CrlParseError, crl_info
from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import HAS_CRYPTOGRAPHY
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    CertificateParseError,
    iso_utc,
    load_certificate,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._argspec import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script

if HAS_CRYPTOGRAPHY:
    from cryptography.hazmat.primitives.serialization import pkcs7

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

KINDS: tuple[str, ...] = ("crl", "delta_crl", "ocsp", "ca_issuers")
SCHEMES: tuple[str, ...] = ("http", "https", "ldap")
# The module's documented max_bytes; the fix_crl run, which has no such option, fetches with it too.
DEFAULT_MAX_BYTES: int = module_defaults("crl_retrieval_check")["max_bytes"]
MAX_TIMEOUT_MS = 600000
LDAP_ERROR = "not fetched: LDAP is not fetched over an HTTP proxy (the WinHTTP proxy carries only http and https)"
# What a forward proxy answers when it could not reach the origin server (squid: ERR_CONNECT_FAIL is 503,
# ERR_READ_TIMEOUT 504); such an answer proves the proxy is up, not that the endpoint is reachable.
GATEWAY_ERRORS = frozenset({502, 503, 504})
# An answer that refuses the request (the server: 401/403; the proxy: 407, or 403 by a policy such as one that lets
# only CryptoAPI's own User-Agent through): the path answered, but nothing usable came back, so the endpoint is not
# usable, an OCSP responder included.
REFUSALS = {401: "the server asks for authentication", 403: "refused (by the server, or by the proxy's policy)",
            407: "the proxy asks for authentication"}
# What each kind should parse as; a plain URL string (kind null) may be any of them.
_EXPECTED: dict[str | None, frozenset[str]] = {
    "crl": frozenset({"crl", "delta_crl"}),
    "delta_crl": frozenset({"delta_crl", "crl"}),
    "ca_issuers": frozenset({"certificate"}),
    None: frozenset({"crl", "delta_crl", "certificate"}),
}


_UNSAFE_URL_CHARS = frozenset('"<>\\^`{|}')


class EndpointError(ValueError):
    """An option value is not acceptable; the message names the field and the value."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    url: str
    kind: str | None

    @property
    def scheme(self) -> str:
        return self.url.split(":", 1)[0].lower()


def validate_url(value: t.Any, *, field: str) -> str:
    """Return ``value`` if it is an http, https or ldap URL without whitespace or control characters.

    The one exception: plain spaces are accepted in LDAP URLs, which are reported but never fetched.
    """
    if not isinstance(value, str) or not value:
        raise EndpointError(f"{field}: expected a URL string, got {value!r}")
    # An LDAP URL may hold plain spaces (CN=Public Key Services, as some certificates carry it unescaped);
    # it is never fetched, so only control characters matter there.
    is_ldap = value[:5].lower() == "ldap:"
    bad = [ch for ch in value if (ch.isspace() and not (is_ldap and ch == " ")) or ord(ch) < 32 or ord(ch) == 127]
    if bad:
        raise EndpointError(f"{field}: URL contains whitespace or control characters: {value!r}")
    # RFC 3986 (2.2, 2.3) leaves no room for these unencoded; a CDP is an IA5String URI (RFC 5280 4.2.1.13), so a
    # certificate that carries one is malformed or hostile.
    unsafe = sorted({ch for ch in value if ch in _UNSAFE_URL_CHARS or not ch.isascii()})
    if unsafe and not is_ldap:
        raise EndpointError(f"{field}: URL contains {', '.join(repr(ch) for ch in unsafe)}, which a URL must "
                            f"percent-encode: {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"{field}: not a valid URL ({exc}): {value!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise EndpointError(f"{field}: URL scheme must be one of {', '.join(SCHEMES)}, got {value!r}")
    # ldap:///CN=... (no host: "the domain's DCs") is what AD CS writes by default; http needs a host.
    if scheme != "ldap" and not parts.hostname:
        raise EndpointError(f"{field}: URL has no host name: {value!r}")
    if port == 0:
        raise EndpointError(f"{field}: URL port must be 1-65535: {value!r}")
    return value


def normalize_endpoints(value: t.Any, *, field: str = "endpoints") -> list[Endpoint]:
    """Accept URL strings or ``{url, kind}`` dicts (``cert_revocation_info``'s ``endpoints``).

    Other keys of a dict (the certificates that depend on the URL) are ignored.
    A URL listed twice is fetched once; the first kind given wins.
    """
    if not isinstance(value, list) or not value:
        raise EndpointError(f"{field}: expected a non-empty list of URLs or {{url, kind}} dicts, got {value!r}")
    seen: dict[str, Endpoint] = {}
    for index, item in enumerate(value):
        item_field = f"{field}[{index}]"
        if isinstance(item, str):
            url, kind = validate_url(item, field=item_field), None
        elif isinstance(item, dict):
            if "url" not in item:
                raise EndpointError(f"{item_field}: a dict needs the key 'url', got {item!r}")
            url = validate_url(item["url"], field=f"{item_field}.url")
            kind = item.get("kind")
            if kind is not None and kind not in KINDS:
                raise EndpointError(f"{item_field}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        else:
            raise EndpointError(f"{item_field}: expected a URL string or a {{url, kind}} dict, got {item!r}")
        seen.setdefault(url, Endpoint(url=url, kind=kind))
    return list(seen.values())


# -- a certificate's malformed URL is one invalid endpoint, not a failed check ----------------------
def partition_endpoints(items: t.Sequence[t.Mapping[str, t.Any]], *,
                        field: str = "endpoints") -> tuple[list[Endpoint], list[dict[str, t.Any]]]:
    """Endpoints read from certificates (``{url, kind}``): the valid ones, and ``{url, kind, reason}`` for each other.

    A URL in a certificate is not the user's input: one malformed or hostile CDP (a space, a quote) must not hide
    the result of every legitimate endpoint, so it is reported with the reason and left out of the fetch. The
    reason is :func:`validate_url`'s text without the field. A URL listed twice is reported once.
    """
    valid: dict[str, Endpoint] = {}
    invalid: dict[str, dict[str, t.Any]] = {}
    for index, item in enumerate(items):
        url, kind = item.get("url"), item.get("kind")
        try:
            checked = validate_url(url, field=f"{field}[{index}].url")
        except EndpointError as exc:
            reason = str(exc).split(": ", 1)[-1]
            invalid.setdefault(str(url), {"url": url, "kind": kind if kind in KINDS else None, "reason": reason})
            continue
        valid.setdefault(checked, Endpoint(url=checked, kind=kind if kind in KINDS else None))
    return list(valid.values()), list(invalid.values())


def is_valid_url(value: t.Any) -> bool:
    """Whether :func:`validate_url` accepts ``value``."""
    try:
        validate_url(value, field="url")
    except EndpointError:
        return False
    return True


def _int_option(args: t.Mapping[str, t.Any], name: str, low: int, high: int) -> int:
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EndpointError(f"{name}: must be an integer from {low} to {high}, got {value!r}")
    return value


def _load_any_certificate(body: bytes, field: str) -> bool:
    try:
        load_certificate(body, field=field)
        return True
    except CertificateParseError:
        pass
    # CA Issuers URLs often serve a certs-only PKCS #7 (.p7c, RFC 5280 4.2.2.1).
    for loader in (pkcs7.load_der_pkcs7_certificates, pkcs7.load_pem_pkcs7_certificates):
        try:
            if loader(body):
                return True
        except ValueError:
            continue
    return False


def interpret_body(body: bytes, *, kind: str | None, now: datetime.datetime, field: str) -> dict[str, t.Any]:
    """Parse a retrieved body as CRL, delta CRL or certificate; say whether it is stale.

    ``stale``: NextUpdate is before ``now`` (Windows fetches it again, and fails
    without a route). ``fresh``: ThisUpdate <= ``now`` and not stale. Both are
    null for anything but a CRL.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    out: dict[str, t.Any] = {"parsed_as": "none", "this_update": None, "next_update": None, "stale": None,
                             "fresh": None, "error": None}
    try:
        info = crl_info(body, field=field)
    except CrlParseError:
        info = None
    if info is not None:
        stale = info.is_stale(now)
        out.update(
            parsed_as="delta_crl" if info.is_delta else "crl",
            this_update=iso_utc(info.this_update),
            next_update=iso_utc(info.next_update) if info.next_update is not None else None,
            stale=stale,
            fresh=not stale and info.this_update <= now,
        )
    elif _load_any_certificate(body, field):
        out["parsed_as"] = "certificate"
    expected = _EXPECTED[kind]
    if out["parsed_as"] == "none":
        out["error"] = f"the body ({len(body)} bytes) is not a CRL or a certificate (DER, PEM or PKCS #7)"
    elif out["parsed_as"] not in expected:
        out["error"] = f"a {kind} URL answered with a {out['parsed_as']}"
    elif out["stale"]:
        out["error"] = f"the CRL is stale: NextUpdate {out['next_update']} is before {iso_utc(now)}"
    return out


def _empty_result(endpoint: Endpoint) -> dict[str, t.Any]:
    return {"url": endpoint.url, "kind": endpoint.kind, "reachable": False, "usable": False, "http_status": None,
            "elapsed_ms": None, "bytes": None, "truncated": False, "parsed_as": "none", "this_update": None,
            "next_update": None, "stale": None, "fresh": None, "error": None}


def interpret_result(endpoint: Endpoint, host: t.Mapping[str, t.Any], *, now: datetime.datetime,
                     max_bytes: int, field: str) -> dict[str, t.Any]:
    """Turn one ``crl_fetch`` result into the module's per-URL result."""
    result = _empty_result(endpoint)
    status = host.get("status")
    result.update(http_status=status, elapsed_ms=host.get("elapsed_ms"), bytes=host.get("bytes"),
                  truncated=bool(host.get("truncated")))
    if status is None:
        result["error"] = (host.get("error") or "no HTTP response and no error text from the host").strip()
        return result
    if endpoint.kind == "ocsp":
        # Reachability only: a GET without an OCSP request gets 400/405 from a responder; any answer
        # but a proxy's gateway error proves the path works.
        result["reachable"] = result["usable"] = status not in GATEWAY_ERRORS and status not in REFUSALS
        if status in GATEWAY_ERRORS:
            result["error"] = f"HTTP status {status}: a proxy's gateway error, the proxy could not reach the server"
        elif status in REFUSALS:
            result["error"] = f"HTTP status {status}: {REFUSALS[status]}"
        return result
    if not 200 <= status < 300:
        suffix = ": a proxy's gateway error, the proxy could not reach the server" if status in GATEWAY_ERRORS else ""
        suffix = f": {REFUSALS[status]}" if status in REFUSALS else suffix
        result["error"] = f"HTTP status {status}{suffix}"
        return result
    result["reachable"] = True
    if result["truncated"] and host.get("truncated_by") == "document_cap":
        # The host keeps the bodies of one document under max_document_bytes (16 MiB by default).
        result["error"] = (f"the body ({result['bytes']} bytes) was left out by the document cap: the host's answer "
                           "already held as many bodies as one document may; not parsed")
        return result
    if result["truncated"]:
        result["error"] = f"the body is longer than max_bytes ({max_bytes}) and was cut; not parsed"
        return result
    try:
        body = base64.b64decode(host.get("body_b64") or "", validate=True)
    except (binascii.Error, ValueError):
        raise HostScriptError(f"crl_fetch: {field}.body_b64 is not base64") from None
    result.update(interpret_body(body, kind=endpoint.kind, now=now, field=field))
    result["usable"] = result["error"] is None
    return result


def summarize_results(results: list[dict[str, t.Any]]) -> dict[str, int]:
    return {
        "total": len(results),
        "reachable": sum(1 for r in results if r["reachable"]),
        "unreachable": sum(1 for r in results if not r["reachable"]),
        "usable": sum(1 for r in results if r["usable"]),
        "stale": sum(1 for r in results if r["stale"]),
        "ldap_skipped": sum(1 for r in results if r["url"].lower().startswith("ldap:")),
    }


@dataclasses.dataclass(frozen=True)
class FetchPlan:
    """What one check fetches: every endpoint (LDAP ones are only reported) and the purge decision."""

    endpoints: tuple[Endpoint, ...]
    timeout_ms: int
    max_bytes: int
    purge_requested: bool
    purge_now: bool

    @property
    def fetch(self) -> list[Endpoint]:
        """The endpoints the host requests (http and https), in order."""
        return [e for e in self.endpoints if e.scheme != "ldap"]

    def host_args(self) -> dict[str, t.Any] | None:
        """The ``crl_fetch`` arguments; ``None`` when there is nothing to fetch and no purge to run."""
        if not self.fetch and not self.purge_now:
            return None
        return {"urls": [e.url for e in self.fetch], "timeout_ms": self.timeout_ms, "purge_cache": self.purge_now,
                "max_bytes": self.max_bytes}


def plan_fetch(args: t.Mapping[str, t.Any], *, check_mode: bool) -> FetchPlan:
    """Validate the module options (errors name the option and the value); the purge is a write: not in check mode."""
    endpoints = normalize_endpoints(args["endpoints"])
    purge_requested = bool(args["purge_cache"])
    return FetchPlan(endpoints=tuple(endpoints), timeout_ms=_int_option(args, "timeout_ms", 1, MAX_TIMEOUT_MS),
                     max_bytes=_int_option(args, "max_bytes", 1, 64 * 1024 * 1024), purge_requested=purge_requested,
                     purge_now=purge_requested and not check_mode)


def build_result(plan: FetchPlan, document: t.Mapping[str, t.Any], *, check_mode: bool,
                 now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The module result from a ``crl_fetch`` document holding one result per ``plan.fetch`` URL, in order.

    Raises:
        HostScriptError: the document does not answer exactly the URLs of the plan.
    """
    fetch = plan.fetch
    host_results = document.get("results") or []
    if not isinstance(host_results, list) or len(host_results) != len(fetch):
        raise HostScriptError(f"crl_fetch answered with {len(host_results) if isinstance(host_results, list) else 0} "
                              f"results for {len(fetch)} URLs")
    by_url = {}
    for index, (endpoint, host) in enumerate(zip(fetch, host_results, strict=True)):
        if not isinstance(host, dict) or host.get("url") != endpoint.url:
            raise HostScriptError(f"crl_fetch: results[{index}] is not the answer for {endpoint.url!r}")
        by_url[endpoint.url] = (index, host)

    now = now or datetime.datetime.now(datetime.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    results = []
    for endpoint in plan.endpoints:
        if endpoint.scheme == "ldap":
            result = _empty_result(endpoint)
            result["error"] = LDAP_ERROR
        else:
            index, host = by_url[endpoint.url]
            result = interpret_result(endpoint, host, now=now, max_bytes=plan.max_bytes, field=f"results[{index}]")
        results.append(result)

    # A purge entry the controller did not ask for (check mode) is not believed.
    purge = document.get("purge") if plan.purge_now else None
    purged = isinstance(purge, dict) and purge.get("rc") == 0
    warnings = []
    if isinstance(purge, dict) and not purged:
        warnings.append(f"certutil -urlcache * delete failed with rc {purge.get('rc')}: "
                        f"{str(purge.get('output') or '').strip()}")
    out: dict[str, t.Any] = {
        "changed": purged,
        "results": results,
        "summary": summarize_results(results),
        "all_reachable": all(r["reachable"] for r in results),
        "all_usable": all(r["usable"] for r in results),
        "purged": purged,
        "purge_skipped_check_mode": plan.purge_requested and check_mode,
        "purge": purge if isinstance(purge, dict) else None,
        "checked_at": iso_utc(now),
    }
    if warnings:
        out["warnings"] = warnings
    return out


def run_crl_retrieval_check(
    connection: ConnectionBase, args: t.Mapping[str, t.Any], *, check_mode: bool, task_action: str,
    now: datetime.datetime | None = None,
) -> dict[str, t.Any]:
    """Validate ``args``, run ``crl_fetch`` once (skipped when only LDAP URLs remain) and build the result.

    In check mode the fetch still runs (it only reads), but the cache purge,
    a write, is skipped and reported as ``purge_skipped_check_mode``.
    """
    plan = plan_fetch(args, check_mode=check_mode)
    host_args = plan.host_args()
    document: dict[str, t.Any] = {"purge": None, "results": []}
    if host_args is not None:
        document = run_host_script(connection, "crl_fetch", host_args, task_action=task_action)
    return build_result(plan, document, check_mode=check_mode, now=now)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "KINDS",
    "LDAP_ERROR",
    "Endpoint",
    "EndpointError",
    "FetchPlan",
    "build_result",
    "interpret_body",
    "interpret_result",
    "is_valid_url",
    "normalize_endpoints",
    "partition_endpoints",
    "plan_fetch",
    "run_crl_retrieval_check",
    "summarize_results",
    "validate_url",
]
