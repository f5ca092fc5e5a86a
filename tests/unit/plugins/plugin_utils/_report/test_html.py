"""The HTML fleet report: self-contained, every host and status shown, host data escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._host_table import COLUMNS
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._html import (
    CHART_HOST_LIMIT,
    STATUS_COLOURS,
    ReportHtmlError,
    host_latencies,
    render_report_html,
    write_report_html,
)
from tests.report.sample import HOSTILE_HOST, HOSTILE_REASON, record, sample_report, tls


class Page(HTMLParser):
    """Collects what the tests look at: every start tag with its attributes, and the visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for name, a in self.tags if name == tag and all(a.get(k) == v for k, v in attrs.items())]


def identities_cell(html: str) -> str:
    """The first host row's identities cell, without its closing tag."""
    cell = html[html.index("<td class=identities>"):]
    return cell[:cell.index("</td>")]


def test_every_host_is_one_row_with_its_status_and_problems_come_first() -> None:
    report = sample_report()
    page = Page(render_report_html(report))
    rows = [a for tag, a in page.tags if tag == "tr" and "host-row" in (a.get("class") or "")]
    assert sorted(row["data-host"] for row in rows) == sorted(h["host"] for h in report["hosts"])
    assert {row["data-host"]: row["data-status"] for row in rows} == {h["host"]: h["status"] for h in report["hosts"]}
    assert [row["data-status"] for row in rows][:2] == ["failed", "rolled_back"]
    assert rows[-1]["data-status"] == "compliant"


def test_status_badges_carry_their_colour() -> None:
    page = Page(render_report_html(sample_report()))
    for status in ("compliant", "changed", "would_change", "rolled_back", "failed", "unreachable", "not_run"):
        badges = page.find("span", **{"class": f"badge status-{status}"})
        assert badges, status
        assert STATUS_COLOURS[status][0] in badges[0]["style"]


def test_totals_are_the_reports_totals() -> None:
    report = sample_report()
    html = render_report_html(report)
    for key in ("hosts", "checked", "compliant", "changed", "rolled_back", "failed", "unreachable", "not_run"):
        match = re.search(rf'id="total-{key}"[^>]*><b>(\d+)</b>', html)
        assert match and int(match.group(1)) == report["totals"][key], key


def test_the_page_needs_nothing_from_outside() -> None:
    html = render_report_html(sample_report())
    page = Page(html)
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    for _tag, attrs in page.tags:
        for name, value in attrs.items():
            # Links within the page (an incident's host to its row) are all an href may be.
            assert name != "src" and not name.startswith("on"), (name, value)
            assert name != "href" or (value or "").startswith("#"), (name, value)
    assert "url(" not in html and "@import" not in html
    assert page.find("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"].startswith("default-src 'none'")


def test_untrusted_host_data_stays_text() -> None:
    html = render_report_html(sample_report())
    page = Page(html)
    text = "".join(page.text)
    assert HOSTILE_HOST in text and HOSTILE_REASON in text and "<script>alert(3)</script>" in text
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert not any(name.startswith("on") for _tag, attrs in page.tags for name in attrs)
    # The reason that tries to close the cell did not add a row.
    assert len([a for tag, a in page.tags if tag == "tr" and "host-row" in (a.get("class") or "")]) == 7


def test_chart_has_before_and_after_bars_per_measured_host() -> None:
    report = sample_report()
    page = Page(render_report_html(report))
    assert page.find("svg", id="latency-chart")
    chart_hosts = [a["data-host"] for a in page.find("g", **{"class": "chart-row"})]
    measured = [h["host"] for h in report["hosts"] if any(v is not None for v in host_latencies(h))]
    assert sorted(chart_hosts) == sorted(measured)
    assert chart_hosts[0] == "lync-fe03.lab.test"  # slowest first
    assert len(page.find("rect", **{"class": "bar-before"})) == 5
    assert len(page.find("rect", **{"class": "bar-after"})) == 2  # fe02 after, fe03 after rollback
    assert page.find("line", **{"class": "threshold"})


def test_after_is_the_rollback_measurement_when_there_was_one() -> None:
    fe03 = next(h for h in sample_report()["hosts"] if h["host"] == "lync-fe03.lab.test")
    assert host_latencies(fe03) == (15020, 15030)


def test_a_large_fleet_charts_only_its_slowest_hosts() -> None:
    records = {f"h{i:04d}": record(f"h{i:04d}", "compliant", checks={"before": {"tls": tls(i + 1, passed=True)}})
               for i in range(CHART_HOST_LIMIT + 15)}
    html = render_report_html(sample_report(records=records, hosts=list(records)))
    page = Page(html)
    rows = page.find("g", **{"class": "chart-row"})
    assert len(rows) == CHART_HOST_LIMIT
    assert rows[0]["data-host"] == f"h{CHART_HOST_LIMIT + 14:04d}"
    assert f"The {CHART_HOST_LIMIT} slowest of {CHART_HOST_LIMIT + 15} measured hosts" in html


def test_a_run_without_measurements_says_so() -> None:
    records = {"a": record("a", "unreachable", errors=[{"step": "gather", "msg": "refused"}])}
    html = render_report_html(sample_report(records=records, hosts=["a"]))
    assert 'id="chart-empty"' in html and "latency-chart" not in html


def test_rollout_stopped_and_check_mode_are_shown() -> None:
    report = sample_report(check_mode=True)
    report["run"]["rollout_stopped"] = {"batch": ["lync-fe03.lab.test"], "failed_percentage": 100.0,
                                        "max_fail_percentage": 50}
    html = render_report_html(report)
    assert 'id="rollout-stopped"' in html and "lync-fe03.lab.test: 100.0 %" in html
    assert "audit (check mode)" in html


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "report: expected a JSON object, got list"),
        ({"schema": 2, "hosts": [], "totals": {}}, "report.schema: expected 1, got 2"),
        ({"schema": 1, "hosts": {}, "totals": {}}, "report.hosts: expected a list, got dict"),
        ({"schema": 1, "hosts": [], "totals": None}, "report.totals: expected an object, got NoneType"),
        ({"schema": 1, "hosts": [{"status": "failed"}], "totals": {}}, "report.hosts[0]: expected an object with"),
    ],
)
def test_a_document_that_is_not_a_report_is_refused_naming_the_field(bad, message) -> None:
    with pytest.raises(ReportHtmlError, match=re.escape(message)):
        render_report_html(bad)


def test_write_report_html_puts_the_page_beside_the_json(tmp_path) -> None:
    report = sample_report()
    path = write_report_html(report, str(tmp_path / "reports"), "fix-crl-1")
    assert path == str(tmp_path / "reports" / "fix-crl-1.html")
    assert (tmp_path / "reports" / "fix-crl-1.html").read_text(encoding="utf-8") == render_report_html(report)
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["fix-crl-1.html"]  # no temp file left


def test_write_report_html_writes_nothing_for_a_bad_document(tmp_path) -> None:
    with pytest.raises(ReportHtmlError):
        write_report_html({"schema": 1}, str(tmp_path), "bad")
    assert not list(tmp_path.iterdir())


def _details_of(page: str, host: str) -> str:
    """The folded details of ``host``: its row below the host's row, up to the end of its <details>."""
    details = page[page.index(f'data-details-of="{host}"'):]
    return details[:details.index("</details>")]


def test_each_host_row_is_followed_by_its_details_folded_with_a_summary() -> None:
    report = sample_report()
    page = render_report_html(report)
    parsed = Page(page)
    rows = [a for tag, a in parsed.tags if tag == "tr" and (a.get("class") or "").startswith("host-")]
    # Row, then its details row, host after host; ids link a host from anywhere on the page.
    pairs = [(kind, a["data-host"]) for a in rows if a["class"].startswith("host-row")
             for kind in ("host-row", "host-details")]
    assert [(a["class"].split()[0], a.get("data-host") or a.get("data-details-of")) for a in rows] == pairs
    assert [a["id"] for a in rows if a.get("id")] == [f"host-{n}" for n in range(len(report["hosts"]))]
    details = parsed.find("details")
    assert len(details) == len(report["hosts"]) and not any("open" in a for a in details)
    exchange = _details_of(page, "exch-mbx01.lab.test")
    assert "<summary>1 revocation endpoint, 1 failing; 0 identities</summary>" in exchange
    fe03 = _details_of(page, "lync-fe03.lab.test")
    assert "<summary>1 revocation endpoint, 1 failing; 0 identities; rolled back</summary>" in fe03
    assert "<th>revocation endpoints</th><td class=endpoints>" in fe03 and "<th>rollback</th>" in fe03


def test_the_host_table_columns_fill_the_page_width_exactly() -> None:
    widths = [float(width.rstrip("%")) for _label, width in COLUMNS]
    assert sum(widths) == 100
    page = Page(render_report_html(sample_report()))
    assert len(page.find("col")) == len(COLUMNS)
    assert {a["colspan"] for a in page.find("td") if "colspan" in a} == {str(len(COLUMNS))}


def test_the_sections_come_in_reading_order() -> None:
    html = render_report_html(sample_report())
    ids = re.findall(r'<section id="([\w-]+)"', html)
    assert ids == ["run", "incidents", "fleet", "latency", "symptoms", "host-table"]


def test_the_incidents_lead_the_page_and_link_their_hosts_and_the_changes_since_the_last_run_follow() -> None:
    report = sample_report()
    name = report["hosts"][0]["host"]
    report["incidents"] = [{"cause": "crl_expired_at_source", "title": "a CRL expired at its publisher",
                            "owner": "pki", "scope": "source", "key": {"url": "http://pki/<x>.crl"},
                            "hosts": [name, "gone.lab.test"], "fix": "republish the CRL", "evidence": "stale"}]
    report["since_last_run"] = {"previous": {"run_id": "r0", "time": "t0"}, "newly_failing": [name],
                                "newly_fixed": [], "causes_appeared": {"crl_expired_at_source": [name]},
                                "causes_cleared": {}}
    html = render_report_html(report)
    assert re.findall(r'<section id="([\w-]+)"', html)[:3] == ["run", "incidents", "since-last-run"]
    incidents = html[html.index('<section id="incidents">'):html.index('<section id="since-last-run">')]
    assert "a CRL expired at its publisher" in incidents and "http://pki/&lt;x&gt;.crl" in incidents
    anchor = re.search(rf'id="(host-\d+)" data-host="{re.escape(name)}"', html).group(1)
    assert f'<a href="#{anchor}">{name}</a>' in incidents and "gone.lab.test" in incidents
    since = html[html.index('<section id="since-last-run">'):]
    assert "compared with r0" in since and "<code>crl_expired_at_source</code>" in since


def test_each_host_row_lists_its_symptoms_before_and_since_and_its_findings_as_text() -> None:
    report = sample_report()
    fe01 = next(h for h in report["hosts"] if h["host"] == "lync-fe01.lab.test")
    fe01["findings"] = [{"code": "capi2_log_disabled", "identity": None, "detail": '<b>"off"</b>'}]
    page = render_report_html(report)
    row = _details_of(page, "lync-fe01.lab.test")
    assert "1 finding: capi2_log_disabled</summary>" in row
    assert "<code>LS IM MCU 33019</code>: 47 before, 0 since the fix" in row
    assert '<li class="finding" title="&lt;b&gt;&quot;off&quot;&lt;/b&gt;"><b>capi2_log_disabled</b></li>' in row
    assert Page(page).find("svg", id="symptoms-fleet")


def test_identities_are_shown_per_host_as_text_and_findings_once() -> None:
    ns = "NT AUTHORITY\\NETWORK SERVICE"
    records = {"fe01": record("fe01", "would_change", reason="would set", identities={
        ns: {"effective_proxy": {"source": "direct", "proxy": None}, "chain_ok": None, "chain_ms": None,
             "error": None},
        "CONTOSO\\svc<b>": {"effective_proxy": {"source": "ie", "proxy": "p:1"}, "chain_ok": False, "chain_ms": 4012,
                            "error": "needs its password"}},
        caller={"name": "LAB\\ansible", "effective_proxy": {"source": "ie", "proxy": "127.0.0.1:3128"}},
        findings=[{"code": "identity_path_differs", "identity": ns, "detail": "CryptoAPI as it goes direct"}])}
    html = render_report_html(sample_report(records=records, hosts=["fe01"]))
    cell = identities_cell(html)
    assert f"<code>{ns}</code>: direct" in cell
    assert "<code>CONTOSO\\svc&lt;b&gt;</code>: ie p:1" in cell and "chain FAILED</span> 4,012 ms" in cell
    assert "connecting as <code>LAB\\ansible</code>: ie 127.0.0.1:3128" in cell
    assert "identity_path_differs" not in cell and html.count("<b>identity_path_differs</b>") == 1


def test_an_identity_the_proof_did_not_run_as_says_so_and_why() -> None:
    ns = "NT AUTHORITY\\NETWORK SERVICE"
    reason = ("the scheduled task ended without a result: LastTaskResult 0x80070569: the account lacks 'Log on as a "
              "batch job' (ERROR_LOGON_TYPE_NOT_GRANTED)")
    records = {"fe01": record("fe01", "compliant", reason="ok", identities={
        ns: {"effective_proxy": {"source": "netsh", "proxy": "p:1"}, "runnable": True, "chain_ok": None,
             "chain_ms": None, "error": None, "not_run_reason": reason}})}
    html = render_report_html(sample_report(records=records, hosts=["fe01"]))
    cell = identities_cell(html)
    assert '<span class="muted">proof not run</span>' in cell
    assert "LastTaskResult 0x80070569: the account lacks &#x27;Log on as a batch job&#x27;" in cell


def test_a_wpad_path_that_found_nothing_is_shown_as_going_direct() -> None:
    wpad = {"source": "wpad", "proxy": None, "pac_url": None, "error": "ERROR_WINHTTP_AUTODETECTION_FAILED (12180)"}
    records = {"fe01": record("fe01", "would_change", reason="would set", identities={
        "NT AUTHORITY\\SYSTEM": {"effective_proxy": wpad, "chain_ok": None, "chain_ms": None, "error": None},
        "NT AUTHORITY\\NETWORK SERVICE": {"effective_proxy": {**wpad, "proxy": "10.0.0.1:3128", "error": None},
                                          "chain_ok": None, "chain_ms": None, "error": None}})}
    html = render_report_html(sample_report(records=records, hosts=["fe01"]))
    assert "SYSTEM</code>: wpad, no proxy found (ERROR_WINHTTP_AUTODETECTION_FAILED (12180)): direct" in html
    assert "NETWORK SERVICE</code>: wpad 10.0.0.1:3128" in html


def test_the_host_s_own_service_and_its_restart_are_shown() -> None:
    service = {"stale": False, "services": ["RTCSRV", "RTC<b>"], "handshake": {"verdict": "slow", "max_ms": 4012},
               "restart": {"ok": False, "services": [{"name": "RTCSRV", "restarted": True},
                                                     {"name": "RTC<b>", "restarted": False, "error": "Time out"}]}}
    records = {"fe01": record("fe01", "failed", reason="service_stale: x", service=service)}
    html = render_report_html(sample_report(records=records, hosts=["fe01"]))
    cell = identities_cell(html)
    assert 'own service RTCSRV, RTC&lt;b&gt;: <span class="ok">fresh</span> (slow 4,012 ms)' in cell
    assert "restart: RTCSRV restarted, RTC&lt;b&gt; NOT restarted: Time out" in cell


def test_a_record_without_identities_shows_a_dash() -> None:
    html = render_report_html(sample_report(records={"fe01": record("fe01", "compliant")}, hosts=["fe01"]))
    assert identities_cell(html) == "<td class=identities><span class=\"muted\">\u2013</span>"
