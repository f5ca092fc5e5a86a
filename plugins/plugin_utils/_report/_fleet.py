# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fleet report of ``crlfix.windows.fix_crl``: per-host records in, one JSON document and a summary out.

The role leaves one record per host in the host variable ``fix_crl_record`` (shape documented in
``roles/fix_crl/README.md``, "The host record"). This module turns the records of every targeted host into
the run's report document (schema :data:`REPORT_SCHEMA`, documented in ``docs/fix-crl.md``), writes it
atomically, and returns the short text summary and the ``set_stats`` totals. It runs on the controller
only and never talks to a host. Records are data from the play, so anything malformed is reported as a
failure of that host rather than raised: one odd record must not cost the fleet its report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._atomic_file import write_text_atomic

REPORT_SCHEMA = 1
RECORD_SCHEMA = 1

# Order is the order of the summary line and of ``totals``.
STATUSES = ("compliant", "would_change", "changed", "rolled_back", "failed", "unreachable", "not_run")
# A host counts as "checked" when the role got far enough to measure or decide something about it.
_CHECKED = frozenset({"compliant", "would_change", "changed", "rolled_back", "failed"})
PROBE_PHASES = ("before", "after", "after_rollback")
# Certificate flags of a host record (cert_revocation_info's) that the report lists per host, and what they mean.
FINDINGS = {
    "ldap_only": "certificates with only LDAP CRL distribution points (no HTTP proxy can reach them)",
    "expired": "expired certificates",
    "expiring_soon": "certificates expiring soon",
    "chain_incomplete": "certificates whose chain does not reach a root",
    "no_endpoints": "certificates without any revocation endpoint",
}
# The printed summary keeps one line per problem host; the report file keeps the whole reason.
REASON_LIMIT = 600


class FleetReportError(ValueError):
    """The report cannot be written (bad destination, unusable options)."""


def utc_now() -> dt.datetime:
    """Seam for tests: the time the report is stamped with."""
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_list(value: t.Any) -> list[t.Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _as_dict(value: t.Any) -> dict[str, t.Any]:
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
    data = _as_dict(measurement)
    worst = _number(data.get("worst_ms"))
    if worst is not None:
        return worst
    maxima = [_number(_as_dict(peer).get("max_ms")) for peer in _as_list(data.get("results"))]
    values = [value for value in maxima if value is not None]
    return max(values) if values else None


def _endpoint_results(crl_check: t.Any) -> dict[str, dict[str, t.Any]]:
    """Per-URL results of a ``crl_retrieval_check`` result, keyed by URL (list or mapping accepted)."""
    results = _as_dict(crl_check).get("results")
    if isinstance(results, t.Mapping):
        return {str(url): _as_dict(item) for url, item in results.items()}
    return {str(_as_dict(item).get("url")): _as_dict(item) for item in _as_list(results) if _as_dict(item).get("url")}


def _host_entry(name: str, record: t.Any, *, not_run_reason: str) -> dict[str, t.Any]:
    """One host of the report, built from its record (or from its absence)."""
    if record is None:
        return {
            "host": name, "status": "not_run", "reason": not_run_reason, "check_mode": None,
            "desired": None, "before": None, "planned": None, "after": None, "certificates": [], "flags": {},
            "endpoints": [], "verification": {}, "crl_checks": {}, "probes": {}, "rollback": None,
            "errors": [{"step": "run", "msg": not_run_reason}], "commands": None,
        }
    data = _as_dict(record)
    errors = [_as_dict(item) for item in _as_list(data.get("errors"))]
    status = data.get("status")
    reason = data.get("reason")
    if not data:
        status, reason = "failed", f"the host record is not a mapping: {record!r:.200}"
        errors.append({"step": "report", "msg": reason})
    elif data.get("schema") != RECORD_SCHEMA:
        status, reason = "failed", f"host record schema {data.get('schema')!r} is not {RECORD_SCHEMA}"
        errors.append({"step": "report", "msg": reason})
    elif status not in STATUSES or status == "not_run":
        reason = f"host record status {status!r} is not one of {', '.join(STATUSES[:-1])}"
        status = "failed"
        errors.append({"step": "report", "msg": reason})

    checks = _as_dict(data.get("checks"))
    crl_checks = {phase: _as_dict(checks[phase]).get("crl") for phase in PROBE_PHASES if _as_dict(checks.get(phase))}
    probes = {phase: _as_dict(checks[phase]).get("tls") for phase in PROBE_PHASES if _as_dict(checks.get(phase))}
    verification = {
        phase: {key: _as_dict(checks[phase]).get(key) for key in ("passed", "crl_ok", "tls_ok", "summary")}
        for phase in PROBE_PHASES
        if _as_dict(checks.get(phase))
    }
    # An endpoint's status is its latest measurement: after rollback beats after beats before.
    latest: dict[str, dict[str, t.Any]] = {}
    for phase in PROBE_PHASES:
        for url, result in _endpoint_results(crl_checks.get(phase)).items():
            latest[url] = dict(result, phase=phase)
    endpoints = []
    for endpoint in _as_list(data.get("endpoints")):
        item = _as_dict(endpoint) if isinstance(endpoint, t.Mapping) else {"url": str(endpoint)}
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
        "certificates": _as_list(data.get("certificates")),
        "flags": _as_dict(data.get("flags")),
        "endpoints": endpoints,
        "verification": verification,
        "crl_checks": crl_checks,
        "probes": probes,
        "rollback": data.get("rollback"),
        "errors": errors,
        # Remote commands the run sent to the host (null in records of older releases and for hosts not reached).
        "commands": data.get("commands") if isinstance(data.get("commands"), int) else None,
    }


def worst_handshake(hosts: t.Sequence[t.Mapping[str, t.Any]], phases: tuple[str, ...]) -> dict[str, t.Any] | None:
    """The slowest handshake over the fleet, taking per host the first phase of ``phases`` it has.

    ``at_least`` is true when it is a handshake the audit's time box cut (host_audit's ``unfinished_ms``): it took
    at least that long, so a broken host is not reported with the fastest handshake that happened to finish.
    """
    best: dict[str, t.Any] | None = None
    for host in hosts:
        probes = _as_dict(host.get("probes"))
        for phase in phases:
            measurement = probes.get(phase)
            worst = measurement_worst_ms(measurement)
            unfinished = _number(_as_dict(measurement).get("unfinished_ms"))
            at_least = unfinished is not None and (worst is None or unfinished > worst)
            if at_least:
                worst = unfinished
            if worst is None:
                continue
            if best is None or worst > best["ms"]:
                best = {"ms": worst, "host": host["host"], "phase": phase, "at_least": at_least}
            break
    return best


def _stop_text(stopped: t.Mapping[str, t.Any]) -> str:
    batch = [str(name) for name in _as_list(stopped.get("batch"))]
    return (
        f"rollout was stopped after the batch {', '.join(batch) or '?'}: {stopped.get('failed_percentage', '?')} % "
        f"of it rolled back or hit an error, more than max_fail_percentage {stopped.get('max_fail_percentage', '?')} %"
    )


def build_report(
    hosts: t.Sequence[str],
    records: t.Mapping[str, t.Any],
    *,
    check_mode: bool,
    run_id: str,
    moment: dt.datetime,
    rollout_stopped: t.Mapping[str, t.Any] | None = None,
    context: t.Mapping[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """The report document for one run.

    Args:
        hosts: every host the run targeted (after ``--limit``), including ones that never got a record.
        records: host name -> the ``fix_crl_record`` the role left (hosts without one are ``not_run``).
        check_mode: whether the run was an audit (``--check``).
        run_id: the run's identifier, also the file name stem.
        moment: when the report is made.
        rollout_stopped: set when the playbook's batch gate stopped the rollout (``batch``: the hosts of the
            batch that tripped it, ``failed_percentage``, ``max_fail_percentage``); hosts it never reached are
            ``not_run`` with that reason.
        context: free-form facts about the run (limit, playbook, versions) copied into ``run``.
    """
    stopped = plain(_as_dict(rollout_stopped)) or None
    not_run_reason = "the role never ran on this host (no record left behind)"
    if stopped:
        not_run_reason = f"not reached: the {_stop_text(stopped)}"
    records = plain(records)
    entries = [
        _host_entry(name, records.get(name), not_run_reason=not_run_reason) for name in sorted(set(hosts))
    ]
    findings: dict[str, list[str]] = {flag: [] for flag in FINDINGS}
    for entry in entries:
        for flag in FINDINGS:
            if entry["flags"].get(flag):
                findings[flag].append(entry["host"])
    totals: dict[str, int] = {"hosts": len(entries), "checked": 0}
    totals.update({status: 0 for status in STATUSES})
    for entry in entries:
        totals[entry["status"]] += 1
        totals["checked"] += entry["status"] in _CHECKED
    return {
        "schema": REPORT_SCHEMA,
        "kind": "crlfix.windows.fix_crl_report",
        "run": dict(
            plain(_as_dict(context)), id=run_id, time=_iso(moment), check_mode=check_mode, rollout_stopped=stopped
        ),
        "totals": totals,
        "worst_handshake": {
            # "before": what the host looked like when the run found it (baseline, or the only measurement).
            "before": worst_handshake(entries, ("before",)),
            # "after": what the run left behind (after rollback beats after beats an unchanged host's only one).
            "after": worst_handshake(entries, ("after_rollback", "after", "before")),
        },
        # Hosts per certificate finding: what no proxy setting fixes and someone should look at.
        "findings": findings,
        "hosts": entries,
    }


def _format_worst(worst: dict[str, t.Any] | None) -> str:
    if worst is None:
        return "n/a"
    if worst.get("at_least"):
        return f"over {worst['ms']:g} ms ({worst['host']}: cut by the audit's time box)"
    return f"{worst['ms']:g} ms ({worst['host']})"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def summary_lines(report: t.Mapping[str, t.Any], path: str | None) -> list[str]:
    """The short text summary printed at the end of the play."""
    totals = report["totals"]
    run = report["run"]
    mode = "audit (check mode)" if run.get("check_mode") else "run"
    changed_word = f"{totals['would_change']} would change" if run.get("check_mode") else f"{totals['changed']} changed"
    lines = [
        f"fix-crl {mode}: {totals['hosts']} hosts targeted, {totals['checked']} checked: "
        f"{totals['compliant']} compliant, {changed_word}, {totals['rolled_back']} rolled back, "
        f"{totals['failed']} failed, {totals['unreachable']} unreachable, {totals['not_run']} not run"
    ]
    if run.get("check_mode"):
        worst_now = _format_worst(report["worst_handshake"]["before"])
        lines.append(f"worst TLS handshake now: {worst_now} (audit: nothing changed)")
    else:
        lines.append(
            f"worst TLS handshake: before {_format_worst(report['worst_handshake']['before'])}, "
            f"after {_format_worst(report['worst_handshake']['after'])}"
        )
    if run.get("rollout_stopped"):
        lines.append(_stop_text(run["rollout_stopped"]).upper()[:1] + _stop_text(run["rollout_stopped"])[1:])
    for flag, hosts in report.get("findings", {}).items():
        if hosts:
            lines.append(f"{FINDINGS[flag]}: {', '.join(hosts)}")
    for entry in report["hosts"]:
        if entry["status"] in ("rolled_back", "failed", "unreachable", "not_run"):
            reason = " ".join(str(entry["reason"] or "no reason recorded").split())
            lines.append(f"  {entry['host']}: {entry['status']}: {_shorten(reason, REASON_LIMIT)}")
    if path:
        lines.append(f"report: {path}")
    return lines


def stats_data(report: t.Mapping[str, t.Any], path: str | None) -> dict[str, t.Any]:
    """What the playbook hands to ``ansible.builtin.set_stats`` (AWX shows it as the job's artifacts)."""
    worst = report["worst_handshake"]
    return {
        "fix_crl_totals": dict(report["totals"]),
        "fix_crl_worst_handshake_ms": {
            phase: (None if worst[phase] is None else worst[phase]["ms"]) for phase in ("before", "after")
        },
        "fix_crl_report_path": path,
    }


def write_report(report: t.Mapping[str, t.Any], directory: str, file_stem: str) -> str:
    """Write ``report`` as ``<directory>/<file_stem>.json`` (temp file + rename) and return the path.

    The directory is created when missing. An existing file of the same name is never overwritten,
    because each run's document must survive the next run.
    """
    if not directory:
        raise FleetReportError("dest: the report directory must not be empty")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise FleetReportError(f"dest: cannot create the report directory {directory!r}: {exc}") from exc
    path = os.path.join(directory, f"{file_stem}.json")
    if os.path.exists(path):
        raise FleetReportError(f"dest: the report {path!r} already exists; give the run another run_id")
    write_text_atomic(path, json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
    return path


def default_run_id(moment: dt.datetime) -> str:
    """``fix-crl-<UTC time to the second>-<pid>``: sortable, and distinct for runs that start together."""
    return f"fix-crl-{moment.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}"


def make_fleet_report(
    hosts: t.Sequence[str],
    records: t.Mapping[str, t.Any],
    *,
    check_mode: bool,
    dest: str | None,
    run_id: str | None = None,
    rollout_stopped: t.Mapping[str, t.Any] | None = None,
    context: t.Mapping[str, t.Any] | None = None,
    page_writer: t.Callable[[t.Mapping[str, t.Any], str, str], str] | None = None,
) -> dict[str, t.Any]:
    """Build, write (unless ``dest`` is None) and summarise the report; return the task result keys.

    ``page_writer(report, dest, run_id) -> path`` writes a companion view of the document beside it (the HTML
    page of ``_report_html``); it is passed in so that this module does not depend on its views.
    """
    moment = utc_now()
    run_id = run_id or default_run_id(moment)
    report = build_report(
        hosts, records, check_mode=check_mode, run_id=run_id, moment=moment,
        rollout_stopped=rollout_stopped, context=context,
    )
    path = write_report(report, dest, run_id) if dest is not None else None
    html_path = page_writer(report, dest, run_id) if dest is not None and page_writer is not None else None
    lines = summary_lines(report, path)
    if html_path:
        lines.append(f"html: {html_path}")
    return {
        "changed": False,
        "path": path,
        "html_path": html_path,
        "run_id": run_id,
        "summary": "\n".join(lines),
        "summary_lines": lines,
        "totals": report["totals"],
        "worst_handshake": report["worst_handshake"],
        "problems": {
            entry["host"]: {"status": entry["status"], "reason": entry["reason"]}
            for entry in report["hosts"]
            if entry["status"] in ("rolled_back", "failed", "unreachable", "not_run")
        },
        "stats": stats_data(report, path),
    }


__all__ = [
    "FINDINGS",
    "FleetReportError",
    "REPORT_SCHEMA",
    "RECORD_SCHEMA",
    "STATUSES",
    "build_report",
    "default_run_id",
    "make_fleet_report",
    "measurement_worst_ms",
    "plain",
    "stats_data",
    "summary_lines",
    "worst_handshake",
    "write_report",
]
