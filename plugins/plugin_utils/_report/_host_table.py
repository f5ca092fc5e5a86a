# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fleet report's host table (``render_host_table``): one row per host, its details folded under it.

The row holds what a reader scans a fleet by (host, status, reason, the proxy before and after, the worst handshake
before and after) in a fixed layout that wraps long values, so the page fits a 1280-pixel window. Everything else
of the host (revocation endpoints, identities, its own service, rollback, errors, symptoms and findings) is in a
``<details>`` element in the row below, closed, with a one-line summary of what it holds. Host values are untrusted:
everything is escaped for text and attributes.
"""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._findings import REFUSED
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import as_dict, as_list
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._latency_chart import escape as _e
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._latency_chart import (
    format_ms as _ms,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._latency_chart import host_latencies
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._symptoms import host_cell_html

_DASH = '<span class="muted">\u2013</span>'
# (heading, column width): the widths add up to 100 % of the table, whatever the window.
COLUMNS = (("host", "16%"), ("status", "11%"), ("reason", "23%"), ("proxy before", "16%"), ("proxy after", "16%"),
           ("handshake before", "9%"), ("handshake after", "9%"))


def _views_text(state: t.Any) -> str:
    """``native: 10.0.0.1:8080 (bypass <local>)`` per registry view, or ``direct``."""
    views = as_dict(as_dict(state).get("views"))
    if not views:
        return _DASH
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


def _endpoint_state(result: t.Mapping[str, t.Any]) -> tuple[str, str]:
    if not result:
        return "not measured", "muted"
    if result.get("reachable") and result.get("usable", True):
        return "reachable", "ok"
    if result.get("reachable"):
        return "reachable, not usable", "bad"
    return "unreachable", "bad"


def _endpoints_html(host: t.Mapping[str, t.Any]) -> str:
    endpoints = as_list(host.get("endpoints"))
    if not endpoints:
        return '<span class="muted">none</span>'
    items = []
    for endpoint in endpoints:
        data = as_dict(endpoint)
        result = as_dict(data.get("result"))
        state, css = _endpoint_state(result)
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
        return _DASH
    verdict = '<span class="ok">restored</span>' if data.get("ok") else '<span class="bad">restore FAILED</span>'
    extra = data.get("msg") or data.get("reason")
    return verdict + (f"<br><span class=muted>{_e(extra)}</span>" if extra else "")


def _errors_html(errors: t.Any) -> str:
    items = [
        f"<li><b>{_e(as_dict(error).get('step') or '?')}</b>: {_e(as_dict(error).get('msg'))}</li>"
        for error in as_list(errors)
    ]
    return f'<ul class="ep">{"".join(items)}</ul>' if items else _DASH


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
    return f'<ul class="ep">{"".join(items)}</ul>' if items else _DASH


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _details_summary(host: t.Mapping[str, t.Any]) -> str:
    """One line of counts: what the folded details hold, and what needs a look."""
    endpoints = [as_dict(as_dict(e).get("result")) for e in as_list(host.get("endpoints"))]
    failing = sum(1 for result in endpoints if _endpoint_state(result)[1] == "bad")
    parts = [_count(len(endpoints), "revocation endpoint") + (f", {failing} failing" if failing else ""),
             _count(len(as_dict(host.get("identities"))), "identity", "identities")]
    if as_dict(host.get("service")).get("stale"):
        parts.append("own service stale")
    findings = [str(as_dict(f).get("code")) for f in as_list(host.get("findings"))]
    if findings:
        parts.append(f"{_count(len(findings), 'finding')}: {', '.join(sorted(set(findings)))}")
    if as_dict(host.get("rollback")).get("performed"):
        parts.append("rolled back")
    if as_list(host.get("errors")):
        parts.append(_count(len(as_list(host.get("errors"))), "error"))
    return "; ".join(parts)


def _details_row(host: t.Mapping[str, t.Any], anchor: str) -> str:
    facts = (("revocation endpoints", "endpoints", _endpoints_html(host)),
             ("identities", "identities", _identities_html(host)),
             ("rollback", "rollback", _rollback_html(host.get("rollback"))),
             ("errors", "errors", _errors_html(host.get("errors"))),
             ("symptoms and findings", "findings", host_cell_html(host)))
    rows = "".join(f"<tr><th>{label}</th><td class={css}>{cell}</td></tr>" for label, css, cell in facts)
    return (f'<tr class="host-details" data-details-of="{_e(host["host"])}"><td colspan="{len(COLUMNS)}">'
            f'<details id="{anchor}-details"><summary>{_e(_details_summary(host))}</summary>'
            f'<table class="facts">{rows}</table></details></td></tr>')


def _host_row(host: t.Mapping[str, t.Any], anchor: str, badge: t.Callable[[str], str]) -> str:
    status = str(host.get("status") or "failed")
    before, after = host_latencies(host)
    source = f"<br><span class=muted>run {_e(host['source_run'])}</span>" if host.get("source_run") else ""
    return (
        f'<tr class="host-row status-{_e(status)}" id="{anchor}" data-host="{_e(host["host"])}"'
        f' data-status="{_e(status)}"><td><b>{_e(host["host"])}</b>{source}</td><td>{badge(status)}</td>'
        f"<td class=reason>{_e(host.get('reason')) or _DASH}</td>"
        f"<td class=proxy>{_views_text(host.get('before'))}</td><td class=proxy>{_views_text(host.get('after'))}</td>"
        f'<td class="num">{_e(_ms(before))}</td><td class="num">{_e(_ms(after))}</td></tr>'
    )


def render_host_table(hosts: t.Sequence[t.Mapping[str, t.Any]], badge: t.Callable[[str], str]) -> str:
    """The table of ``hosts`` in the order given; host ``n`` (from 0) is the row ``#host-n`` (a link target for
    sections above the table), its details ``#host-n-details``. ``badge`` renders a status."""
    columns = "".join(f'<col style="width:{width}">' for _label, width in COLUMNS)
    head = "".join(f"<th>{label}</th>" for label, _width in COLUMNS)
    body = "".join(_host_row(host, f"host-{index}", badge) + _details_row(host, f"host-{index}")
                   for index, host in enumerate(hosts))
    return (f'<table id="hosts"><colgroup>{columns}</colgroup><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


__all__ = ["COLUMNS", "render_host_table"]
