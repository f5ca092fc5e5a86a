# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host's own evidence: symptom events, chain-engine settings and the fix marker, read and shaped (data only).

The host reads it in host_audit's one command (``_ps1/_evidence.ps1``; docs/dev/host-scripts.md, "host_audit:
evidence"): ``Get-WinEvent -FilterHashtable`` per query below, bounded by ``StartTime`` and ``-MaxEvents``, counted
per (log, provider, id) on the host so that the document stays small. Which events, and from where ([D] Microsoft,
[C] community only):

- ``Lync Server`` 33019 (``LS IM MCU``, "TLS Negotiation took too long to complete") [C] masteringmsuc 2012, the only
  source: no Microsoft text exists; 32042 (``LS User Services``, invalid incoming HTTPS certificate) [C] itbasedtelco;
  61045 (data MCU lost its C3P connection to the Front End) [D] KB 2901554; 61029 (invalid client certificate,
  CERT_E_UNTRUSTEDROOT) [C] itbasedtelco. The provider is not filtered: it is what the host reports.
- ``System``/``Schannel`` 36874, 36876, 36877, 36881-36883, 36887, 36888 [D] TechNet dn786445 "Schannel Events".
- ``Microsoft-Windows-CAPI2/Operational`` 11 (build chain), 41 (verify revocation), 53 (network retrieval error)
  [D] GSA/piv-guides, RRAS "Block VPN clients that use revoked certificates"; 90 (X509 objects) [I]: off by
  default, so whether it is enabled is read too (``Get-WinEvent -ListLog``). Errors and warnings only (levels 1-3):
  with the log on, every chain build logs an informational 11 and 90.
- ``System``/``Service Control Manager`` 7000, 7009, 7011 [C] netevent message table; Microsoft ties 7000/7009 to
  CRL retrieval past the 30 s start limit [D] KB 944752, SupportArticles-docs cannot-start-reporting-services.md.
  Only events naming a service of ``fix_crl_services`` (its name or display name among the insertion strings).

The fix marker (``HKLM\\SOFTWARE\\crlfix\\windows``, REG_SZ ``FixedAt``) is the time of the change: the fix's
verification command (the host_audit right after the write) sets it, by the host's clock, before it measures; a later
audit, from any controller or AWX job, reads it and counts each symptom before (in the ``hours`` before it) and since.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure

if t.TYPE_CHECKING:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import HostAudit

CAPI2_LOG = "Microsoft-Windows-CAPI2/Operational"
LYNC_LOG = "Lync Server"
MAX_EVENTS = 200  # per query: Get-WinEvent reads newest first, so a cap keeps the latest and marks the count a floor
MESSAGE_CHARS = 300
MAX_HOURS = 24 * 31
# The symptoms that mean "CryptoAPI was slow or failed here": symptoms_without_cause looks for these.
CAUSE_SYMPTOMS = ((LYNC_LOG, 33019), (CAPI2_LOG, 53))


@dataclasses.dataclass(frozen=True)
class EventQuery:
    """One ``Get-WinEvent -FilterHashtable`` query (the host script's ``queries`` entry)."""

    log: str
    provider: str | None
    ids: tuple[int, ...]
    levels: tuple[int, ...] | None = None
    services: bool = False  # keep only events naming a service of fix_crl_services

    def host_arg(self) -> dict[str, t.Any]:
        return {"log": self.log, "provider": self.provider, "ids": list(self.ids),
                "levels": None if self.levels is None else list(self.levels), "services": self.services}


QUERIES = (
    EventQuery(LYNC_LOG, None, (33019, 32042, 61045, 61029)),
    EventQuery("System", "Schannel", (36874, 36876, 36877, 36881, 36882, 36883, 36887, 36888)),
    EventQuery(CAPI2_LOG, "Microsoft-Windows-CAPI2", (11, 41, 53, 90), levels=(1, 2, 3)),
)
SCM_QUERY = EventQuery("System", "Service Control Manager", (7000, 7009, 7011), services=True)
# Logs whose absence is normal on some hosts (Lync's only exists where Lync is installed): no finding.
OPTIONAL_LOGS = frozenset({LYNC_LOG})

# The chain engine's network-retrieval values ([D] Microsoft Learn, "Configure trusted roots and disallowed
# certificates" / KB 884115 for the values and defaults; [C] that the policy key is read before the non-policy key).
# None: no documented default.
CHAIN_ENGINE_DEFAULTS: dict[str, int | None] = {
    "ChainUrlRetrievalTimeoutMilliseconds": 15000,
    "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 20000,
    "MaxUrlRetrievalByteCount": 100 * 1024 * 1024,
    "CrossCertDownloadIntervalHours": 168,
    "CryptnetCachedOcspSwitchToCrlCount": 50,
    "DisableAIAUrlRetrieval": 0,
    "MaxAIAUrlRetrievalCertCount": None,
}
# The values that make a blocked fetch wait longer when raised above their default.
SLOW_VALUES = ("ChainUrlRetrievalTimeoutMilliseconds", "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds")


def host_args(*, hours: int, services: t.Sequence[str], mark: bool, read: bool = True,
              enable_capi2: bool = False) -> dict[str, t.Any]:
    """host_audit's ``evidence`` argument. ``read`` False: only the marker (the fix's verification command).
    ``enable_capi2``: enable the CAPI2 log after reading its state (a write: the caller never asks in check mode)."""
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_HOURS:
        raise ValueError(f"evidence_hours: must be an integer from 1 to {MAX_HOURS}, got {hours!r}")
    queries = [*QUERIES, SCM_QUERY] if services else list(QUERIES)
    return {"hours": hours, "max_events": MAX_EVENTS, "message_chars": MESSAGE_CHARS, "services": list(services),
            "queries": [q.host_arg() for q in queries] if read else [],
            "chain_engine": list(CHAIN_ENGINE_DEFAULTS) if read else [], "mark": mark,
            "enable_log": CAPI2_LOG if enable_capi2 else None}


def _int(value: t.Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def chain_engine_settings(part: t.Mapping[str, t.Any] | None) -> dict[str, dict[str, t.Any]] | None:
    """Each value from the policy key and the non-policy key, and the one in force (policy, else config, else the
    default)."""
    if not isinstance(part, t.Mapping):
        return None
    keys = {source: (part.get(source) or {}).get("values") or {} for source in ("policy", "config")}
    settings = {}
    for name, default in CHAIN_ENGINE_DEFAULTS.items():
        policy, config = _int(keys["policy"].get(name)), _int(keys["config"].get(name))
        source = "policy" if policy is not None else "config" if config is not None else "default"
        settings[name] = {"policy": policy, "config": config, "default": default, "source": source,
                          "in_force": {"policy": policy, "config": config, "default": default}[source]}
    return settings


def _hourly(events: t.Iterable[t.Mapping[str, t.Any]]) -> dict[str, int]:
    hours: dict[str, int] = {}
    for event in events:
        for hour, count in (event.get("hours") or {}).items():
            if _int(count):
                hours[str(hour)] = hours.get(str(hour), 0) + count
    return dict(sorted(hours.items()))


def build_evidence(part: t.Any, *, received_at: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The record's ``evidence`` from host_audit's part (or the failure that cost it); ``received_at``, the
    controller's time when the document came back, sets ``clock`` (the host's time against it)."""
    if isinstance(part, ExpectedFailure) or not isinstance(part, t.Mapping):
        return {"error": str(part) if part is not None else "the host sent no evidence part", "events": [],
                "logs": [], "queries": [], "hourly": {}, "fixed_at": None, "chain_engine": None,
                "marker": {"previous": None, "written": None}, "capi2_log": None, "clock": None, "gpp_registry": [],
                "root_autoupdate": None}
    marker = part.get("marker") or {}
    events = []
    for raw in part.get("events") or []:
        events.append({key: raw.get(key) for key in ("log", "provider", "id", "count", "first", "last", "message",
                                                     "before", "since")})
    events.sort(key=lambda e: (str(e["log"]), str(e["provider"]), _int(e["id"]) or 0))
    return {
        "error": None,
        "read_at": part.get("now"),
        "hours": part.get("hours"),
        "window_start": part.get("window_start"),
        "fixed_at": marker.get("fixed_at"),
        "marker": {"previous": None, "written": None},  # what this run's fix wrote (_run._record_marker)
        "events": events,
        "hourly": _hourly(part.get("events") or []),
        "logs": [dict(entry) for entry in part.get("logs") or []],
        "queries": [dict(entry) for entry in part.get("queries") or []],
        "chain_engine": chain_engine_settings(part.get("chain_engine")),
        "capi2_log": _capi2_log(part),
        "clock": _clock(part.get("now"), received_at),
        # Read by the host for the cause catalogue (docs/dev/host-scripts.md): Group Policy Preferences registry
        # items that write WinHttpSettings, and the root auto-update policy.
        "gpp_registry": [dict(item) for item in part.get("gpp_registry") or [] if isinstance(item, t.Mapping)],
        "root_autoupdate": dict(part["root_autoupdate"]) if isinstance(part.get("root_autoupdate"), t.Mapping)
        else None,
    }


def _clock(host_now: t.Any, received_at: datetime.datetime | None) -> dict[str, t.Any] | None:
    """The host's UTC time against the controller's when the document came back (``skew_s``: the host ahead)."""
    if received_at is None or not host_now:
        return None
    try:
        host = datetime.datetime.fromisoformat(str(host_now))
    except ValueError:
        return None
    host = host if host.tzinfo else host.replace(tzinfo=datetime.UTC)
    return {"host_at": str(host_now), "controller_at": received_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "skew_s": round((host - received_at).total_seconds(), 1)}


def _capi2_log(part: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    """What ``fix_crl_enable_capi2_log`` did: ``{previous, enabled, changed, error}`` (None: not asked)."""
    enabled = part.get("enabled_log")
    if not isinstance(enabled, t.Mapping):
        return None
    return {"previous": enabled.get("previous"), "enabled": enabled.get("enabled"),
            "changed": enabled.get("previous") is False and enabled.get("enabled") is True,
            "error": enabled.get("error")}


def predict_capi2_log(evidence: dict[str, t.Any]) -> None:
    """Check mode with ``fix_crl_enable_capi2_log``: say what the fix would do to the log, write nothing."""
    log = next((entry for entry in evidence.get("logs") or [] if entry.get("log") == CAPI2_LOG), {})
    evidence["capi2_log"] = {"previous": log.get("enabled"), "enabled": None, "changed": False,
                             "predicted": log.get("exists") is True and log.get("enabled") is False, "error": None}


def symptom_totals(evidence: t.Mapping[str, t.Any] | None) -> dict[str, int | None]:
    """Symptom events in the window, before the fix and since it (None: no fix marker)."""
    events = (evidence or {}).get("events") or []
    fixed = bool((evidence or {}).get("fixed_at"))
    return {"count": sum(_int(e.get("count")) or 0 for e in events),
            "before": sum(_int(e.get("before")) or 0 for e in events) if fixed else None,
            "since": sum(_int(e.get("since")) or 0 for e in events) if fixed else None}


def cause_symptoms(evidence: t.Mapping[str, t.Any]) -> list[str]:
    """The symptoms that mean "CryptoAPI was slow or failed here" (``CAUSE_SYMPTOMS``): since the fix, if recorded."""
    fixed = bool(evidence.get("fixed_at"))
    found = []
    for event in evidence.get("events") or []:
        if (event.get("log"), event.get("id")) in CAUSE_SYMPTOMS:
            seen = _int(event.get("since") if fixed else event.get("count")) or 0
            if seen:
                found.append(f"{event.get('provider')} {event.get('id')} x{seen}")
    return found


def marker_written(evidence: dict[str, t.Any] | None, part: t.Any) -> dict[str, t.Any]:
    """The record's ``evidence`` with what the fix's verification did to the fix marker (``marker``): restorable from
    it. A part that failed leaves ``marker.error`` (the finding ``fix_time_not_recorded`` reads it)."""
    evidence = dict(evidence) if evidence is not None else build_evidence(None)
    if isinstance(part, ExpectedFailure) or not isinstance(part, t.Mapping):
        evidence["marker"] = {"previous": None, "written": None, "error": str(part)}
        return evidence
    marker = part.get("marker") or {}
    evidence["marker"] = {"previous": marker.get("previous"),
                          "written": marker.get("fixed_at") if marker.get("written") else None}
    return evidence


@dataclasses.dataclass(frozen=True)
class ServiceMeasurement:
    """The handshake with the host's own service (mutual TLS: the service checks this host's certificate in its own
    process) and what Windows shows about that process: when each named service's process started
    (``processes``: ``name``, ``process_started``), when the proxy value last changed (``changed_at``, UTC text,
    from ``changed_source``: the registry key's last write or the fix marker), the symptom events logged since, and
    the chain engine's URL retrieval timeout in force (what a stale path waits out)."""

    handshake: t.Mapping[str, t.Any]
    processes: tuple[t.Mapping[str, t.Any], ...] = ()
    changed_at: str | None = None
    changed_source: str | None = None
    symptoms_since_change: tuple[str, ...] = ()
    url_timeout_ms: int = CHAIN_ENGINE_DEFAULTS["ChainUrlRetrievalTimeoutMilliseconds"] or 15000


def _latest(times: t.Iterable[tuple[t.Any, str]]) -> tuple[str | None, str | None]:
    """(the latest of the UTC times given as text or datetime, the source that gave it)."""
    best: tuple[datetime.datetime, str, str] | None = None
    for value, source in times:
        if isinstance(value, datetime.datetime):
            when = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        else:
            try:
                when = datetime.datetime.fromisoformat(str(value))
            except ValueError:
                continue
            when = when if when.tzinfo else when.replace(tzinfo=datetime.UTC)
        if best is None or when > best[0]:
            best = (when, when.strftime("%Y-%m-%dT%H:%M:%SZ"), source)
    return (best[1], best[2]) if best else (None, None)


def service_measurement(audit: HostAudit, evidence: t.Mapping[str, t.Any] | None) -> ServiceMeasurement | None:
    """The handshake with the host's own service and what Windows shows about its process, for the judge.

    When the proxy value last changed is the latest of each view's ``last_write`` (the Connections key's last write
    time) and the fix marker (``evidence.fixed_at``, or the one this run's verification wrote); the services'
    processes come from the identities part (``services[].process_started``); symptom events count only since a
    recorded fix.
    """
    if not isinstance(audit.service, dict):
        return None
    times: list[tuple[t.Any, str]] = []
    if audit.winhttp_state is not None:
        times += [(view.last_write, "registry") for view in audit.winhttp_state.views.values()
                  if view is not None and view.last_write]
    evidence = evidence or {}
    marker = evidence.get("marker") or {}
    times += [(value, "fix_marker") for value in (evidence.get("fixed_at"), marker.get("written")) if value]
    changed_at, source = _latest(times)
    part = audit.identities if isinstance(audit.identities, dict) else {}
    processes = tuple({key: service.get(key) for key in ("name", "process_id", "process_started", "process_error")}
                      for service in part.get("services") or [] if isinstance(service, dict))
    symptoms = tuple(cause_symptoms(evidence)) if evidence.get("fixed_at") else ()
    timeout = ((evidence.get("chain_engine") or {}).get("ChainUrlRetrievalTimeoutMilliseconds") or {}).get("in_force")
    return ServiceMeasurement(handshake=audit.service, processes=processes, changed_at=changed_at,
                              changed_source=source, symptoms_since_change=symptoms,
                              **({"url_timeout_ms": timeout} if _int(timeout) else {}))


__all__ = ["CAPI2_LOG", "CHAIN_ENGINE_DEFAULTS", "OPTIONAL_LOGS", "QUERIES", "SCM_QUERY", "SLOW_VALUES", "EventQuery",
           "ServiceMeasurement", "build_evidence", "cause_symptoms", "chain_engine_settings", "host_args",
           "marker_written", "predict_capi2_log", "service_measurement", "symptom_totals"]
