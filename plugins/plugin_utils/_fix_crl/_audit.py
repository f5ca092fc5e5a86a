# PRIVATE to the crlfix.windows collection; may change without notice.
"""host_audit: a host's whole audit in one remote command (docs/performance.md): its request and its parts.

The host script ``_ps1/host_audit.ps1`` (docs/dev/host-scripts.md, ``host_audit``) reads both WinHTTP views, lists
the certificate stores, and fetches the revocation URLs through the machine WinHTTP proxy while it runs the TLS
probes. Its document nests the features' documents unchanged: this module splits it and hands each part to the code
that interprets it; a part that fails holds its ``ExpectedFailure`` (docs/dev/architecture.md). It parses only and
never sends a command.

The controller decides which URLs matter: the host walks the certificates' DER for URLs so that the fetch can start
in the same command, but the endpoint list is the one ``_cert_chain`` works out (as ``cert_revocation_info`` does),
sorted out once here (``HostAudit.endpoints``). A URL the host missed is left to the caller (``pending_crl``: one more
command, ``crl_fetch``, named in a warning); a URL the host fetched and the controller does not want is dropped.
With ``time_box_ms`` the host stops waiting that long after the measurement started: a URL or a handshake cut off
carries ``time_box_error(n)`` as its error, so it is unreachable or ``error`` (``_tls_probe.interpret_peer``).
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import (
    MissingCryptographyError,
    require_cryptography,
)
from ansible_collections.crlfix.windows.plugins.module_utils._host_floor import HostBelowFloor, HostFloor, check_floor
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import (
    CertRevocationOptions,
    empty_result,
    summarise_inventory,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import (
    Endpoint,
    FetchPlan,
    build_result,
    partition_endpoints,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import (
    CRL_MAX_BYTES,
    MAX_TIME_BOX_MS,
    HostAuditRequest,
    host_args,
    validate_request,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure, HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    check_sub_document,
    is_time_box_error,
    time_box_error,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import Peer, interpret_document
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import HostState, parse_state, proxy_info

SCRIPT = "host_audit"

# The host's times (the WinHTTP views' last_write) are read with datetime.strptime, whose module (_strptime) is imported
# and whose regular expressions are built on first use: done now, on import, in ansible-playbook before it forks the
# per-host workers, instead of in each worker (about 6 ms of CPU per host; docs/performance.md).
datetime.datetime.strptime("2026-11-26T03:57:40Z", "%Y-%m-%dT%H:%M:%SZ")


def _part(document: t.Mapping[str, t.Any], key: str, name: str) -> dict[str, t.Any]:
    """The checked sub-document ``key``; HostScriptError when the host reported an error for it or it is bad."""
    value = document.get(key)
    if isinstance(value, dict) and "error" in value and "script" not in value:
        raise HostScriptError(f"host script {SCRIPT}: the host could not produce its {key} part: {value['error']}")
    return check_sub_document(SCRIPT, key, name, value)


# One part of the audit: its feature's result, None when there was nothing to measure, or the failure that cost it.
Part: t.TypeAlias = dict[str, t.Any] | ExpectedFailure | None


@dataclasses.dataclass
class PendingCrl:
    """The crl part when the host did not fetch every URL the controller wants (its DER walk and the controller's
    parser disagreed, or the chain was deeper): the controller's list wins, at the price of one more command
    (``crl_fetch`` with :meth:`fetch_args`)."""

    plan: FetchPlan
    purge: t.Any
    answers: dict[str, t.Any]
    check_mode: bool
    now: datetime.datetime
    invalid: tuple[dict[str, t.Any], ...] = ()

    @property
    def missing(self) -> list[str]:
        return [e.url for e in self.plan.fetch if e.url not in self.answers]

    def warning(self) -> str:
        missing = self.missing
        return (f"{SCRIPT}: the host did not fetch {len(missing)} revocation URL(s) the controller found; fetched "
                f"them with a second command: {', '.join(missing)}")

    def fetch_args(self) -> dict[str, t.Any]:
        return {"urls": self.missing, "timeout_ms": self.plan.timeout_ms, "purge_cache": False,
                "max_bytes": self.plan.max_bytes, "foreign_agent": True}

    def complete(self, second: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """The crl part, with the second command's ``crl_fetch`` document answering the missing URLs.

        Raises:
            HostScriptError: the second document does not answer exactly the missing URLs, in order.
        """
        missing = self.missing
        results = second.get("results")
        if not isinstance(results, list) or len(results) != len(missing):
            raise HostScriptError(f"crl_fetch answered with {len(results or [])} results for {len(missing)} URLs")
        answers = dict(self.answers)
        for url, entry in zip(missing, results, strict=True):
            if not isinstance(entry, dict) or entry.get("url") != url:
                raise HostScriptError(f"crl_fetch: no answer for {url!r} in the second command")
            answers[url] = entry
        return _crl_result(self.plan, self.purge, answers, check_mode=self.check_mode, now=self.now,
                           invalid=self.invalid)


def _crl_result(plan: FetchPlan, purge: t.Any, answers: t.Mapping[str, t.Any], *, check_mode: bool,
                now: datetime.datetime, invalid: t.Sequence[dict[str, t.Any]] = ()) -> dict[str, t.Any]:
    """The crl part; ``invalid_endpoints`` lists the certificates' URLs that were not fetched, with the reason."""
    assembled = {"purge": purge, "results": [answers[e.url] for e in plan.fetch]}
    result = build_result(plan, assembled, check_mode=check_mode, now=now)
    result["invalid_endpoints"] = list(invalid)
    result["summary"]["invalid"] = len(invalid)
    return result


@dataclasses.dataclass
class HostAudit:
    """One host_audit answer, each part as its feature would return it (``Part``). ``winhttp_state`` is None when the
    winhttp part failed; with ``pending_crl`` set, ``crl`` is None until the caller completes it; ``time_box_hit``: the
    host's time box cut a CRL request or a TLS sample."""

    winhttp_state: HostState | None
    winhttp: dict[str, t.Any] | ExpectedFailure
    certificates: Part
    crl: Part
    tls: Part
    elapsed_ms: int | None
    time_box_ms: int | None
    time_box_hit: bool
    pending_crl: PendingCrl | None = None
    evidence: Part = None  # the host's evidence part (_evidence.build_evidence reads it), when asked for
    floor: HostFloor | None = None
    identities: Part = None  # the host's identities part as it came, read by _identities.summarise
    service: Part = None  # the handshake with the host's own service (the judge's judge_service), when asked for
    # The certificates' endpoints, sorted out once: the valid HTTP(S) ones (fetched now, measured again after a
    # change) and the LDAP URLs (no HTTP proxy carries them); the malformed ones are in the crl part.
    endpoints: tuple[Endpoint, ...] = ()
    ldap_endpoints: tuple[str, ...] = ()
    commands: int = 1
    warnings: list[str] = dataclasses.field(default_factory=list)


def _certificates(document: t.Mapping[str, t.Any], options: CertRevocationOptions,
                  winhttp: dict[str, t.Any] | None, now: datetime.datetime) -> Part:
    try:
        require_cryptography()
        inventory = _part(document, "certificates", "cert_inventory")
        if options.include_winhttp:
            if winhttp is None:
                raise ValueError(f"host script {SCRIPT}: include_winhttp needs the winhttp part, which failed")
            inventory = {**inventory, "winhttp": winhttp}
        return summarise_inventory(inventory, options, now=now, keep_der=True)
    except MissingCryptographyError as exc:
        return ExpectedFailure(str(exc), **empty_result(), exception=exc.traceback)
    except (ExpectedFailure, ValueError) as exc:
        return ExpectedFailure(str(exc), **empty_result())


def _issuer_of(certificates: t.Mapping[str, t.Any], thumbprint: str | None) -> str | None:
    """The thumbprint of the certificate that issued ``thumbprint`` in one of the built chains."""
    for cert in certificates.get("certificates") or []:
        chain = [element.get("thumbprint") for element in cert.get("chain") or []]
        if thumbprint in chain and chain.index(thumbprint) + 1 < len(chain):
            return chain[chain.index(thumbprint) + 1]
    return None


def _certificate_endpoints(certificates: Part) -> tuple[list[Endpoint], list[dict[str, t.Any]], list[str]]:
    """(the valid HTTP(S) endpoints, the malformed ones with the reason, the LDAP URLs) of the certificates' chains:
    an LDAP URL cannot go through a WinHTTP proxy (``flags.ldap_only``); a malformed URL is reported, never fetched.
    A CRL endpoint carries its issuer's certificate, so that a CRL it did not sign is seen."""
    if not isinstance(certificates, dict):
        return [], [], []
    ders = certificates.pop("der", None) or {}  # DER by thumbprint: what the endpoints are checked against
    endpoints = certificates.get("endpoints") or []
    found = [{"url": e["url"], "kind": e["kind"]} for e in endpoints if e.get("scheme") in ("http", "https")]
    valid, invalid = partition_endpoints(found, field="certificates.endpoints")
    carriers = {e["url"]: (e.get("carried_by") or [None])[0] for e in endpoints}
    out = [Endpoint(e.url, e.kind, ders.get(_issuer_of(certificates, carriers.get(e.url)) or "")
                    if e.kind in ("crl", "delta_crl") else None) for e in valid]
    return out, invalid, [str(e.get("url")) for e in endpoints if e.get("scheme") == "ldap"]


def _crl(document: t.Mapping[str, t.Any], request: HostAuditRequest, certificates: Part,
         found: t.Sequence[Endpoint], invalid: t.Sequence[dict[str, t.Any]], *, check_mode: bool,
         now: datetime.datetime) -> Part | PendingCrl:
    """The controller's endpoint list answered from the host's fetch; a PendingCrl when the host missed some."""
    if isinstance(certificates, ExpectedFailure):
        return ExpectedFailure(f"no endpoint list: the certificates part failed: {certificates}")
    # LDAP URLs the caller lists explicitly are reported as crl_retrieval_check reports them.
    items = [*found, *request.endpoints]
    purge_now = request.purge_cache and not check_mode
    raw = document.get("crl")
    if not items and not invalid and not (purge_now and raw is not None):
        return None
    try:
        require_cryptography()
        first: dict[str, Endpoint] = {}
        for endpoint in items:  # a URL listed twice is fetched once, as its first listing names it
            first.setdefault(endpoint.url, endpoint)
        plan = FetchPlan(endpoints=tuple(first.values()), timeout_ms=request.crl_timeout_ms,
                         max_bytes=request.max_bytes, purge_requested=request.purge_cache, purge_now=purge_now)
        crl = _part(document, "crl", "crl_fetch") if raw is not None else {"purge": None, "results": []}
        results = crl.get("results")
        if not isinstance(results, list):
            raise HostScriptError(f"host script {SCRIPT}: crl.results must be a list, got {results!r:.80}")
        answers: dict[str, t.Any] = {}
        for entry in results:
            # An OCSP responder asked with a request (RFC 6960 A.1 GET) answers for its ``location``.
            if isinstance(entry, dict) and isinstance(entry.get("location") or entry.get("url"), str):
                answers.setdefault(entry.get("location") or entry["url"], entry)
        pending = PendingCrl(plan, crl.get("purge"), answers, check_mode, now, tuple(invalid))
        if pending.missing:
            return pending
        return _crl_result(plan, crl.get("purge"), answers, check_mode=check_mode, now=now, invalid=invalid)
    except MissingCryptographyError as exc:
        return ExpectedFailure(str(exc), exception=exc.traceback)
    except (ExpectedFailure, ValueError) as exc:
        return ExpectedFailure(str(exc))


def _split_service(tls: t.Mapping[str, t.Any], peer: Peer | None, *,
                   max_handshake_ms: int) -> tuple[t.Mapping[str, t.Any], dict[str, t.Any] | None]:
    """(the ``tls_probe`` document of the peers, the service's interpreted result): the host probes its own service
    after the peers, and its result is taken out before either is interpreted, so the peers' totals never count it
    (it judges the service, not the proxy path)."""
    results = tls.get("results")
    if peer is None or not isinstance(results, list):
        return tls, None  # a document without a results list fails in interpret_document, naming it
    service = interpret_document((peer,), {**tls, "results": results[-1:]},
                                 max_handshake_ms=max_handshake_ms)["results"][0]
    return {**tls, "results": results[:-1]}, service


def _tls(document: t.Mapping[str, t.Any], request: HostAuditRequest) -> tuple[Part, Part]:
    """(the peers' part, the handshake with the host's own service, probed last)."""
    if not request.peers and not request.service_peer:
        return None, None
    try:
        tls, service = _split_service(_part(document, "tls", "tls_probe"), request.service_peer,
                                      max_handshake_ms=request.max_handshake_ms)
        result = interpret_document(request.peers, tls, max_handshake_ms=request.max_handshake_ms)
    except (ExpectedFailure, ValueError) as exc:
        return ExpectedFailure(str(exc)), None
    if not request.peers:
        return None, service
    # A peer whose first handshake the time box cut took at least the box: say so, so that the slowest handshake
    # of a broken host is not reported as the fastest that happened to finish.
    cut = request.time_box_ms is not None and any(
        any(str(error).startswith("sample 1: ") and is_time_box_error(error) for error in peer.get("errors") or [])
        for peer in result["results"])
    result["unfinished_ms"] = request.time_box_ms if cut else None
    return result, service


def _identities(document: t.Mapping[str, t.Any], request: HostAuditRequest) -> Part:
    """The identities part as the host sent it; None when not asked for."""
    if request.identities is None:
        return None
    value = document.get("identities")
    if isinstance(value, dict) and "error" in value and "accounts" not in value:
        return ExpectedFailure(f"host script {SCRIPT}: the host could not read the service identities: "
                               f"{value['error']}")
    if not isinstance(value, dict):
        return ExpectedFailure(f"host script {SCRIPT}: no identities part in the answer, got {value!r:.80}")
    return value


def parse_host_audit(document: t.Mapping[str, t.Any], request: HostAuditRequest, *, check_mode: bool,
                     now: datetime.datetime | None = None) -> HostAudit:
    """Split a checked ``host_audit`` document into its parts; a part that fails in an expected way fails alone.

    Parses only: when the host did not fetch every URL the controller wants, ``pending_crl`` says which, and the
    caller decides whether to send the second command.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    floor = check_floor(document)

    state: HostState | None = None
    winhttp_doc: dict[str, t.Any] | None = None
    winhttp: dict[str, t.Any] | ExpectedFailure
    try:
        winhttp_doc = _part(document, "winhttp", "winhttp_state")
        state = parse_state(winhttp_doc)
        winhttp = proxy_info(state)
    except (ExpectedFailure, ValueError) as exc:
        winhttp_doc = None
        winhttp = ExpectedFailure(str(exc))

    certificates = None
    if request.cert_options is not None:
        certificates = _certificates(document, request.cert_options, winhttp_doc, now)
    found, invalid, ldap = _certificate_endpoints(certificates)
    crl = _crl(document, request, certificates, found, invalid, check_mode=check_mode, now=now)
    tls, service = _tls(document, request)
    elapsed = document.get("elapsed_ms")
    return HostAudit(
        winhttp_state=state,
        winhttp=winhttp,
        certificates=certificates,
        crl=None if isinstance(crl, PendingCrl) else crl,
        pending_crl=crl if isinstance(crl, PendingCrl) else None,
        tls=tls,
        service=service,
        elapsed_ms=elapsed if isinstance(elapsed, int) and not isinstance(elapsed, bool) else None,
        time_box_ms=request.time_box_ms,
        time_box_hit=document.get("time_box_hit") is True,
        evidence=_evidence_part(document) if request.evidence is not None else None,
        floor=floor,
        identities=_identities(document, request),
        endpoints=tuple(found),
        ldap_endpoints=tuple(ldap),
    )


def _evidence_part(document: t.Mapping[str, t.Any]) -> Part:
    """host_audit's evidence part, or the failure the host reported for it."""
    value = document.get("evidence")
    if isinstance(value, dict) and "error" in value and "events" not in value:
        return ExpectedFailure(f"host script {SCRIPT}: the host could not read its evidence: {value['error']}")
    if not isinstance(value, dict):
        return ExpectedFailure(f"host script {SCRIPT}: no evidence part in the document, got {value!r:.80}")
    return value


__all__ = ["CRL_MAX_BYTES", "MAX_TIME_BOX_MS", "SCRIPT", "HostAudit", "HostBelowFloor", "check_floor",
           "HostAuditRequest", "Part", "PendingCrl", "host_args",
           "is_time_box_error", "parse_host_audit", "time_box_error", "validate_request"]
