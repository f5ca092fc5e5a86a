# PRIVATE to the crlfix.windows collection; may change without notice.
"""What a run prints and hands to AWX from its report document: the summary lines and the ``set_stats`` data."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import Status
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import FINDINGS, rollout_stop_text
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._symptoms import (
    summary_line as symptoms_summary_line,
)

# The printed summary keeps one line per problem host; the report file keeps the whole reason.
REASON_LIMIT = 600
INCIDENT_LINES = 10
_MODES = {True: "audit (check mode)", False: "run", None: "mixed audit and change run"}


def _format_worst(worst: dict[str, t.Any] | None) -> str:
    if worst is None:
        return "n/a"
    if worst.get("at_least"):
        return f"over {worst['ms']:g} ms ({worst['host']}: cut by the audit's time box)"
    return f"{worst['ms']:g} ms ({worst['host']})"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _counts(report: t.Mapping[str, t.Any]) -> str:
    """The totals line's counts. "changed" counts every host a change of the run stays on, whatever its status:
    a kept change that still fails verification is counted as changed and as failed, and said so."""
    totals, check_mode = report["totals"], report["run"].get("check_mode")
    kept_elsewhere = {status: sum(1 for host in report["hosts"]
                                  if host.get("change_kept") is True and host["status"] == status)
                      for status in (Status.FAILED, Status.UNREACHABLE)}

    def count(status: Status) -> str:
        text = f"{totals[status.value]} {status.value.replace('_', ' ')}"
        kept = kept_elsewhere.get(status)
        return text + (f" ({kept} of them kept the change)" if kept else "")

    changes = totals.get("changes_kept", totals[Status.CHANGED.value])
    changed = {True: [f"{totals[Status.WOULD_CHANGE.value]} would change"], False: [f"{changes} changed"],
               None: [f"{totals[Status.WOULD_CHANGE.value]} would change", f"{changes} changed"]}[check_mode]
    return ", ".join([count(Status.COMPLIANT), *changed, count(Status.ROLLED_BACK), count(Status.FAILED),
                      count(Status.UNREACHABLE), count(Status.NOT_RUN)])


def summary_lines(report: t.Mapping[str, t.Any], path: str | None) -> list[str]:
    """The short text summary printed at the end of the play."""
    totals = report["totals"]
    run = report["run"]
    lines = [
        f"fix-crl {_MODES.get(run.get('check_mode'), 'run')}: {totals['hosts']} hosts targeted, "
        f"{totals['checked']} checked: {_counts(report)}"
    ]
    if run.get("check_mode"):
        worst_now = _format_worst(report["worst_handshake"]["before"])
        lines.append(f"worst TLS handshake now: {worst_now} (audit: nothing changed)")
    else:
        lines.append(
            f"worst TLS handshake: before {_format_worst(report['worst_handshake']['before'])}, "
            f"after {_format_worst(report['worst_handshake']['after'])}"
        )
    for incident in (report.get("incidents") or [])[:INCIDENT_LINES]:
        lines.append(f"incident: {_shorten(str(incident.get('text')), REASON_LIMIT)}")
    if len(report.get("incidents") or []) > INCIDENT_LINES:
        lines.append(f"... and {len(report['incidents']) - INCIDENT_LINES} more incident(s) in the report")
    risks = totals.get("risks") or {}
    if risks:
        lines.append("risks on passing hosts: " + ", ".join(f"{cause} ({count})" for cause, count in risks.items()))
    since = report.get("since_last_run")
    if since:
        lines.append(since_line(since))
    symptoms = symptoms_summary_line(totals, report["hosts"])
    if symptoms:
        lines.append(symptoms)
    if run.get("rollout_stopped"):
        text = rollout_stop_text(run["rollout_stopped"])
        lines.append(text[:1].upper() + text[1:])
    for flag, hosts in report.get("findings", {}).items():
        if hosts:
            lines.append(f"{FINDINGS[flag]}: {', '.join(hosts)}")
    for entry in report["hosts"]:
        if Status(entry["status"]).is_problem:
            reason = " ".join(str(entry["reason"] or "no reason recorded").split())
            lines.append(f"  {entry['host']}: {entry['status']}: {_shorten(reason, REASON_LIMIT)}")
    if path:
        lines.append(f"report: {path}")
    return lines


def since_line(since: t.Mapping[str, t.Any]) -> str:
    """One line of what changed since the previous report."""
    previous = since.get("previous") or {}
    parts = [f"{len(since.get('newly_failing') or [])} newly failing", f"{len(since.get('newly_fixed') or [])} newly "
             "fixed"]
    for key, word in (("causes_appeared", "appeared"), ("causes_cleared", "cleared")):
        causes = since.get(key) or {}
        if causes:
            parts.append(f"{word}: " + ", ".join(f"{cause} ({len(hosts)})" for cause, hosts in causes.items()))
    return f"since the last run ({previous.get('run_id')}, {previous.get('time')}): " + "; ".join(parts)


def stats_data(report: t.Mapping[str, t.Any], path: str | None) -> dict[str, t.Any]:
    """What the playbook hands to ``ansible.builtin.set_stats`` (AWX shows it as the job's artifacts): the totals, and
    the hosts per diagnosed cause and per owner, so that a notification can be routed to the team that owns it."""
    worst = report["worst_handshake"]
    return {
        "fix_crl_causes": dict(report["totals"].get("causes") or {}),
        "fix_crl_owners": dict(report["totals"].get("owners") or {}),
        "fix_crl_incidents": len(report.get("incidents") or []),
        "fix_crl_risks": dict(report["totals"].get("risks") or {}),
        "fix_crl_totals": dict(report["totals"]),
        "fix_crl_worst_handshake_ms": {
            phase: (None if worst[phase] is None else worst[phase]["ms"]) for phase in ("before", "after")
        },
        "fix_crl_report_path": path,
    }


__all__ = ["INCIDENT_LINES", "REASON_LIMIT", "since_line", "stats_data", "summary_lines"]
