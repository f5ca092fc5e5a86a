# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fleet report as one self-contained HTML page (``render_report_html``).

Input is the JSON document of ``_document.build_report`` (schema 1, ``docs/fix-crl.md`` "The report") or a
merged document of ``_merge.merge_reports``. The page has no external resource at all: CSS is inline,
the latency chart is inline SVG, there is no script, and a Content-Security-Policy forbids anything else, so it
opens offline in any browser and from an AWX artifact or an e-mail attachment alike.

Everything that comes from a host (names, reasons, URLs, proxy strings, error text) is untrusted: it is escaped
for HTML text and attributes, and the CSP is a second wall should an escape ever be missed.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import Status
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import (
    REPORT_SCHEMA,
    as_dict,
    as_list,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._host_table import render_host_table
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._latency_chart import (  # noqa: F401 (re-exported)
    CHART_HOST_LIMIT,
    host_latencies,
    render_chart_svg,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._latency_chart import (
    escape as _e,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._latency_chart import (
    format_ms as _ms,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import write_text_atomic
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._symptoms import render_symptoms_html

# Colour per status: green = fine, blue = fixed, amber = an audit found work, orange = fixed but undone,
# red = broken, grey = not measured. Foreground is chosen for contrast on each background.
STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.COMPLIANT: ("#1e7d32", "#ffffff"),
    Status.CHANGED: ("#1565c0", "#ffffff"),
    Status.WOULD_CHANGE: ("#f9a825", "#1b1b1b"),
    Status.ROLLED_BACK: ("#ef6c00", "#ffffff"),
    Status.FAILED: ("#c62828", "#ffffff"),
    Status.UNREACHABLE: ("#4a4a4a", "#ffffff"),
    Status.NOT_RUN: ("#9e9e9e", "#1b1b1b"),
}
# Problems first: the reader opened the page to find them.
_ROW_ORDER = (Status.FAILED, Status.ROLLED_BACK, Status.UNREACHABLE, Status.NOT_RUN, Status.WOULD_CHANGE,
              Status.CHANGED, Status.COMPLIANT)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

# Fits a 1280-pixel window without sideways scrolling: tables have a fixed layout at the page's width and wrap
# long values anywhere; a host's long lists are folded under its row (_host_table.py).
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px;color:#1b1b1b;
background:#fafafa}
h1{font-size:22px;margin:0 0 4px;overflow-wrap:anywhere}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;margin:0 0 16px;overflow-wrap:anywhere}.meta span{margin-right:18px}
.totals{display:flex;flex-wrap:wrap;gap:8px}
.total{padding:8px 14px;border-radius:6px;min-width:90px}.total b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;background:#fff;table-layout:fixed}
th,td{border:1px solid #ddd;padding:5px 8px;text-align:left;vertical-align:top}td{overflow-wrap:anywhere}
th{background:#eee}#hosts>thead th{position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.host-details>td{padding:2px 8px 6px;border-top:none}
details>summary{cursor:pointer;color:#444}details[open]>summary{margin-bottom:6px}
table.facts th{width:170px;background:#f6f6f6;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;white-space:nowrap}
.ep{margin:0;padding-left:16px}.ok{color:#1e7d32}.bad{color:#c62828}.muted{color:#777}
code{font:12px ui-monospace,Consolas,monospace;overflow-wrap:anywhere}
.warn{background:#fff3e0;border-left:4px solid #ef6c00;padding:8px 12px}
svg{max-width:100%;height:auto}svg text{font:12px system-ui,Arial,sans-serif}
"""


class ReportHtmlError(ValueError):
    """The document given to the renderer is not a fleet report."""


def _badge(status: str) -> str:
    background, foreground = STATUS_COLOURS.get(status, ("#9e9e9e", "#1b1b1b"))
    return (
        f'<span class="badge status-{_e(status)}" style="background:{background};color:{foreground}">'
        f"{_e(status)}</span>"
    )


def validate_report(report: t.Any) -> dict[str, t.Any]:
    """Return ``report`` as a dict, or raise naming the first field that is not what schema 1 says."""
    if not isinstance(report, t.Mapping):
        raise ReportHtmlError(f"report: expected a JSON object, got {type(report).__name__}")
    if report.get("schema") != REPORT_SCHEMA:
        raise ReportHtmlError(f"report.schema: expected {REPORT_SCHEMA}, got {report.get('schema')!r}")
    if not isinstance(report.get("hosts"), list):
        raise ReportHtmlError(f"report.hosts: expected a list, got {type(report.get('hosts')).__name__}")
    if not isinstance(report.get("totals"), t.Mapping):
        raise ReportHtmlError(f"report.totals: expected an object, got {type(report.get('totals')).__name__}")
    for index, host in enumerate(report["hosts"]):
        if not isinstance(host, t.Mapping) or not host.get("host"):
            raise ReportHtmlError(f"report.hosts[{index}]: expected an object with a 'host' name, got {host!r:.120}")
    return dict(report)


def _totals_html(totals: t.Mapping[str, t.Any]) -> str:
    cards = [
        f'<div class="total" id="total-hosts" style="background:#fff;border:1px solid #ccc"><b>'
        f"{_e(totals.get('hosts', 0))}</b>hosts</div>",
        f'<div class="total" id="total-checked" style="background:#fff;border:1px solid #ccc"><b>'
        f"{_e(totals.get('checked', 0))}</b>checked</div>",
    ]
    for status in Status:
        background, foreground = STATUS_COLOURS[status]
        cards.append(
            f'<div class="total" id="total-{status.value}" style="background:{background};color:{foreground}">'
            f"<b>{_e(totals.get(status.value, 0))}</b>{_e(status.value.replace('_', ' '))}</div>"
        )
    return f'<div class="totals">{"".join(cards)}</div>'


def _run_html(report: t.Mapping[str, t.Any]) -> str:
    run = as_dict(report.get("run"))
    mode = {True: "audit (check mode)", False: "change run", None: "mixed audit and change runs"}.get(
        run.get("check_mode"), str(run.get("check_mode"))
    )
    fields = [("run", run.get("id")), ("time (UTC)", run.get("time")), ("mode", mode), ("limit", run.get("limit")),
              ("AWX job", run.get("awx_job_id")), ("playbook", run.get("playbook"))]
    meta = "".join(
        f"<span>{_e(label)}: <b>{_e(value)}</b></span>" for label, value in fields if value not in (None, "")
    )
    parts = [f'<p class="meta">{meta}</p>']
    stopped = as_dict(run.get("rollout_stopped"))
    if stopped:
        parts.append(
            f'<p class="warn" id="rollout-stopped">Rollout stopped after the batch '
            f"{_e(', '.join(str(name) for name in as_list(stopped.get('batch'))))}: "
            f"{_e(stopped.get('failed_percentage'))} % rolled back or failed (limit "
            f"{_e(stopped.get('max_fail_percentage'))} %).</p>"
        )
    worst = as_dict(report.get("worst_handshake"))
    texts = []
    for phase in ("before", "after"):
        item = as_dict(worst.get(phase))
        if item:
            texts.append(f"{phase}: <b>{_e(_ms(item.get('ms')))}</b> ({_e(item.get('host'))})")
    if texts:
        parts.append(f'<p id="worst-handshake">Worst TLS handshake \u2013 {"; ".join(texts)}</p>')
    return "".join(parts)


# The "Merged from" table of a merged report: (heading, key of a source, cell attributes).
_SOURCE_COLUMNS = (("run", "id", ""), ("time", "time", ""), ("check mode", "check_mode", ""), ("limit", "limit", ""),
                   ("AWX job", "awx_job_id", ""), ("hosts", "hosts", " class=num"),
                   ("hosts used", "hosts_used", " class=num"), ("file", "file", ""))


def _sources_html(report: t.Mapping[str, t.Any]) -> str:
    sources = [as_dict(source) for source in as_list(report.get("sources"))]
    head = "".join(f"<th>{label}</th>" for label, _key, _cell in _SOURCE_COLUMNS)
    cells = ["".join(f"<td{cell}>{_e(source.get(key))}</td>" for _label, key, cell in _SOURCE_COLUMNS)
             for source in sources]
    rows = "".join(f"<tr class='source-row'>{row}</tr>" for row in cells)
    table = f"<h2>Merged from</h2><table id='sources'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<section id="sources">{table}</section>' if sources else ""


def _host_links(names: t.Iterable[t.Any], anchors: t.Mapping[str, str], limit: int = 12) -> str:
    names = [str(name) for name in names]
    links = [f'<a href="#{anchors[n]}">{_e(n)}</a>' if n in anchors else _e(n) for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(links) + more


def _incidents_html(doc: t.Mapping[str, t.Any], anchors: t.Mapping[str, str]) -> str:
    """The incidents, first on the page: each cause and what its hosts share, whose it is, the fix, the hosts."""
    incidents = [as_dict(item) for item in as_list(doc.get("incidents"))]
    risks = _risks_html(doc, anchors)
    if not incidents:
        return ('<section id="incidents"><h2>Incidents</h2><p class="muted">No host fails: nothing to fix.</p>'
                f"{risks}</section>")
    rows = []
    for incident in incidents:
        key = as_dict(incident.get("key"))
        about = key.get("url") or key.get("proxy") or ""
        rows.append(
            f'<tr class="incident" data-cause="{_e(incident.get("cause"))}"><td><b>{_e(incident.get("title"))}</b>'
            f'<br><code class="muted">{_e(incident.get("cause"))}</code></td><td><code>{_e(about)}</code>'
            f'<br><span class="muted">{_e(incident.get("evidence") or "")}</span></td>'
            f'<td>{_e(incident.get("owner"))}<br><span class="muted">{_e(incident.get("scope"))}</span></td>'
            f'<td class="num">{len(as_list(incident.get("hosts")))}</td><td>{_e(incident.get("fix"))}</td>'
            f'<td>{_host_links(as_list(incident.get("hosts")), anchors)}</td></tr>')
    head = "".join(f"<th>{label}</th>" for label in ("cause", "about", "owner", "hosts", "fix", "which hosts"))
    return (f'<section id="incidents"><h2>Incidents ({len(incidents)})</h2><table id="incident-table">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{risks}</section>')


def _risks_html(doc: t.Mapping[str, t.Any], anchors: t.Mapping[str, str]) -> str:
    """The causes that hold on hosts whose proof passes, each with its hosts (nothing when there is none)."""
    by_cause: dict[str, list[str]] = {}
    for host in as_list(doc.get("hosts")):
        for entry in as_list(as_dict(host).get("risks")):
            by_cause.setdefault(str(as_dict(entry).get("cause")), []).append(str(as_dict(host).get("host")))
    items = "".join(f'<li class="risk" data-cause="{_e(cause)}"><code>{_e(cause)}</code> on '
                    f"{_host_links(names, anchors)}</li>" for cause, names in sorted(by_cause.items()))
    return f'<h3>Risks on passing hosts</h3><ul id="risks">{items}</ul>' if items else ""


def _since_html(doc: t.Mapping[str, t.Any], anchors: t.Mapping[str, str]) -> str:
    """What changed since the previous report in the same place (none: no section)."""
    since = as_dict(doc.get("since_last_run"))
    if not since:
        return ""
    previous = as_dict(since.get("previous"))
    items = [f"<li>newly failing: {_host_links(as_list(since.get('newly_failing')), anchors) or 'none'}</li>",
             f"<li>newly fixed: {_host_links(as_list(since.get('newly_fixed')), anchors) or 'none'}</li>"]
    for key, word in (("causes_appeared", "appeared"), ("causes_cleared", "cleared")):
        for cause, names in as_dict(since.get(key)).items():
            items.append(f"<li>{_e(word)}: <code>{_e(cause)}</code> on {_host_links(as_list(names), anchors)}</li>")
    return (f'<section id="since-last-run"><h2>Since the last run</h2><p class="muted">compared with '
            f"{_e(previous.get('run_id'))} ({_e(previous.get('time'))})</p><ul>{''.join(items)}</ul></section>")


def _sections(doc: t.Mapping[str, t.Any], hosts: list[dict[str, t.Any]]) -> list[str]:
    """The page below its title, in reading order. A new section (an incident list, right after the run's header,
    say) is one more entry; sections above the host table can link a host to its row, ``#host-<n>``."""
    order = {status.value: index for index, status in enumerate(_ROW_ORDER)}
    hosts_sorted = sorted(hosts, key=lambda host: (order.get(str(host.get("status")), -1), str(host["host"])))
    anchors = {str(host["host"]): f"host-{index}" for index, host in enumerate(hosts_sorted)}
    return [
        f'<section id="run">{_run_html(doc)}</section>',
        _incidents_html(doc, anchors),
        _since_html(doc, anchors),
        f'<section id="fleet"><h2>Fleet</h2>{_totals_html(as_dict(doc["totals"]))}</section>',
        f'<section id="latency"><h2>TLS handshake latency, before and after</h2>{render_chart_svg(hosts)}</section>',
        f'<section id="symptoms"><h2>Symptom events per hour, around the fix</h2>{render_symptoms_html(hosts)}'
        "</section>",
        f'<section id="host-table"><h2>Hosts ({len(hosts)})</h2>{render_host_table(hosts_sorted, _badge)}</section>',
        _sources_html(doc),
    ]


def render_report_html(report: t.Mapping[str, t.Any]) -> str:
    """The whole page for one report document (raises ReportHtmlError for a document that is not one)."""
    doc = validate_report(report)
    hosts = [dict(host) for host in doc["hosts"]]
    run_id = as_dict(doc.get("run")).get("id") or "run"
    title = f"crlfix fleet report \u2013 {run_id}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{''.join(_sections(doc, hosts))}"
        '<p class="muted">Generated by crlfix.windows from the JSON report; self-contained, no network needed.</p>'
        "</body></html>\n"
    )


def write_report_html(report: t.Mapping[str, t.Any], directory: str, file_stem: str) -> str:
    """Render ``report`` to ``<directory>/<file_stem>.html`` (temp file + rename) and return the path.

    The companion of ``_fleet_report.write_report``: same directory, same stem, so the page sits beside its
    JSON document. An existing page of that name is replaced (it is derived data; the JSON is the record).
    """
    page = render_report_html(report)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{file_stem}.html")
    write_text_atomic(path, page)
    return path


__all__ = ["CHART_HOST_LIMIT", "STATUS_COLOURS", "ReportHtmlError", "host_latencies", "render_chart_svg",
           "render_report_html", "validate_report", "write_report_html"]
