# PRIVATE to the crlfix.windows collection; may change without notice.
"""host_audit: a host's whole audit in one remote command (issue 7, docs/performance.md P1).

The host script ``_ps1/host_audit.ps1`` (docs/dev/host-scripts.md, ``host_audit``) reads both WinHTTP views,
lists the certificate stores, fetches the revocation URLs through the machine WinHTTP proxy and runs the TLS
probes, the fetch and the probes side by side. Its document nests the four existing documents unchanged, so
this module only splits it and hands each part to the code that already interprets it.

The controller stays the authority on which URLs matter: the host extracts the URLs from the certificates
with a minimal DER walk so that the fetch can start in the same command, but the endpoint list is the one
``_cert_chain`` works out from the returned certificates, as ``cert_revocation_info`` gives it today. A URL
the controller wants and the host did not fetch is fetched with a second command (``crl_fetch``) and named
in a warning; a URL the host fetched and the controller does not want is dropped.

The time box (``time_box_ms``, docs/performance.md P4.3) lets an audit stop waiting for what it already knows: a
host without a working proxy would wait the full CRL timeout and the chain timeout of every probe. With it, the
host ends the measurement ``time_box_ms`` after it started; a CRL URL cut off is reported with
``time_box_error(n)`` as its error (so ``crl_retrieval_check``'s code makes it unreachable and unusable), and a peer
whose sample was cut has that text in its ``errors`` and the verdict ``error`` (see ``_tls_probe.interpret_peer``).
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import (
    MissingCryptographyError,
    require_cryptography,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils import _crl_retrieval, _tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import (
    CertRevocationOptions,
    empty_result,
    summarise_inventory,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import (
    Endpoint,
    FetchPlan,
    build_result,
    normalize_endpoints,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    HostScriptError,
    check_sub_document,
    is_time_box_error,
    run_host_script,
    time_box_error,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import Peer, interpret_document
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import (
    HostState,
    decode_advproxy,
    parse_state,
)

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

SCRIPT = "host_audit"
MAX_BYTES_LIMIT = 64 * 1024 * 1024
MAX_TIME_BOX_MS = 600000


@dataclasses.dataclass(frozen=True)
class HostAuditRequest:
    """One host_audit command.

    ``cert_options`` None: no certificates are read and nothing is extracted (``stores`` null), and
    ``endpoints`` are exactly the URLs to check; with ``cert_options``, ``endpoints`` are checked in addition
    to the certificates' own. No ``peers``: no TLS probes. ``time_box_ms`` None: every measurement runs to its
    own timeout; else the host stops waiting that many ms after the measurement started (an audit's finding
    needs no full timeout).
    """

    cert_options: CertRevocationOptions | None
    endpoints: tuple[Endpoint, ...]
    crl_timeout_ms: int
    purge_cache: bool
    max_bytes: int
    peers: tuple[Peer, ...]
    samples: int
    probe_timeout_ms: int
    max_handshake_ms: int
    check_revocation: bool
    stop_after_unknown: bool = True
    time_box_ms: int | None = None


def _check_int(name: str, value: t.Any, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"{name}: must be an integer from 1 to {high}, got {value!r}")


def validate_request(request: HostAuditRequest) -> None:
    """Refuse a request before anything runs on the host; the message names the field and the value."""
    _check_int("crl_timeout_ms", request.crl_timeout_ms, _crl_retrieval.MAX_TIMEOUT_MS)
    _check_int("max_bytes", request.max_bytes, MAX_BYTES_LIMIT)
    _check_int("samples", request.samples, _tls_probe.MAX_SAMPLES)
    _check_int("probe_timeout_ms", request.probe_timeout_ms, _tls_probe.MAX_TIMEOUT_MS)
    _check_int("max_handshake_ms", request.max_handshake_ms, _tls_probe.MAX_TIMEOUT_MS)
    box = request.time_box_ms
    if box is not None and (isinstance(box, bool) or not isinstance(box, int) or not 1 <= box <= MAX_TIME_BOX_MS):
        raise ValueError(f"time_box_ms: must be an integer from 1 to {MAX_TIME_BOX_MS} or null, got {box!r}")
    for index, endpoint in enumerate(request.endpoints):
        if not isinstance(endpoint, Endpoint):
            raise ValueError(f"endpoints[{index}]: expected an Endpoint, got {endpoint!r}")
        _crl_retrieval.validate_url(endpoint.url, field=f"endpoints[{index}]")
    for index, peer in enumerate(request.peers):
        if not isinstance(peer, Peer):
            raise ValueError(f"peers[{index}]: expected a Peer, got {peer!r}")


def host_args(request: HostAuditRequest, *, check_mode: bool) -> dict[str, t.Any]:
    """The ``host_audit`` arguments (docs/dev/host-scripts.md); the purge, a write, is not sent in check mode."""
    purge_now = request.purge_cache and not check_mode
    urls = [e.url for e in request.endpoints if e.scheme != "ldap"]
    crl: dict[str, t.Any] | None = {"timeout_ms": request.crl_timeout_ms, "purge_cache": purge_now,
                                    "max_bytes": request.max_bytes}
    options = request.cert_options
    if options is not None:
        crl.update(urls=[], extra_urls=urls)
    elif urls or purge_now:
        crl.update(urls=urls, extra_urls=[])
    else:
        crl = None
    tls = None
    if request.peers:
        tls = {**_tls_probe.host_args(request.peers, samples=request.samples, timeout_ms=request.probe_timeout_ms,
                                      check_revocation=request.check_revocation),
               "stop_after_unknown": bool(request.stop_after_unknown)}
    return {
        "stores": list(options.stores) if options is not None else None,
        "chain_stores": list(options.chain_stores) if options is not None else [],
        "winhttp": True,
        "crl": crl,
        "tls": tls,
        "time_box_ms": request.time_box_ms,
    }


def _failed(msg: str, **fields: t.Any) -> dict[str, t.Any]:
    return {**fields, "failed": True, "changed": False, "msg": msg}


def _part(document: t.Mapping[str, t.Any], key: str, name: str) -> dict[str, t.Any]:
    """The checked sub-document ``key``; HostScriptError when the host reported an error for it or it is bad."""
    value = document.get(key)
    if isinstance(value, dict) and "error" in value and "script" not in value:
        raise HostScriptError(f"host script {SCRIPT}: the host could not produce its {key} part: {value['error']}")
    return check_sub_document(SCRIPT, key, name, value)


def winhttp_info(state: HostState) -> dict[str, t.Any]:
    """What ``gather_winhttp_proxy_info`` returns for ``state``, without ``changed``."""
    return {
        "computer_name": state.computer_name,
        "os_build": state.os_build,
        "is_64bit": state.is_64bit,
        "views": {view: (value.info() if value else None) for view, value in state.views.items()},
        "views_disagree": state.views_disagree,
        "advproxy": decode_advproxy(state.advproxy),
    }


def _certificates(document: t.Mapping[str, t.Any], options: CertRevocationOptions,
                  winhttp: dict[str, t.Any] | None, now: datetime.datetime) -> dict[str, t.Any]:
    try:
        require_cryptography()
        inventory = _part(document, "certificates", "cert_inventory")
        if options.include_winhttp:
            if winhttp is None:
                raise ValueError(f"host script {SCRIPT}: include_winhttp needs the winhttp part, which failed")
            inventory = {**inventory, "winhttp": winhttp}
        return summarise_inventory(inventory, options, now=now)
    except MissingCryptographyError as exc:
        return _failed(str(exc), **empty_result(), exception=exc.traceback)
    except (HostScriptError, ValueError) as exc:
        return _failed(str(exc), **empty_result())


class _Crl:
    """The crl slot: the controller's endpoint list answered from the host's fetch (plus a second command)."""

    def __init__(self, connection: ConnectionBase, request: HostAuditRequest, *, check_mode: bool,
                 task_action: str) -> None:
        self.connection = connection
        self.request = request
        self.check_mode = check_mode
        self.task_action = task_action
        self.commands = 0
        self.warnings: list[str] = []

    def result(self, document: t.Mapping[str, t.Any], certificates: dict[str, t.Any] | None,
               now: datetime.datetime) -> dict[str, t.Any] | None:
        request = self.request
        if certificates is not None and certificates.get("failed"):
            return _failed(f"no endpoint list: the certificates part failed: {certificates['msg']}")
        # Only the certificates' HTTP(S) endpoints are checked, as the role's plan has always done: an LDAP URL
        # cannot go through a WinHTTP proxy and is a finding of its own (flags.ldap_only), not a failed fetch.
        # LDAP URLs the caller lists explicitly are reported as crl_retrieval_check reports them.
        items: list[t.Any] = [{"url": e["url"], "kind": e["kind"]} for e in (certificates or {}).get("endpoints", [])
                              if e.get("scheme") in ("http", "https")]
        items += [{"url": e.url, "kind": e.kind} for e in request.endpoints]
        purge_now = request.purge_cache and not self.check_mode
        raw = document.get("crl")
        if not items and not (purge_now and raw is not None):
            return None
        try:
            require_cryptography()
            endpoints = tuple(normalize_endpoints(items)) if items else ()
            plan = FetchPlan(endpoints=endpoints, timeout_ms=request.crl_timeout_ms, max_bytes=request.max_bytes,
                             purge_requested=request.purge_cache, purge_now=purge_now)
            crl = _part(document, "crl", "crl_fetch") if raw is not None else {"purge": None, "results": []}
            answers = self._answers(crl, plan)
            assembled = {"purge": crl.get("purge"), "results": [answers[e.url] for e in plan.fetch]}
            return build_result(plan, assembled, check_mode=self.check_mode, now=now)
        except MissingCryptographyError as exc:
            return _failed(str(exc), exception=exc.traceback)
        except (HostScriptError, ValueError) as exc:
            return _failed(str(exc))

    def _answers(self, crl: t.Mapping[str, t.Any], plan: FetchPlan) -> dict[str, t.Any]:
        results = crl.get("results")
        if not isinstance(results, list):
            raise HostScriptError(f"host script {SCRIPT}: crl.results must be a list, got {results!r:.80}")
        answers: dict[str, t.Any] = {}
        for entry in results:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                answers.setdefault(entry["url"], entry)
        missing = [e.url for e in plan.fetch if e.url not in answers]
        if missing:
            # The host's DER walk and the controller's parser disagreed (or the chain was deeper than the host
            # walks): the controller's list wins, at the price of one more command.
            self.warnings.append(f"{SCRIPT}: the host did not fetch {len(missing)} revocation URL(s) the controller "
                                 f"found; fetched them with a second command: {', '.join(missing)}")
            self.commands += 1
            args = {"urls": missing, "timeout_ms": plan.timeout_ms, "purge_cache": False, "max_bytes": plan.max_bytes}
            second = run_host_script(self.connection, "crl_fetch", args, task_action=self.task_action)
            second_results = second.get("results")
            if not isinstance(second_results, list) or len(second_results) != len(missing):
                raise HostScriptError(f"crl_fetch answered with {len(second_results or [])} results for "
                                      f"{len(missing)} URLs")
            for url, entry in zip(missing, second_results, strict=True):
                if not isinstance(entry, dict) or entry.get("url") != url:
                    raise HostScriptError(f"crl_fetch: no answer for {url!r} in the second command")
                answers[url] = entry
        return answers


def _tls(document: t.Mapping[str, t.Any], request: HostAuditRequest) -> dict[str, t.Any] | None:
    if not request.peers:
        return None
    try:
        tls = _part(document, "tls", "tls_probe")
        result = interpret_document(request.peers, tls, max_handshake_ms=request.max_handshake_ms)
    except (HostScriptError, ValueError) as exc:
        return _failed(str(exc))
    # A peer whose first handshake the time box cut took at least the box: say so, so that the slowest handshake
    # of a broken host is not reported as the fastest that happened to finish.
    cut = request.time_box_ms is not None and any(
        any(str(error).startswith("sample 1: ") and is_time_box_error(error) for error in peer.get("errors") or [])
        for peer in result["results"])
    result["unfinished_ms"] = request.time_box_ms if cut else None
    return result


def run_host_audit(connection: ConnectionBase, request: HostAuditRequest, *, check_mode: bool, task_action: str,
                   now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """One host_audit command (two when the host's URL extraction missed endpoints).

    Returns ``commands``, ``winhttp_state`` (HostState, None when that part failed), ``winhttp``,
    ``certificates``, ``crl``, ``tls``, ``warnings``, the host's ``elapsed_ms``, the request's ``time_box_ms`` and
    ``time_box_hit`` (true when the host's time box cut a CRL request or a TLS sample; docs/dev/host-scripts.md).
    A part that fails in an expected way is ``{"failed": True, "msg": ...}`` in its slot.

    Raises:
        ValueError: the request is not acceptable (nothing ran on the host).
        HostScriptError: the host_audit document as a whole cannot be trusted.
        AnsibleConnectionFailure: the transport failed.
    """
    validate_request(request)
    document = run_host_script(connection, SCRIPT, host_args(request, check_mode=check_mode),
                               task_action=task_action)
    now = now or datetime.datetime.now(datetime.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)

    state: HostState | None = None
    winhttp_doc: dict[str, t.Any] | None = None
    try:
        winhttp_doc = _part(document, "winhttp", "winhttp_state")
        state = parse_state(winhttp_doc)
        winhttp: dict[str, t.Any] = winhttp_info(state)
    except (HostScriptError, ValueError) as exc:
        winhttp_doc = None
        winhttp = _failed(str(exc))

    certificates = None
    if request.cert_options is not None:
        certificates = _certificates(document, request.cert_options, winhttp_doc, now)
    crl_slot = _Crl(connection, request, check_mode=check_mode, task_action=task_action)
    crl = crl_slot.result(document, certificates, now)
    elapsed = document.get("elapsed_ms")
    return {
        "commands": 1 + crl_slot.commands,
        "winhttp_state": state,
        "winhttp": winhttp,
        "certificates": certificates,
        "crl": crl,
        "tls": _tls(document, request),
        "warnings": crl_slot.warnings,
        "elapsed_ms": elapsed if isinstance(elapsed, int) and not isinstance(elapsed, bool) else None,
        "time_box_ms": request.time_box_ms,
        "time_box_hit": document.get("time_box_hit") is True,
    }


__all__ = ["MAX_TIME_BOX_MS", "SCRIPT", "HostAuditRequest", "host_args", "is_time_box_error", "run_host_audit",
           "time_box_error", "validate_request", "winhttp_info"]
