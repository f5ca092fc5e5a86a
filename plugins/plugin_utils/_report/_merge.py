# PRIVATE to the crlfix.windows collection; may change without notice.
"""Merge the fleet reports of several runs into one document (``merge_reports``).

Why: AWX job slicing runs ``playbooks/fix-crl.yml`` once per slice, and each slice only sees its part of the
inventory, so each slice writes a report of its own hosts; ``--limit`` runs do the same by hand. The merged
document has the same schema (1) as a single run's, so everything that reads a report reads it too.

Rules (also in ``docs/awx.md``, "Merging slice reports"):

1. Runs are ordered by ``run.time`` (UTC), then by the order they were given; the later run is "newer".
2. Per host, the record of the newest run that has the host wins, except that a ``not_run`` record (the run
   never reached the host) never replaces a record of a run that did reach it: it says nothing new about it.
3. Each merged host keeps its record as written and gains ``source_run`` (the id of the run it came from).
4. ``totals``, ``incidents`` and ``worst_handshake`` are recomputed from the merged hosts, the way a single run
   computes them (an incident seen in two slices is one incident).
5. ``run.check_mode`` is true or false when all sources agree, null when audits and change runs are mixed;
   ``run.merged`` is true; ``sources`` lists every input run (id, time, check mode, limit, AWX job, file, hosts
   in it, hosts whose record it supplied, rollout_stopped).
6. The same run given twice (same ``run.id``) is an error, as is a document that is not a schema-1 report.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import Status
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import (
    REPORT_KIND,
    REPORT_SCHEMA,
    agreed_check_mode,
    compute_totals,
    iso_time,
    worst_handshakes,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._incidents import build_incidents

_STATUSES = tuple(status.value for status in Status)


class ReportMergeError(ValueError):
    """One of the documents cannot be merged (names the document and the field)."""


def _parse_time(value: t.Any, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ReportMergeError(f"{where}.run.time: expected an ISO 8601 UTC time, got {value!r}")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReportMergeError(f"{where}.run.time: not an ISO 8601 time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _check_report(report: t.Any, where: str) -> None:
    if not isinstance(report, t.Mapping):
        raise ReportMergeError(f"{where}: expected a JSON object, got {type(report).__name__}")
    if report.get("schema") != REPORT_SCHEMA:
        raise ReportMergeError(f"{where}.schema: expected {REPORT_SCHEMA}, got {report.get('schema')!r}")
    if report.get("kind") != REPORT_KIND:
        raise ReportMergeError(f"{where}.kind: expected {REPORT_KIND!r}, got {report.get('kind')!r}")
    run = report.get("run")
    if not isinstance(run, t.Mapping) or not run.get("id"):
        raise ReportMergeError(f"{where}.run.id: every report needs its run id, got {run!r:.120}")
    if not isinstance(report.get("hosts"), list):
        raise ReportMergeError(f"{where}.hosts: expected a list, got {type(report.get('hosts')).__name__}")
    for index, host in enumerate(report["hosts"]):
        if not isinstance(host, t.Mapping) or not isinstance(host.get("host"), str) or not host.get("host"):
            raise ReportMergeError(f"{where}.hosts[{index}].host: expected a host name, got {host!r:.120}")
        if host.get("status") not in _STATUSES:
            raise ReportMergeError(f"{where}.hosts[{index}].status: {host.get('status')!r} is not one of {_STATUSES}")


def merge_reports(
    reports: t.Sequence[t.Mapping[str, t.Any]],
    *,
    names: t.Sequence[str] | None = None,
    run_id: str | None = None,
    moment: dt.datetime | None = None,
) -> dict[str, t.Any]:
    """One report document from ``reports`` by the rules in the module docstring.

    Args:
        reports: parsed report documents (single runs or earlier merges).
        names: where each came from (file names), for error messages and ``sources[].file``.
        run_id: the merged document's ``run.id`` (default ``merged-<UTC time>``).
        moment: the merged document's ``run.time`` (default now).
    """
    if not reports:
        raise ReportMergeError("reports: give at least one report to merge")
    names = list(names) if names is not None else [f"report[{index}]" for index in range(len(reports))]
    if len(names) != len(reports):
        raise ReportMergeError(f"names: {len(names)} names for {len(reports)} reports")
    runs = []
    seen: dict[str, str] = {}
    for index, (report, name) in enumerate(zip(reports, names, strict=True)):
        _check_report(report, name)
        run = dict(report["run"])
        if run["id"] in seen:
            raise ReportMergeError(f"{name}.run.id: run {run['id']!r} is also in {seen[run['id']]}; give each run once")
        seen[run["id"]] = name
        runs.append((_parse_time(run.get("time"), name), index, report, name))
    runs.sort(key=lambda item: (item[0], item[1]))

    winners: dict[str, tuple[dict[str, t.Any], str]] = {}
    for _moment, _index, report, _name in runs:
        run_id_of = str(report["run"]["id"])
        for host in report["hosts"]:
            current = winners.get(host["host"])
            if host["status"] == Status.NOT_RUN and current is not None and current[0]["status"] != Status.NOT_RUN:
                continue
            # An earlier merge already names the run each record came from; keep that.
            winners[host["host"]] = (dict(host), str(host.get("source_run") or run_id_of))

    hosts = []
    used: dict[str, int] = {}
    for name in sorted(winners):
        entry, source = winners[name]
        entry["source_run"] = source
        used[source] = used.get(source, 0) + 1
        hosts.append(entry)

    sources = []
    for _moment, _index, report, name in runs:
        run = report["run"]
        for earlier in report.get("sources") or []:  # a merge of merges lists the original runs
            sources.append(dict(earlier, hosts_used=used.get(str(earlier.get("id")), 0)))
        if not report.get("sources"):
            sources.append({
                "id": run["id"], "time": run.get("time"), "check_mode": run.get("check_mode"),
                "limit": run.get("limit"), "awx_job_id": run.get("awx_job_id"), "file": name,
                "hosts": len(report["hosts"]), "hosts_used": used.get(str(run["id"]), 0),
                "rollout_stopped": run.get("rollout_stopped"),
            })

    moment = moment or dt.datetime.now(dt.UTC)
    stamp = moment.astimezone(dt.UTC)
    return {
        "schema": REPORT_SCHEMA,
        "kind": REPORT_KIND,
        "run": {
            "id": run_id or f"merged-{stamp.strftime('%Y%m%dT%H%M%SZ')}",
            "time": iso_time(stamp),
            "check_mode": agreed_check_mode(source.get("check_mode") for source in sources),
            "merged": True,
            "rollout_stopped": None,
        },
        "totals": compute_totals(hosts),
        "incidents": build_incidents(hosts),
        "worst_handshake": worst_handshakes(hosts),
        "since_last_run": None,
        "hosts": hosts,
        "sources": sources,
    }


__all__ = ["ReportMergeError", "merge_reports"]
