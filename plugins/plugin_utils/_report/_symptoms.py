# PRIVATE to the crlfix.windows collection; may change without notice.
"""The hosts' own symptoms in the fleet report: who had them before and since the fix, and the chart per hour.

Reads each host entry's ``evidence`` (the record's, ``_fix_crl/_evidence.py``): ``hourly`` (symptom events per UTC
hour), ``fixed_at`` (the host's fix marker) and the per-event ``count``/``before``/``since``. The chart is inline SVG
like the latency chart (no script, nothing from the network): one bar per hour, the fix as a dashed line.
"""

from __future__ import annotations

import datetime as dt
import html
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import symptom_totals

CHART_HOST_LIMIT = 30  # per-host charts shown (the hosts with the most symptoms)
_HOUR = "%Y-%m-%dT%H:00:00Z"


def _evidence(host: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    value = host.get("evidence")
    return dict(value) if isinstance(value, t.Mapping) else {}


def symptom_counts(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, int]:
    """Hosts with symptoms before their fix, since it, and in the window on hosts that carry no fix (``unfixed``);
    ``symptoms_read`` hosts whose evidence was read, ``symptoms_fixed`` those of them that carry a fix marker."""
    counts = {"symptoms_before": 0, "symptoms_since": 0, "symptoms_unfixed": 0, "symptoms_read": 0,
              "symptoms_fixed": 0}
    for host in hosts:
        evidence = _evidence(host)
        if not evidence or evidence.get("error"):
            continue
        counts["symptoms_read"] += 1
        totals = symptom_totals(evidence)
        if evidence.get("fixed_at"):
            counts["symptoms_fixed"] += 1
            counts["symptoms_before"] += bool(totals["before"])
            counts["symptoms_since"] += bool(totals["since"])
        else:
            counts["symptoms_unfixed"] += bool(totals["count"])
    return counts


def summary_line(totals: t.Mapping[str, t.Any], hosts: t.Sequence[t.Mapping[str, t.Any]]) -> str | None:
    """"hosts with symptoms: 14 before, 2 since the fix" (None when no host's evidence was read)."""
    if not totals.get("symptoms_read"):
        return None
    hours = {_evidence(h).get("hours") for h in hosts if _evidence(h).get("hours")}
    window = f"{hours.pop()} h" if len(hours) == 1 else "hours read"
    parts = []
    if totals.get("symptoms_fixed"):
        parts.append(f"{totals['symptoms_before']} before, {totals['symptoms_since']} since the fix")
    if totals.get("symptoms_unfixed") or not parts:
        where = " on hosts without a recorded fix" if parts else ""
        parts.append(f"{totals.get('symptoms_unfixed', 0)} in the last {window}{where}")
    return "hosts with symptoms: " + "; ".join(parts)


def _hour(text: t.Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.strptime(text[:13] + ":00:00Z", _HOUR)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC)


def _series(hourly: t.Mapping[str, t.Any], until: dt.datetime | None) -> list[tuple[dt.datetime, int]]:
    points = {h: int(n) for key, n in hourly.items() if (h := _hour(key)) is not None and isinstance(n, int)}
    if not points:
        return []
    start, end = min(points), max([*points, *([until] if until else [])])
    span = int((end - start).total_seconds() // 3600) + 1
    return [(start + dt.timedelta(hours=i), points.get(start + dt.timedelta(hours=i), 0)) for i in range(span)]


def _svg(css_id: str, label: str, series: list[tuple[dt.datetime, int]], fixes: list[dt.datetime]) -> str:
    width, height, pad_left, pad_bottom = 560, 90, 34, 18
    plot_w, plot_h = width - pad_left - 6, height - pad_bottom - 8
    peak = max(n for _h, n in series) or 1
    step = plot_w / len(series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="symptom-chart" id="{css_id}" role="img" width="{width}"'
             f' height="{height}" viewBox="0 0 {width} {height}" aria-label="{html.escape(label)}">'
             f"<title>{html.escape(label)}</title>"
             f'<rect x="{pad_left}" y="8" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>'
             f'<text x="{pad_left - 4}" y="16" text-anchor="end" fill="#555">{peak}</text>'
             f'<text x="{pad_left - 4}" y="{8 + plot_h}" text-anchor="end" fill="#555">0</text>']
    for index, (hour, count) in enumerate(series):
        if count:
            bar_height = plot_h * count / peak
            parts.append(f'<rect class="symptom-bar" x="{pad_left + index * step + 0.5:.1f}" '
                         f'y="{8 + plot_h - bar_height:.1f}" width="{max(step - 1, 1):.1f}" height="{bar_height:.1f}" '
                         f'fill="#c62828"><title>'
                         f"{hour.strftime('%Y-%m-%d %H:00')} UTC: {count}</title></rect>")
    first, last = series[0][0], series[-1][0]
    parts.append(f'<text x="{pad_left}" y="{height - 4}" fill="#555">{first.strftime("%m-%d %H:00")}</text>'
                 f'<text x="{width - 6}" y="{height - 4}" text-anchor="end" fill="#555">'
                 f'{last.strftime("%m-%d %H:00")} UTC</text>')
    for fix in fixes:
        if first <= fix <= last + dt.timedelta(hours=1):
            x = pad_left + plot_w * (fix - first).total_seconds() / ((last - first).total_seconds() + 3600)
            parts.append(f'<line class="fix-line" x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{8 + plot_h}" stroke="#1565c0"'
                         f' stroke-width="2" stroke-dasharray="4 3"><title>fix at {fix.strftime("%Y-%m-%d %H:%M")}'
                         " UTC</title></line>")
    parts.append("</svg>")
    return "".join(parts)


def _fix_time(evidence: t.Mapping[str, t.Any]) -> dt.datetime | None:
    written = (evidence.get("marker") or {}).get("written")
    text = written or evidence.get("fixed_at")
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def host_cell_html(host: t.Mapping[str, t.Any]) -> str:
    """The host table's cell: each symptom's count (before/since the fix when one is recorded), then the findings."""
    evidence = _evidence(host)
    lines = []
    for event in evidence.get("events") or []:
        counts = f"{event.get('count')} in {evidence.get('hours')} h"
        if evidence.get("fixed_at"):
            counts = f"{event.get('before')} before, {event.get('since')} since the fix"
        lines.append(f"<li><code>{html.escape(str(event.get('provider')))} {html.escape(str(event.get('id')))}"
                     f"</code>: {html.escape(counts)}</li>")
    for finding in host.get("findings") or []:
        if isinstance(finding, t.Mapping):
            who = f" ({finding['identity']})" if finding.get("identity") else ""
            lines.append(f'<li class="finding" title="{html.escape(str(finding.get("detail")))}"><b>'
                         f"{html.escape(str(finding.get('code')))}</b>{html.escape(who)}</li>")
    return f'<ul class="ep">{"".join(lines)}</ul>' if lines else '<span class="muted">&#8211;</span>'


def render_symptoms_html(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    """The "Symptom events per hour" section: the fleet's chart, then one per host with symptoms."""
    fleet: dict[str, int] = {}
    per_host = []
    fixes = []
    for host in hosts:
        evidence = _evidence(host)
        hourly = evidence.get("hourly") or {}
        fix = _fix_time(evidence)
        if fix:
            fixes.append(fix)
        for key, count in hourly.items():
            if isinstance(count, int):
                fleet[key] = fleet.get(key, 0) + count
        total = sum(n for n in hourly.values() if isinstance(n, int))
        if total:
            per_host.append((total, str(host.get("host")), hourly, _hour(evidence.get("read_at")), fix))
    if not fleet:
        return '<p class="muted" id="symptoms-empty">No host logged a symptom event in the hours read.</p>'
    until = max((item[3] for item in per_host if item[3]), default=None)
    parts = [_svg("symptoms-fleet", "Symptom events per hour, whole fleet", _series(fleet, until), sorted(set(fixes)))]
    per_host.sort(key=lambda item: (-item[0], item[1]))
    for index, (total, name, hourly, read_at, fix) in enumerate(per_host[:CHART_HOST_LIMIT]):
        parts.append(f'<h3 class="symptom-host" data-host="{html.escape(name)}">{html.escape(name)}: {total} '
                     f'event(s){" (fix marked)" if fix else ""}</h3>')
        parts.append(_svg(f"symptoms-host-{index}", f"Symptom events per hour, {name}", _series(hourly, read_at),
                          [fix] if fix else []))
    if len(per_host) > CHART_HOST_LIMIT:
        parts.append(f'<p class="muted">The {CHART_HOST_LIMIT} hosts with the most of {len(per_host)}.</p>')
    return "".join(parts)


__all__ = ["CHART_HOST_LIMIT", "host_cell_html", "render_symptoms_html", "summary_line", "symptom_counts"]
