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

from ansible_collections.crlfix.windows.plugins.module_utils._crl_info import (
    CrlParseError,
    crl_info,
    ocsp_answer,
    verify_crl_signature,
)
from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import HAS_CRYPTOGRAPHY
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    CertificateParseError,
    iso_utc,
    load_certificate,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._endpoints import (  # noqa: F401 (re-exported)
    KINDS,
    Endpoint,
    EndpointError,
    is_valid_url,
    normalize_endpoints,
    partition_endpoints,
    validate_url,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script

if HAS_CRYPTOGRAPHY:
    from cryptography.hazmat.primitives.serialization import pkcs7

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

# The module's documented max_bytes; the fix_crl run, which has no such option, fetches with it too.
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
            "next_update": None, "stale": None, "fresh": None, "error": None, "foreign_agent": None,
            "winhttp_error": None, "proxy_error": None, "via": None, "location": None, "rejected": None,
            "ocsp_status": None, "ocsp_cert_status": None}


def foreign_agent_result(host: t.Mapping[str, t.Any], field: str) -> dict[str, t.Any] | None:
    """The host's ``foreign_agent`` answer (docs/dev/host-scripts.md, "The foreign agent") as the result's
    ``{"agent", "http_status", "error"}``; None when the host did not ask (not asked, or no first answer).

    Raises:
        HostScriptError: the entry is not of the documented shape.
    """
    foreign = host.get("foreign_agent")
    if foreign is None:
        return None
    shaped = isinstance(foreign, t.Mapping)
    status = foreign.get("status") if shaped else None
    shaped = shaped and (status is None or (isinstance(status, int) and not isinstance(status, bool)))
    shaped = shaped and all(foreign.get(k) is None or isinstance(foreign.get(k), str) for k in ("agent", "error"))
    if not shaped:
        raise HostScriptError(f"crl_fetch: {field}.foreign_agent is not {{agent, status, error}}: {foreign!r}")
    error = foreign.get("error")
    if status is None and not error:
        error = "no HTTP response and no error text from the host"
    return {"agent": foreign.get("agent"), "http_status": status, "error": error.strip() if error else None}


def _proxy_facts(host: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What the path said besides the status: WinHTTP's error number for a request that got no answer, and the
    headers that name who answered (``via``, squid's ``x-squid-error``; docs/dev/host-scripts.md, crl_fetch)."""
    headers = host.get("headers") if isinstance(host.get("headers"), t.Mapping) else {}
    headers = {str(name).lower(): str(value) for name, value in headers.items()}
    error = host.get("winhttp_error")
    return {"winhttp_error": error if isinstance(error, int) and not isinstance(error, bool) else None,
            "proxy_error": headers.get("x-squid-error"), "via": headers.get("via")}


def _ocsp_result(result: dict[str, t.Any], body_b64: t.Any) -> None:
    """An OCSP responder's answer to the host's request for one certificate: usable when it is ``successful``."""
    try:
        answer = ocsp_answer(base64.b64decode(body_b64 or "", validate=True))
    except (binascii.Error, ValueError, CrlParseError) as exc:
        result["error"] = f"not an OCSP response: {exc}"
        return
    result.update(parsed_as="ocsp", ocsp_status=answer["status"], ocsp_cert_status=answer["cert_status"])
    if answer["status"] != "successful":
        result["error"] = f"the OCSP responder answered {answer['status']} (RFC 6960 4.2.1)"
    result["usable"] = result["error"] is None


def interpret_result(endpoint: Endpoint, host: t.Mapping[str, t.Any], *, now: datetime.datetime,
                     max_bytes: int, field: str) -> dict[str, t.Any]:
    """Turn one ``crl_fetch`` result into the module's per-URL result."""
    result = _empty_result(endpoint)
    status = host.get("status")
    result.update(http_status=status, elapsed_ms=host.get("elapsed_ms"), bytes=host.get("bytes"),
                  truncated=bool(host.get("truncated")), foreign_agent=foreign_agent_result(host, field),
                  **_proxy_facts(host))
    if status is None:
        result["error"] = (host.get("error") or "no HTTP response and no error text from the host").strip()
        return result
    if endpoint.kind == "ocsp":
        # A bare GET gets 400/405 from a responder: any answer but a proxy's gateway error proves the path works. A
        # request in the URL (RFC 6960 A.1, the host's ``location`` naming the responder) gets the responder's own
        # answer, which says whether it works.
        result["reachable"] = result["usable"] = status not in GATEWAY_ERRORS and status not in REFUSALS
        if status in GATEWAY_ERRORS:
            result["error"] = f"HTTP status {status}: a proxy's gateway error, the proxy could not reach the server"
        elif status in REFUSALS:
            result["error"] = f"HTTP status {status}: {REFUSALS[status]}"
        elif host.get("location") and 200 <= status < 300:
            result["location"] = host.get("url")  # the request the host sent to this responder (its URL)
            _ocsp_result(result, host.get("body_b64"))
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
    if result["error"] is None and endpoint.issuer and result["parsed_as"] in ("crl", "delta_crl"):
        # Windows checks a CRL against the certificate's issuer (RFC 5280 6.3.3); one it did not sign is rejected.
        signed, why = verify_crl_signature(body, endpoint.issuer)
        if not signed:
            result["rejected"] = why
            result["error"] = f"the CRL is not valid for its certificates: {why}"
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
    return FetchPlan(endpoints=tuple(endpoints), timeout_ms=_int_option(args, "crl_timeout_ms", 1, MAX_TIMEOUT_MS),
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
        # An OCSP responder asked with a request (RFC 6960 A.1 GET) answers for its ``location``.
        if not isinstance(host, dict) or (host.get("location") or host.get("url")) != endpoint.url:
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
    "KINDS",
    "LDAP_ERROR",
    "Endpoint",
    "EndpointError",
    "FetchPlan",
    "build_result",
    "foreign_agent_result",
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
