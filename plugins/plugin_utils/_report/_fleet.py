# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fleet report of ``crlfix.windows.fix_crl``: build the document, write it, summarise it (``make_fleet_report``).

The document is ``_document.build_report`` (schema 1, documented in ``docs/fix-crl.md``), the summary and the
``set_stats`` totals ``_summary``; this module writes the document atomically beside its companion view (the HTML
page, passed in as ``page_writer`` so that the document does not depend on its views). It runs on the controller only
and never talks to a host.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import Status
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import REPORT_KIND, build_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._incidents import since_last_run
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import write_text_atomic
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._summary import stats_data, summary_lines


class FleetReportError(ValueError):
    """The report cannot be written (bad destination, unusable options)."""


def utc_now() -> dt.datetime:
    """Seam for tests: the time the report is stamped with."""
    return dt.datetime.now(dt.UTC)


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
    write_text_atomic(path, report_json(report) + "\n")
    return path


def _key(key: t.Any) -> str:
    """A mapping key as ``json.dumps`` writes it (a number, a boolean or null as a string)."""
    return json.dumps(key) if isinstance(key, str) else json.dumps({key: 0})[1:-4]


# Containers this deep are laid out one entry a line (the document's keys, its host list, each host's keys); what is
# below goes on that entry's line as compact JSON.
LAID_OUT_LEVELS = 3


def report_json(value: t.Any, *, levels: int = LAID_OUT_LEVELS, indent: str = "") -> str:
    """``value`` as JSON a reader can scan: the first ``levels`` levels of containers indented two spaces, one entry a
    line (so each host's keys each start a line), and what lies deeper in one line each, compact.

    ``json.dumps`` with ``indent`` runs Python's pure-Python encoder over the whole document (for 500 hosts of
    about 28 KB each, most of the report task's time); the entries below ``levels`` go through the C encoder. The
    document parses to the same value as ``json.dumps(value, indent=2, default=str)``'s.
    """
    if levels <= 0 or not isinstance(value, (dict, list, tuple)) or not value:
        return json.dumps(value, default=str)
    inner = indent + "  "
    if isinstance(value, dict):
        return "{\n" + ",\n".join(
            f"{inner}{_key(key)}: {report_json(item, levels=levels - 1, indent=inner)}"
            for key, item in value.items()) + "\n" + indent + "}"
    return "[\n" + ",\n".join(
        f"{inner}{report_json(item, levels=levels - 1, indent=inner)}" for item in value) + "\n" + indent + "]"


def previous_report(directory: str | None, given: str | None) -> tuple[dict[str, t.Any] | None, str | None]:
    """(the report to compare this run with, its path): ``given``, else the newest run report in ``directory``.

    A scheduled audit writes each run's report in the same directory, so the newest one there is the last run. Files
    that are not a run's report (a merge, another tool's JSON, an unreadable file) are passed over; a ``given`` file
    that cannot be read is an error naming it.
    """
    if given:
        try:
            with open(given, encoding="utf-8") as handle:
                return json.load(handle), given
        except (OSError, ValueError) as exc:
            raise FleetReportError(f"previous_report: cannot read {given!r}: {exc}") from exc
    if not directory or not os.path.isdir(directory):
        return None, None
    for name in sorted((n for n in os.listdir(directory) if n.endswith(".json")), reverse=True):
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and report.get("kind") == REPORT_KIND and not report["run"].get("merged"):
            return report, path
    return None, None


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
    groups: t.Mapping[str, t.Sequence[str]] | None = None,
    previous: str | None = None,
) -> dict[str, t.Any]:
    """Build, write (unless ``dest`` is None) and summarise the report; return the task result keys.

    ``page_writer(report, dest, run_id) -> path`` writes a companion view of the document beside it (the HTML
    page of ``_html``); it is passed in so that this module does not depend on its views. The report is compared
    with the previous one (``previous``, else the newest in ``dest``: :func:`previous_report`).
    """
    moment = utc_now()
    run_id = run_id or default_run_id(moment)
    report = build_report(
        hosts, records, check_mode=check_mode, run_id=run_id, moment=moment,
        rollout_stopped=rollout_stopped, context=context, groups=groups,
    )
    earlier, earlier_path = previous_report(dest, previous)
    report["since_last_run"] = since_last_run(report["hosts"], earlier, earlier_path)
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
        "incidents": report["incidents"],
        "since_last_run": report["since_last_run"],
        "worst_handshake": report["worst_handshake"],
        "problems": {
            entry["host"]: {"status": entry["status"], "reason": entry["reason"]}
            for entry in report["hosts"]
            if Status(entry["status"]).is_problem
        },
        "stats": stats_data(report, path),
    }


__all__ = ["FleetReportError", "default_run_id", "make_fleet_report", "previous_report", "report_json", "utc_now",
           "write_report"]
