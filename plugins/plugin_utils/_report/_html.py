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

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._findings import REFUSED
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import Status
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import (
    REPORT_SCHEMA,
    as_dict,
    as_list,
)
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
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._symptoms import (
    host_cell_html,
    render_symptoms_html,
)

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

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px;color:#1b1b1b;
background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;margin:0 0 16px}.meta span{margin-right:18px}
.totals{display:flex;flex-wrap:wrap;gap:8px}
.total{padding:8px 14px;border-radius:6px;min-width:90px}.total b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #ddd;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eee;position:sticky;top:0}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}#hosts td:first-child{white-space:nowrap}
td.reason{min-width:220px;max-width:420px}td.proxy{min-width:170px}
td.endpoints{min-width:340px}td.identities{min-width:300px}td.errors{min-width:220px;max-width:420px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;white-space:nowrap}
.ep{margin:0;padding-left:16px}.ok{color:#1e7d32}.bad{color:#c62828}.muted{color:#777}
code{font:12px ui-monospace,Consolas,monospace;overflow-wrap:anywhere}
.warn{background:#fff3e0;border-left:4px solid #ef6c00;padding:8px 12px}
svg text{font:12px system-ui,Arial,sans-serif}
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


def _views_text(state: t.Any) -> str:
    """``native: 10.0.0.1:8080 (bypass <local>)`` per registry view, or ``direct``."""
    views = as_dict(as_dict(state).get("views"))
    if not views:
        return '<span class="muted">\u2013</span>'
    lines = []
    for view, value in sorted(views.items()):
        data = as_dict(value)
        if data.get("proxy"):
            bypass = ";".join(str(item) for item in as_list(data.get("bypass")))
            text = f"{data['proxy']}" + (f" (bypass {bypass})" if bypass else "")
        else:
            text = "direct" if data.get("present") or data.get("mode") else "not set (direct)"
        lines.append(f"{_e(view)}: <code>{_e(text)}</code>")
    return "<br>".join(lines)


def _endpoints_html(host: t.Mapping[str, t.Any]) -> str:
    endpoints = as_list(host.get("endpoints"))
    if not endpoints:
        return '<span class="muted">none</span>'
    items = []
    for endpoint in endpoints:
        data = as_dict(endpoint)
        result = as_dict(data.get("result"))
        if not result:
            state, css = "not measured", "muted"
        elif result.get("reachable") and result.get("usable", True):
            state, css = "reachable", "ok"
        elif result.get("reachable"):
            state, css = "reachable, not usable", "bad"
        else:
            state, css = "unreachable", "bad"
        detail = result.get("error") or (f"HTTP {result['http_status']}" if result.get("http_status") else "")
        detail = "; ".join(part for part in (detail, _foreign_agent_text(result)) if part)
        phase = f" ({result['phase']})" if result.get("phase") else ""
        items.append(
            f'<li><code>{_e(data.get("url"))}</code> <span class="endpoint-status {css}">{_e(state)}{_e(phase)}'
            f"</span>{' <span class=muted>' + _e(detail) + '</span>' if detail else ''}</li>"
        )
    return f'<ul class="ep">{"".join(items)}</ul>'


def _foreign_agent_text(result: t.Mapping[str, t.Any]) -> str:
    """What the per-URL fetch's second request, with a foreign User-Agent, got (docs/dev/host-scripts.md), when it
    tells something: an answer other than CryptoAPI's agent got (the same answer, or none, says nothing here)."""
    foreign = as_dict(result.get("foreign_agent"))
    status, first = foreign.get("http_status"), result.get("http_status")
    if status is None or status == first:
        return ""
    if status in REFUSED and isinstance(first, int) and 200 <= first < 300:
        return (f"answered {status} only for a foreign agent: the proxy filters by User-Agent; "
                "CryptoAPI's own retrieval passes")
    return f"a foreign agent got HTTP {status}"


def _rollback_html(rollback: t.Any) -> str:
    data = as_dict(rollback)
    if not data.get("performed"):
        return '<span class="muted">\u2013</span>'
    verdict = '<span class="ok">restored</span>' if data.get("ok") else '<span class="bad">restore FAILED</span>'
    extra = data.get("msg") or data.get("reason")
    return verdict + (f"<br><span class=muted>{_e(extra)}</span>" if extra else "")


def _errors_html(errors: t.Any) -> str:
    items = [
        f"<li><b>{_e(as_dict(error).get('step') or '?')}</b>: {_e(as_dict(error).get('msg'))}</li>"
        for error in as_list(errors)
    ]
    return f'<ul class="ep">{"".join(items)}</ul>' if items else '<span class="muted">\u2013</span>'


def _path_text(path: t.Any) -> str:
    data = as_dict(path)
    source = str(data.get("source") or "?")
    if source == "direct":
        return source
    if source == "wpad" and not data.get("proxy"):  # discovery found nothing: the fetch goes direct
        return f"wpad, no proxy found ({data.get('error') or 'unknown'}): direct"
    return f"{source} {data.get('proxy') or data.get('script') or '(unknown)'}"


def _service_items(service: t.Mapping[str, t.Any]) -> list[str]:
    """The handshake with the host's own running service, and its restart when the role made one (_service.py)."""
    if not service:
        return []
    shake = as_dict(service.get("handshake"))
    state = '<span class="bad">stale</span>' if service.get("stale") else '<span class="ok">fresh</span>'
    items = [f'<li class="service">own service {_e(", ".join(service.get("services") or []))}: {state} '
             f"({_e(shake.get('verdict'))} {_e(_ms(shake.get('max_ms')))})</li>"]
    restart = as_dict(service.get("restart"))
    if restart:
        entries = [as_dict(x) for x in restart.get("services") or []]
        done = ", ".join(f"{e.get('name')} "
                         + ("restarted" if e.get("restarted") else f"NOT restarted: {e.get('error')}")
                         for e in entries)
        items.append(f'<li class="service muted">restart: {_e(done)}</li>')
    return items


def _identities_html(host: t.Mapping[str, t.Any]) -> str:
    """Each identity's CryptoAPI path (and its chain verdict once measured, or why the proof did not run as it), then
    the connecting account's; the findings are in the symptoms-and-findings cell (_symptoms.host_cell_html)."""
    items = []
    for name, entry in as_dict(host.get("identities")).items():
        data = as_dict(entry)
        chain, not_run = data.get("chain_ok"), data.get("not_run_reason")
        verdict = "" if chain is None else (' <span class="ok">chain ok</span>' if chain
                                            else ' <span class="bad">chain FAILED</span>')
        if chain is None and not_run and data.get("runnable") is not False:
            verdict = ' <span class="muted">proof not run</span>'
        ms = f" {_e(_ms(data.get('chain_ms')))}" if data.get("chain_ms") is not None else ""
        why = data.get("error") or (not_run if chain is None else None)
        error = f"<br><span class=muted>{_e(why)}</span>" if why else ""
        items.append(f'<li class="identity"><code>{_e(name)}</code>: {_e(_path_text(data.get("effective_proxy")))}'
                     f"{verdict}{ms}{error}</li>")
    items += _service_items(as_dict(host.get("service")))
    caller = as_dict(host.get("caller"))
    if caller.get("name"):
        items.append(f'<li class="caller muted">connecting as <code>{_e(caller["name"])}</code>: '
                     f"{_e(_path_text(caller.get('effective_proxy')))}</li>")
    return f'<ul class="ep">{"".join(items)}</ul>' if items else '<span class="muted">\u2013</span>'


def _host_row(host: t.Mapping[str, t.Any]) -> str:
    status = str(host.get("status") or "failed")
    before, after = host_latencies(host)
    source = f"<br><span class=muted>run {_e(host['source_run'])}</span>" if host.get("source_run") else ""
    return (
        f'<tr class="host-row status-{_e(status)}" data-host="{_e(host["host"])}" data-status="{_e(status)}">'
        f"<td><b>{_e(host['host'])}</b>{source}</td><td>{_badge(status)}</td>"
        f"<td class=reason>{_e(host.get('reason')) or '<span class=muted>&#8211;</span>'}</td>"
        f"<td class=proxy>{_views_text(host.get('before'))}</td><td class=proxy>{_views_text(host.get('after'))}</td>"
        f'<td class="num">{_e(_ms(before))}</td><td class="num">{_e(_ms(after))}</td>'
        f"<td class=endpoints>{_endpoints_html(host)}</td><td class=identities>{_identities_html(host)}</td>"
        f"<td>{_rollback_html(host.get('rollback'))}</td>"
        f"<td class=errors>{_errors_html(host.get('errors'))}</td><td class=errors>{host_cell_html(host)}</td></tr>"
    )


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
    return table if sources else ""


def render_report_html(report: t.Mapping[str, t.Any]) -> str:
    """The whole page for one report document (raises ReportHtmlError for a document that is not one)."""
    doc = validate_report(report)
    hosts = [dict(host) for host in doc["hosts"]]
    order = {status.value: index for index, status in enumerate(_ROW_ORDER)}
    hosts_sorted = sorted(hosts, key=lambda host: (order.get(str(host.get("status")), -1), str(host["host"])))
    run_id = as_dict(doc.get("run")).get("id") or "run"
    title = f"crlfix fleet report \u2013 {run_id}"
    table = "".join(_host_row(host) for host in hosts_sorted)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{_run_html(doc)}"
        f"<h2>Fleet</h2>{_totals_html(as_dict(doc['totals']))}"
        f"<h2>TLS handshake latency, before and after</h2>{render_chart_svg(hosts)}"
        f"<h2>Symptom events per hour, around the fix</h2>{render_symptoms_html(hosts)}"
        f'<h2>Hosts ({len(hosts)})</h2><div class="scroll"><table id="hosts">'
        "<thead><tr><th>host</th><th>status</th><th>reason</th>"
        "<th>proxy before</th><th>proxy after</th><th>handshake before</th><th>handshake after</th>"
        "<th>revocation endpoints</th><th>identities</th><th>rollback</th><th>errors</th><th>symptoms and findings</th>"
        "</tr></thead>"
        f"<tbody>{table}</tbody></table></div>{_sources_html(doc)}"
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
