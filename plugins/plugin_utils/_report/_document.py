# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fleet report document (schema :data:`REPORT_SCHEMA`, ``docs/fix-crl.md`` "The report"): records in, hosts out.

The role leaves one record per host in the host variable ``fix_crl_record`` (shape: ``_fix_crl/_record.py``,
documented in ``roles/fix_crl/README.md``, "The host record"). This module turns the records of every targeted host
into the run's report document: one entry per host, the totals (:func:`compute_totals`, which the slice merge uses
too), the worst handshakes and the certificate findings. Records are data from the play, so anything malformed is
reported as a failure of that host rather than raised: one odd record must not cost the fleet its report.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import (
    RECORD_SCHEMA,
    Status,
    kept_change,
    record_from_registered,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._incidents import (
    build_incidents,
    cause_counts,
    risk_counts,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._symptoms import symptom_counts

REPORT_SCHEMA = 1
REPORT_KIND = "crlfix.windows.fix_crl_report"
PROBE_PHASES = ("before", "after", "after_rollback")
# Certificate flags of a host record (cert_revocation_info's) that the report lists per host, and what they mean.
FINDINGS = {
    "ldap_only": "certificates with only LDAP CRL distribution points (no HTTP proxy can reach them)",
    "expired": "expired certificates",
    "expiring_soon": "certificates expiring soon",
    "chain_incomplete": "certificates whose chain does not reach a root",
    "no_endpoints": "certificates without any revocation endpoint",
}


def iso_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_list(value: t.Any) -> list[t.Any]:
    """``value`` as a list, or empty when it is not one (report data is read, never trusted)."""
    return list(value) if isinstance(value, (list, tuple)) else []


def as_dict(value: t.Any) -> dict[str, t.Any]:
    """``value`` as a dict, or empty when it is not a mapping."""
    return dict(value) if isinstance(value, t.Mapping) else {}


def plain(value: t.Any) -> t.Any:
    """A deep copy made of plain ``dict``/``list``/``str``/numbers, safe for ``json.dump``.

    Host variables reach the plugin as ansible-core's own container and string subclasses (tagged,
    lazily templated); converting once keeps the document independent of those internals.
    """
    if isinstance(value, t.Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _number(value: t.Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def measurement_worst_ms(measurement: t.Any) -> float | None:
    """The slowest handshake of one ``tls_probe`` measurement, or None when it measured nothing.

    Prefers the module's ``worst_ms``; falls back to the largest per-peer ``results[].max_ms``.
    """
    data = as_dict(measurement)
    worst = _number(data.get("worst_ms"))
    if worst is not None:
        return worst
    maxima = [_number(as_dict(peer).get("max_ms")) for peer in as_list(data.get("results"))]
    values = [value for value in maxima if value is not None]
    return max(values) if values else None


def _endpoint_results(crl_check: t.Any) -> dict[str, dict[str, t.Any]]:
    """Per-URL results of a ``crl_retrieval_check`` result, keyed by URL (list or mapping accepted)."""
    results = as_dict(crl_check).get("results")
    if isinstance(results, t.Mapping):
        return {str(url): as_dict(item) for url, item in results.items()}
    return {str(as_dict(item).get("url")): as_dict(item) for item in as_list(results) if as_dict(item).get("url")}


# The statuses a record may carry (not_run is the report's own word for a host without one).
_RECORDED = tuple(status.value for status in Status if status is not Status.NOT_RUN)


def _refusal(record: t.Any, data: t.Mapping[str, t.Any]) -> str | None:
    """Why a record cannot be read as one (the host is then reported failed with this reason), or None."""
    if not data:
        return f"the host record is not a mapping: {record!r:.200}"
    if data.get("schema") != RECORD_SCHEMA:
        return f"host record schema {data.get('schema')!r} is not {RECORD_SCHEMA}"
    if data.get("status") not in _RECORDED:
        return f"host record status {data.get('status')!r} is not one of {', '.join(_RECORDED)}"
    return None


def _host_entry(name: str, record: t.Any, *, not_run_reason: str) -> dict[str, t.Any]:
    """One host of the report, built from its record (or from its absence)."""
    if record is None:
        return {
            "host": name, "status": Status.NOT_RUN.value, "reason": not_run_reason, "check_mode": None,
            "desired": None, "before": None, "planned": None, "after": None, "certificates": [], "flags": {},
            "endpoints": [], "verification": {}, "crl_checks": {}, "probes": {}, "rollback": None,
            "errors": [{"step": "run", "msg": not_run_reason}], "commands": None, "change_kept": False,
            "evidence": None, "findings": [], "identities": {}, "caller": None, "chain_cache_resync": None,
            "service": None, "trust_store": None, "diagnosis": [], "risks": [], "groups": [],
        }
    data = as_dict(record_from_registered(name, record))
    errors = [as_dict(item) for item in as_list(data.get("errors"))]
    status, reason = data.get("status"), data.get("reason")
    refusal = _refusal(record, data)
    if refusal:
        status, reason = Status.FAILED.value, refusal
        errors.append({"step": "report", "msg": refusal})

    checks = as_dict(data.get("checks"))
    crl_checks = {phase: as_dict(checks[phase]).get("crl") for phase in PROBE_PHASES if as_dict(checks.get(phase))}
    probes = {phase: as_dict(checks[phase]).get("tls") for phase in PROBE_PHASES if as_dict(checks.get(phase))}
    verification = {
        phase: {key: as_dict(checks[phase]).get(key)
                for key in ("passed", "crl_ok", "tls_ok", "identities_ok", "summary")}
        for phase in PROBE_PHASES
        if as_dict(checks.get(phase))
    }
    # An endpoint's status is its latest measurement: after rollback beats after beats before.
    latest: dict[str, dict[str, t.Any]] = {}
    for phase in PROBE_PHASES:
        for url, result in _endpoint_results(crl_checks.get(phase)).items():
            latest[url] = dict(result, phase=phase)
    endpoints = []
    for endpoint in as_list(data.get("endpoints")):
        item = as_dict(endpoint) if isinstance(endpoint, t.Mapping) else {"url": str(endpoint)}
        endpoints.append(dict(item, result=latest.get(str(item.get("url")))))

    return {
        "host": name,
        "status": status,
        "reason": reason,
        "check_mode": data.get("check_mode"),
        "desired": data.get("desired"),
        "before": data.get("before"),
        "planned": data.get("planned"),
        "after": data.get("after"),
        "certificates": as_list(data.get("certificates")),
        "flags": as_dict(data.get("flags")),
        "endpoints": endpoints,
        "verification": verification,
        "crl_checks": crl_checks,
        "probes": probes,
        "rollback": data.get("rollback"),
        "errors": errors,
        # Remote commands the run sent to the host (null in records of older releases and for hosts not reached).
        "commands": data.get("commands") if isinstance(data.get("commands"), int) else None,
        # The run changed the host's registry and left it changed, whatever the status (a kept change that still
        # fails verification, a host lost after its change): the summary counts it among the changes.
        "change_kept": not refusal and kept_change(data),
        # The host's own symptoms and chain-engine settings, and what the run found (null/[] in records
        # of older releases).
        "evidence": as_dict(data.get("evidence")) or None,
        "findings": [as_dict(item) for item in as_list(data.get("findings"))],
        # the identities the proof ran as, the connecting account, the chain engines' resync (absent in older records)
        "identities": as_dict(data.get("identities")),
        "caller": data.get("caller"),
        "chain_cache_resync": data.get("chain_cache_resync"),
        # the host's own service's handshake and its restart (absent in older records)
        "service": as_dict(data.get("service")) or None,
        # the Root store's facts, and why the host fails: each cause that holds, primary first (_fix_crl/_causes)
        "trust_store": as_dict(data.get("trust_store")) or None,
        "diagnosis": [as_dict(item) for item in as_list(data.get("diagnosis"))],
        # the causes that hold on a host whose proof passes: they fail nothing today
        "risks": [as_dict(item) for item in as_list(data.get("risks"))],
    }


def worst_handshake(hosts: t.Sequence[t.Mapping[str, t.Any]], phases: tuple[str, ...]) -> dict[str, t.Any] | None:
    """The slowest handshake over the fleet, taking per host the first phase of ``phases`` it has.

    ``at_least`` is true when it is a handshake the audit's time box cut (host_audit's ``unfinished_ms``): it took
    at least that long, so a broken host is not reported with the fastest handshake that happened to finish.
    """
    best: dict[str, t.Any] | None = None
    for host in hosts:
        probes = as_dict(host.get("probes"))
        for phase in phases:
            measurement = probes.get(phase)
            worst = measurement_worst_ms(measurement)
            unfinished = _number(as_dict(measurement).get("unfinished_ms"))
            at_least = unfinished is not None and (worst is None or unfinished > worst)
            if at_least:
                worst = unfinished
            if worst is None:
                continue
            if best is None or worst > best["ms"]:
                best = {"ms": worst, "host": host["host"], "phase": phase, "at_least": at_least}
            break
    return best


def worst_handshakes(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, dict[str, t.Any] | None]:
    """The report's ``worst_handshake``: "before" is what the run found (baseline, or the only measurement);
    "after" is what it left (after rollback beats after beats an unchanged host's only one)."""
    return {"before": worst_handshake(hosts, ("before",)),
            "after": worst_handshake(hosts, ("after_rollback", "after", "before"))}


def rollout_stop_text(stopped: t.Mapping[str, t.Any]) -> str:
    batch = [str(name) for name in as_list(stopped.get("batch"))]
    return (
        f"rollout was stopped after the batch {', '.join(batch) or '?'}: {stopped.get('failed_percentage', '?')} % "
        f"of it rolled back or hit an error, more than max_fail_percentage {stopped.get('max_fail_percentage', '?')} %"
    )


def compute_totals(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """``totals``: hosts, checked, one count per status, ``changes_kept`` (hosts a change of the run stays on), and
    the hosts per diagnosed cause and per owner (``causes``, ``owners``), and per cause among passing hosts' risks.

    The one count of a report's hosts: a single run's (:func:`build_report`) and a merge's (``_merge``) alike.
    """
    totals: dict[str, t.Any] = {"hosts": len(hosts), "checked": 0}
    totals.update({status.value: 0 for status in Status})
    for host in hosts:
        status = Status(host["status"])
        totals[status.value] += 1
        totals["checked"] += status.checked
    totals["changes_kept"] = sum(1 for host in hosts if host.get("change_kept") is True)
    totals.update(symptom_counts(hosts))
    totals["causes"], totals["owners"] = cause_counts(hosts)
    totals["risks"] = risk_counts(hosts)
    return totals


def agreed_check_mode(modes: t.Iterable[t.Any]) -> bool | None:
    """The check mode all the given runs or records share; None when they differ (audits and changes mixed)."""
    distinct = set(modes)
    return distinct.pop() if len(distinct) == 1 else None


def build_report(
    hosts: t.Sequence[str],
    records: t.Mapping[str, t.Any],
    *,
    check_mode: bool,
    run_id: str,
    moment: dt.datetime,
    rollout_stopped: t.Mapping[str, t.Any] | None = None,
    context: t.Mapping[str, t.Any] | None = None,
    groups: t.Mapping[str, t.Sequence[str]] | None = None,
) -> dict[str, t.Any]:
    """The report document for one run.

    Args:
        hosts: every host the run targeted (after ``--limit``), including ones that never got a record.
        records: host name -> the ``fix_crl_record`` the role left (hosts without one are ``not_run``).
        check_mode: whether the report task runs in check mode; the run's mode is the records' own when they say
            (an audit made with ``check_mode: true`` on the host task is an audit, whatever the report task's mode),
            null when audits and change runs are mixed.
        run_id: the run's identifier, also the file name stem.
        moment: when the report is made.
        rollout_stopped: set when the playbook's batch gate stopped the rollout (``batch``: the hosts of the
            batch that tripped it, ``failed_percentage``, ``max_fail_percentage``); hosts it never reached are
            ``not_run`` with that reason.
        context: free-form facts about the run (limit, playbook, versions) copied into ``run``.
        groups: the inventory's groups (name -> members): each host's groups, which incidents count.
    """
    stopped = plain(as_dict(rollout_stopped)) or None
    not_run_reason = "the role never ran on this host (no record left behind)"
    if stopped:
        not_run_reason = f"not reached: the {rollout_stop_text(stopped)}"
    records = plain(records)
    entries = [
        _host_entry(name, records.get(name), not_run_reason=not_run_reason) for name in sorted(set(hosts))
    ]
    member_of: dict[str, list[str]] = {}
    for group, members in sorted(as_dict(plain(groups)).items()):
        if group not in ("all", "ungrouped"):
            for member in as_list(members):
                member_of.setdefault(str(member), []).append(group)
    for entry in entries:
        entry["groups"] = member_of.get(entry["host"], [])
    findings: dict[str, list[str]] = {flag: [] for flag in FINDINGS}
    for entry in entries:
        for flag in FINDINGS:
            if entry["flags"].get(flag):
                findings[flag].append(entry["host"])
    said = [entry["check_mode"] for entry in entries if isinstance(entry["check_mode"], bool)]
    return {
        "schema": REPORT_SCHEMA,
        "kind": REPORT_KIND,
        "run": dict(
            plain(as_dict(context)), id=run_id, time=iso_time(moment),
            check_mode=agreed_check_mode(said) if said else check_mode, rollout_stopped=stopped,
        ),
        "totals": compute_totals(entries),
        # Across the fleet, why hosts fail: each cause and what its hosts share, whose it is and the fix (_incidents).
        "incidents": build_incidents(entries),
        "worst_handshake": worst_handshakes(entries),
        # Hosts per certificate finding: what no proxy setting fixes and someone should look at.
        "findings": findings,
        "since_last_run": None,  # filled by _fleet, which knows where the previous report lies
        "hosts": entries,
    }


__all__ = ["FINDINGS", "PROBE_PHASES", "REPORT_KIND", "REPORT_SCHEMA", "agreed_check_mode", "as_dict", "as_list",
           "build_report", "compute_totals", "iso_time", "measurement_worst_ms", "plain", "rollout_stop_text",
           "worst_handshake", "worst_handshakes"]
