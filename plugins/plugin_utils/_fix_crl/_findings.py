# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host record's ``findings``: every code, and every rule that turns a measurement or the host's evidence into one.

A finding says what the run noticed that the status alone does not: ``{"code", "identity", "detail"}`` in the
record, ordered by code, then identity (None first), then detail (:func:`ordered`). :data:`CODES` is the one list of
codes with their meaning (roles/fix_crl/README.md, "Findings", and the module's RETURN document it); a rule here is
the only place a code is written. Together with ``_judge`` (a phase's verdict and the service's) and ``_decide`` (the
host's status) this is where measurements become verdicts: the features and ``_evidence``/``_identities`` only read
and shape data.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _evidence, _identities

# Every code a record may carry, with what it means (one line each; the docs repeat these words).
CODES: dict[str, str] = {
    "capi2_log_disabled": "the CAPI2 operational log is off or missing, so CAPI2 events 11, 41 and 53 are not logged",
    "capi2_log_not_enabled": "fix_crl_enable_capi2_log asked for the CAPI2 log and enabling it failed",
    "event_log_missing": "an event log the audit reads does not exist on the host",
    "event_log_unreadable": "an event log query was denied or failed",
    "evidence_unreadable": "the host could not read its events at all",
    "fix_time_not_recorded": "the time of the change could not be written on the host (the fix marker)",
    "identity_path_differs": "CryptoAPI as a service identity goes another way than the admin or the inventory",
    "protocol_mismatch": "a peer shares no TLS protocol with this host",
    "proxy_filters_agent": "the path lets CryptoAPI's User-Agent through but refuses another agent (informational)",
    "proxy_rejects_agent": "the proxy or server answers 401/403/407 to CryptoAPI's own User-Agent",
    "service_slow": "the handshake with the host's own service was slow, with no evidence that it is stale",
    "service_stale": "the host's own service still runs with state from before the proxy last changed",
    "slow_chain_timeouts": "a chain-engine retrieval timeout is raised above its default",
    "symptoms_since_fix": "the host logged symptom events since the fix",
    "symptoms_without_cause": "symptom events while every check that would explain them passes",
    "work_folder_untrusted": "the host refused the identities' work folder: no task was made, nothing in it touched",
}
# The codes the service's verdict writes: a restart judges the service again and replaces exactly these.
SERVICE_CODES = frozenset({"service_slow", "service_stale"})
REFUSED = (401, 403, 407)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One finding of a host record (``as_dict`` is its form there)."""

    code: str
    detail: str
    identity: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"code: {self.code!r} is not a finding code of this collection")

    def as_dict(self) -> dict[str, t.Any]:
        return {"code": self.code, "identity": self.identity, "detail": self.detail}


def finding(code: str, detail: str, identity: str | None = None) -> Finding:
    return Finding(code, detail, identity)


def ordered(findings: t.Iterable[Finding]) -> tuple[Finding, ...]:
    """The findings once each, in record order: code, then identity (None first), then detail."""
    return tuple(sorted(set(findings), key=lambda f: (f.code, f.identity is not None, f.identity or "", f.detail)))


def from_dicts(values: t.Iterable[t.Mapping[str, t.Any]]) -> tuple[Finding, ...]:
    """A record's findings back as :class:`Finding` (the restart step reads them from the record's file)."""
    return ordered(finding(str(v["code"]), str(v.get("detail") or ""), v.get("identity")) for v in values)


# ---- the measurement's own findings: the CRL answers, the TLS peers ----

def _foreign_status(result: t.Mapping[str, t.Any]) -> t.Any:
    foreign = result.get("foreign_agent")
    return foreign.get("http_status") if isinstance(foreign, t.Mapping) else None


def refusal_findings(crl: t.Any) -> list[Finding]:
    """The per-URL fetch's answers to CryptoAPI's agent and to a foreign one, side by side (host-scripts.md).

    ``proxy_rejects_agent`` for each URL that got a 401/403/407 with CryptoAPI's own User-Agent: CryptoAPI's retrieval
    is refused the same way, whatever a browser's agent gets. ``proxy_filters_agent`` (informational) for each URL that
    CryptoAPI's agent got (2xx) while the foreign agent was refused.
    """
    out: list[Finding] = []
    if not isinstance(crl, t.Mapping):
        return out
    for result in crl.get("results") or []:
        if not isinstance(result, t.Mapping):
            continue
        status, foreign = result.get("http_status"), _foreign_status(result)
        if status in REFUSED:
            also = ""
            if foreign in REFUSED:
                also = f"; a foreign agent was refused too (HTTP {foreign})"
            elif isinstance(foreign, int):
                also = f"; a foreign agent got HTTP {foreign}: the path lets other agents through, not CryptoAPI's"
            out.append(finding("proxy_rejects_agent",
                               f"{result.get('url')} answered HTTP {status} to the netsh path with User-Agent "
                               f"Microsoft-CryptoAPI{also}: the proxy (or the server) refuses CryptoAPI's own "
                               "retrieval; allow that agent without authentication, or this URL's host direct"))
        elif isinstance(status, int) and 200 <= status < 300 and foreign in REFUSED:
            agent = result["foreign_agent"].get("agent") or "another agent"
            out.append(finding("proxy_filters_agent",
                               f"{result.get('url')} answered HTTP {foreign} only for a foreign agent ({agent}) and "
                               f"HTTP {status} for Microsoft-CryptoAPI: the proxy (or the server) filters by "
                               "User-Agent; CryptoAPI's own retrieval passes (informational: a browser's or a "
                               "script's check of this URL is refused there, the services' is not)"))
    return out


def mismatch_text(offered: t.Any) -> str:
    shown = "the OS's defaults" if offered in (None, "None") else str(offered)
    return (f"no TLS protocol in common: the peer speaks only protocols this host has disabled (this host offered "
            f"{shown}; a Lync 2010 peer on Windows Server 2008 R2 speaks TLS 1.0 only)")


def protocol_findings(tls: t.Any) -> list[Finding]:
    """``protocol_mismatch`` per peer that shares no protocol with this host."""
    if not isinstance(tls, t.Mapping):
        return []
    return [finding("protocol_mismatch", f"{r.get('peer', '?')}: {mismatch_text(tls.get('offered_protocols'))}")
            for r in tls.get("results") or [] if r.get("protocol_mismatch")]


def path_findings(identities: t.Mapping[str, t.Mapping[str, t.Any]], caller: t.Mapping[str, t.Any] | None,
                  desired: t.Mapping[str, t.Any] | None) -> list[Finding]:
    """``identity_path_differs`` for each identity whose CryptoAPI path (``effective_proxy``) is not the connecting
    admin's, or not the one the inventory intends."""
    out: list[Finding] = []
    intended = _identities.intended_path(desired)
    for name, entry in identities.items():
        path = entry["effective_proxy"]
        reasons = []
        if caller is not None and caller["name"] != name and not _identities.same_path(path, caller["effective_proxy"]):
            reasons.append(f"the connecting account {caller['name']} goes "
                           f"{_identities.path_text(caller['effective_proxy'])}, so a check run as it does not prove "
                           "this identity's path")
        if intended is not None and not _identities.same_path(path, intended):
            reasons.append(f"the inventory intends {_identities.path_text(intended)}")
        if reasons:
            out.append(finding("identity_path_differs", f"CryptoAPI as {name} goes {_identities.path_text(path)}; "
                               + "; ".join(reasons), identity=name))
    return out


def work_folder_findings(folder: t.Any) -> list[Finding]:
    """``work_folder_untrusted`` when the host refused its work folder (the identities part's ``work_folder``): it made
    no task and read, ran or deleted nothing in it."""
    if not isinstance(folder, t.Mapping) or folder.get("trusted") is not False:
        return []
    return [finding("work_folder_untrusted",
                    f"{folder.get('path')} cannot be trusted with the identities' results: {folder.get('reason')}. "
                    "The proof as the services' identities did not run and nothing in the folder was read, run or "
                    "deleted; look at what it holds and who made it, remove it, and run again")]


# ---- the host's own evidence: its logs, chain-engine settings, symptoms, the fix marker ----

def _log_findings(evidence: t.Mapping[str, t.Any]) -> list[Finding]:
    out: list[Finding] = []
    capi2 = evidence.get("capi2_log") or {}
    if capi2.get("error"):
        out.append(finding("capi2_log_not_enabled", f"fix_crl_enable_capi2_log: {capi2['error']}"))
    for log in evidence.get("logs") or []:
        name = log.get("log")
        if name == _evidence.CAPI2_LOG and capi2.get("enabled") is True:
            continue  # this run enabled it: from now on it logs
        if name == _evidence.CAPI2_LOG and (log.get("enabled") is False or log.get("exists") is False):
            out.append(finding("capi2_log_disabled", f"{name} is {'disabled' if log.get('exists') else 'missing'}: "
                               f"CAPI2 events 11, 41 and 53 are not logged (enable it: wevtutil sl {name} /e:true)"))
        elif log.get("exists") is False and name not in _evidence.OPTIONAL_LOGS:
            out.append(finding("event_log_missing", f"the {name} event log does not exist on this host"))
    missing = {log.get("log") for log in evidence.get("logs") or [] if log.get("exists") is False}
    for query in evidence.get("queries") or []:
        if query.get("status") in ("denied", "error") and query.get("log") not in missing:
            out.append(finding("event_log_unreadable", f"{query.get('log')} ({query.get('provider') or 'any provider'})"
                               f": {query.get('status')}: {query.get('error')}"))
    return out


def evidence_findings(evidence: t.Mapping[str, t.Any] | None, checks_passed: bool | None,
                      checked: t.Sequence[str]) -> list[Finding]:
    """The findings the host's evidence supports (``_evidence.build_evidence``).

    ``checks_passed`` is whether every check that would explain a CryptoAPI symptom passed before any change (the
    proxy path, the handshakes, each identity's chain), ``checked`` what those were, in words.
    """
    if evidence is None:
        return []
    if evidence.get("error"):
        return [finding("evidence_unreadable", f"the host could not read its events: {evidence['error']}")]
    out = _log_findings(evidence)
    for name in _evidence.SLOW_VALUES:
        setting = (evidence.get("chain_engine") or {}).get(name) or {}
        value, default = setting.get("in_force"), setting.get("default")
        if isinstance(value, int) and isinstance(default, int) and value > default:
            out.append(finding("slow_chain_timeouts", f"{name} is {value} ms (from the {setting.get('source')} key), "
                               f"over the default {default} ms: every blocked revocation fetch waits longer"))
    since = _evidence.symptom_totals(evidence)["since"]
    if since:
        seen = [f"{e.get('provider')} {e.get('id')} x{e.get('since')}" for e in evidence.get("events") or []
                if e.get("since")]
        out.append(finding("symptoms_since_fix", f"{since} symptom event(s) since the fix at "
                           f"{evidence.get('fixed_at')}: {', '.join(seen)}"))
    symptoms = _evidence.cause_symptoms(evidence)
    if symptoms and checks_passed:
        out.append(finding("symptoms_without_cause", f"{', '.join(symptoms)} while {' and '.join(checked)} pass: "
                           "look elsewhere (an LDAP-only CDP, a service started before the fix, another identity's "
                           "proxy, a peer's revocation check)"))
    marker = evidence.get("marker") or {}
    if marker.get("error"):
        out.append(finding("fix_time_not_recorded",
                           f"the time of the change could not be recorded on the host: {marker['error']}"))
    return out


__all__ = ["CODES", "REFUSED", "SERVICE_CODES", "Finding", "evidence_findings", "finding", "from_dicts",
           "mismatch_text", "ordered", "path_findings", "protocol_findings", "refusal_findings", "work_folder_findings"]
