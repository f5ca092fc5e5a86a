"""The HTML fleet report as a browser shows it: Debian's chromium, headless, offline, fresh profile.

Chromium comes from `make setup` (tests/report/install-chromium.sh). A missing chromium fails the test with
that instruction rather than skipping it. The page is opened from a file:// URL with every background service
of the browser switched off and host resolution mapped to nothing, so the test also proves the page needs no
network to render.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._html import STATUS_COLOURS, render_report_html
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._merge import merge_reports
from tests.report.sample import HOSTILE_HOST, HOSTILE_REASON, sample_report

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Any attempt to reach a host name fails at once: the page must render without one.
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run `make setup` (bash tests/report/install-chromium.sh)"
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    # HOME too: besides its profile, chromium keeps crash reports in ~/.config and dconf's state in ~/.cache.
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120,
        check=False, cwd=tmp_path, env={**os.environ, "HOME": str(profile)},
    )
    assert result.returncode == 0, f"chromium exited {result.returncode}\n{result.stderr[-3000:]}"
    return result


class Dom(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._skip += tag in ("style", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "title") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)

    def with_class(self, tag: str, css: str) -> list[dict[str, str | None]]:
        return [a for name, a in self.elements if name == tag and css in (a.get("class") or "").split()]


def _png_pixels(path: Path) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the set of RGB colours of an 8-bit RGB/RGBA non-interlaced PNG (what chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour_type, _c, _f, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    previous, colours = bytearray(stride), set()
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - up_left
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        colours.update(tuple(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


def _write_page(tmp_path: Path) -> tuple[dict, Path]:
    report = sample_report()
    page = tmp_path / "report.html"
    page.write_text(render_report_html(report), encoding="utf-8")
    return report, page


def test_chromium_renders_every_host_the_chart_and_the_totals(tmp_path) -> None:
    report, page = _write_page(tmp_path)
    dom = Dom(_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    rows = dom.with_class("tr", "host-row")
    assert {row["data-host"]: row["data-status"] for row in rows} == {h["host"]: h["status"] for h in report["hosts"]}
    assert [tag for tag, a in dom.elements if tag == "svg" and a.get("id") == "latency-chart"]
    assert len(dom.with_class("g", "chart-row")) == 5
    assert dom.with_class("rect", "bar-before") and dom.with_class("rect", "bar-after")
    text = " ".join(" ".join(dom.text).split())
    assert "7 hosts" in text and "1 rolled back" in text and "1 unreachable" in text
    assert "15,012 ms" in text and "14 ms" in text
    # The symptom chart, for the fleet and per host with symptoms, the fix as a dashed line.
    charts = [a.get("id") for tag, a in dom.elements if tag == "svg" and "symptom-chart" in (a.get("class") or "")]
    assert charts == ["symptoms-fleet", "symptoms-host-0", "symptoms-host-1"]
    # Bars per hour with events: the fleet 00, 01, 04 h; lync-fe01 00, 01 h; lync-fe02 00, 01, 04 h.
    assert len(dom.with_class("rect", "symptom-bar")) == 3 + 2 + 3 and len(dom.with_class("line", "fix-line")) == 4
    assert "lync-fe01.lab.test: 47 event(s) (fix marked)" in text
    # The browser parsed the hostile strings as text: no element came out of them.
    assert HOSTILE_HOST in text and " ".join(HOSTILE_REASON.split()) in text
    assert not [tag for tag, _a in dom.elements if tag in ("script", "img", "iframe", "object")]


def test_the_screenshot_shows_the_status_colours(tmp_path) -> None:
    _report, page = _write_page(tmp_path)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1400,1100", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    width, height, colours = _png_pixels(shot)
    assert (width, height) == (1400, 1100)
    for status in ("compliant", "changed", "would_change", "rolled_back", "failed", "unreachable"):
        background = STATUS_COLOURS[status][0]
        rgb = tuple(int(background[i:i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, f"{status} colour {background} not on the screenshot"
    assert (0x15, 0x65, 0xC0) in colours  # the "after" bars of the chart


# Written into a copy of the page (without its CSP, which forbids scripts): the document's scroll width, its visible
# width and the right edge of the widest element (a table that scrolls inside a box of its own counts too), first
# with every host's details folded, then with all of them open.
_MEASURE = (
    "<script>(function(){var d=document.documentElement;function edge(){var r=0;"
    "document.querySelectorAll('body *').forEach(function(e){r=Math.max(r,e.getBoundingClientRect().right)});"
    "return Math.ceil(r)}function m(n){d.setAttribute('data-'+n,[d.scrollWidth,d.clientWidth,edge()].join(' '))}"
    "m('folded');document.querySelectorAll('details').forEach(function(e){e.open=true});m('unfolded')})()</script>"
)


def _widths(tmp_path: Path, page: str) -> dict[str, list[int]]:
    probe = tmp_path / "measured.html"
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    probe.write_text(page.replace("</body>", f"{_MEASURE}</body>"), encoding="utf-8")
    dom = Dom(_chromium(tmp_path, "--window-size=1280,800", "--dump-dom", probe.as_uri()).stdout)
    (html,) = [attrs for tag, attrs in dom.elements if tag == "html"]
    return {state: [int(n) for n in html[f"data-{state}"].split()] for state in ("folded", "unfolded")}


@pytest.mark.parametrize("merged", [False, True], ids=["report", "merged"])
def test_the_page_fits_a_1280_pixel_window_folded_and_unfolded(tmp_path, merged) -> None:
    report = sample_report()
    if merged:
        other = sample_report(check_mode=True)
        other["run"]["id"] = "audit-" + "x" * 80  # a long run id and file name must wrap too
        report = merge_reports([report, other])
    widths = _widths(tmp_path, render_report_html(report))
    for state, (scroll_width, client_width, right_edge) in widths.items():
        assert 1200 < client_width <= 1280, widths
        assert scroll_width == client_width and right_edge <= client_width, f"{state}: {widths}"
