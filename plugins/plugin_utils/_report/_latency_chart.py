# PRIVATE to the crlfix.windows collection; may change without notice.
"""The report's latency chart (worst handshake per host, before and after, inline SVG) and the two formatters the
page shares with it. Host values are untrusted: everything is escaped for text and attributes."""

from __future__ import annotations

import html
import math
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import as_dict, measurement_worst_ms

# A fleet of thousands would make a chart nobody can read: it shows the slowest hosts (by "before").
CHART_HOST_LIMIT = 60


def escape(value: t.Any) -> str:
    """Escape for HTML text and double- or single-quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def format_ms(value: t.Any) -> str:
    """A duration for a reader: whole ms from 10 ms, a dash for none."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def host_latencies(host: t.Mapping[str, t.Any]) -> tuple[float | None, float | None]:
    """(before, after) worst handshake of one host; "after" is what the run left (rollback beats after)."""
    probes = as_dict(host.get("probes"))
    before = measurement_worst_ms(probes.get("before"))
    after = measurement_worst_ms(probes.get("after_rollback"))
    if after is None:
        after = measurement_worst_ms(probes.get("after"))
    return before, after


def _threshold(hosts: list[dict[str, t.Any]]) -> float | None:
    for host in hosts:
        for probe in as_dict(host.get("probes")).values():
            value = as_dict(probe).get("max_handshake_ms")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
    return None


def render_chart_svg(hosts: list[dict[str, t.Any]]) -> str:
    """Horizontal bars per host, before (grey) and after (blue), on a log scale (12 ms and 15 s on one axis)."""
    rows = [(host, *host_latencies(host)) for host in hosts]
    rows = [row for row in rows if row[1] is not None or row[2] is not None]
    if not rows:
        return '<p class="muted" id="chart-empty">No handshake was measured in this run.</p>'
    rows.sort(key=lambda row: -max(value for value in row[1:] if value is not None))
    shown = rows[:CHART_HOST_LIMIT]
    values = [value for row in shown for value in row[1:] if value is not None]
    threshold = _threshold(hosts)
    top = max([*values, threshold or 0, 10.0])
    # Log axis from 1 ms to the next power of ten above the slowest value.
    decades = max(1, math.ceil(math.log10(max(top, 1.0)) + 1e-9))
    label_w, plot_w, row_h, bar_h, pad_top = 230, 560, 30, 11, 28
    width = label_w + plot_w + 90
    height = pad_top + row_h * len(shown) + 30

    def x_of(ms: float) -> float:
        return label_w + plot_w * min(1.0, max(0.0, math.log10(max(ms, 1.0)) / decades))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="latency-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="TLS handshake latency before and after, per host">',
        f"<title>Worst TLS handshake per host, before and after (log scale), {len(shown)} of {len(rows)} hosts"
        "</title>",
        f'<rect x="{label_w}" y="{pad_top - 6}" width="{plot_w}" height="{row_h * len(shown) + 6}" fill="#fff" '
        'stroke="#ccc"/>',
    ]
    for power in range(decades + 1):
        x = x_of(10.0**power)
        tick = f"{10**power:,} ms" if power < 3 else f"{10 ** (power - 3):,} s"
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad_top - 6}" x2="{x:.1f}" y2="{pad_top + row_h * len(shown)}" stroke="#e3e3e3"/>'
            f'<text x="{x:.1f}" y="{pad_top - 10}" text-anchor="middle" fill="#555">{tick}</text>'
        )
    if threshold:
        x = x_of(threshold)
        parts.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{pad_top - 6}" x2="{x:.1f}" '
            f'y2="{pad_top + row_h * len(shown)}" stroke="#c62828" stroke-dasharray="4 3"/>'
        )
    for index, (host, before, after) in enumerate(shown):
        y = pad_top + index * row_h
        name = str(host["host"])
        label = name if len(name) <= 34 else name[:33] + "\u2026"
        parts.append(
            f'<g class="chart-row" data-host="{escape(name)}"><text x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for offset, value, colour, phase in ((2, before, "#9e9e9e", "before"), (2 + bar_h + 2, after, "#1565c0",
                                                                                "after")):
            if value is None:
                continue
            end = x_of(value)
            parts.append(
                f'<rect class="bar-{phase}" x="{label_w}" y="{y + offset}" width="{max(end - label_w, 1.5):.1f}" '
                f'height="{bar_h}" fill="{colour}">'
                f'<title>{escape(name)} {phase}: {escape(format_ms(value))}</title></rect>'
                f'<text x="{end + 4:.1f}" y="{y + offset + bar_h - 1}" fill="#333">{escape(format_ms(value))}</text>'
            )
        parts.append("</g>")
    legend_y = pad_top + row_h * len(shown) + 18
    parts.append(
        f'<rect x="{label_w}" y="{legend_y - 9}" width="10" height="10" fill="#9e9e9e"/>'
        f'<text x="{label_w + 14}" y="{legend_y}">before</text>'
        f'<rect x="{label_w + 70}" y="{legend_y - 9}" width="10" height="10" fill="#1565c0"/>'
        f'<text x="{label_w + 84}" y="{legend_y}">after (after rollback where one happened)</text>'
    )
    if threshold:
        parts.append(f'<text x="{label_w + 360}" y="{legend_y}" fill="#c62828">'
                     f'- - threshold {format_ms(threshold)}</text>')
    parts.append("</svg>")
    note = ""
    if len(rows) > len(shown):
        note = f'<p class="muted">The {len(shown)} slowest of {len(rows)} measured hosts.</p>'
    return "".join(parts) + note


__all__ = ["CHART_HOST_LIMIT", "escape", "format_ms", "host_latencies", "render_chart_svg"]
