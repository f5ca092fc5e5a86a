"""The per-URL fetch's two agents judged side by side: proxy_filters_agent (informational), proxy_rejects_agent.

The host's ``foreign_agent`` answer (docs/dev/host-scripts.md, "The foreign agent") is parsed by
``_crl_retrieval.foreign_agent_result`` and judged by ``_findings.refusal_findings``; the HTML endpoint line says it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils import _crl_retrieval
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _findings
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._html import render_report_html
from tests.report.sample import CRL_URL, record, sample_report

AGENT = "Mozilla/4.0 (compatible; Win32; WinHttp.WinHttpRequest.5)"
NOW = dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)


def url_result(url: str, status: int | None, foreign: int | None, *, asked: bool = True) -> dict:
    return {"url": url, "http_status": status,
            "foreign_agent": {"agent": AGENT, "http_status": foreign, "error": None} if asked else None}


def refusals(crl: dict) -> list[dict]:
    """The findings the judge makes of a CRL part, in record order."""
    return [f.as_dict() for f in _findings.ordered(_findings.refusal_findings(crl))]


def codes(findings: list[dict]) -> list[tuple[str, str]]:
    return [(f["code"], f["detail"].split(" ", 1)[0]) for f in findings]


def test_refused_only_for_the_foreign_agent_is_proxy_filters_agent_and_nothing_else() -> None:
    findings = refusals({"results": [url_result("http://a/x.crl", 200, 403), url_result("http://a/y.crl", 200, 407),
                                     url_result("http://a/z.crl", 200, 200), url_result("http://a/w.crl", 200, None),
                                     url_result("http://a/v.crl", 404, 403),
                                     url_result("http://a/u.crl", 200, None, asked=False)]})
    assert codes(findings) == [("proxy_filters_agent", "http://a/x.crl"), ("proxy_filters_agent", "http://a/y.crl")]
    detail = findings[0]["detail"]
    assert "answered HTTP 403 only for a foreign agent" in detail and AGENT in detail
    assert "CryptoAPI's own retrieval passes" in detail and "informational" in detail


def test_refused_for_cryptoapi_too_is_still_proxy_rejects_agent_and_says_what_the_foreign_agent_got() -> None:
    findings = refusals({"results": [url_result("http://a/x.crl", 403, 403), url_result("http://a/y.crl", 403, 200),
                                     url_result("http://a/z.crl", 407, None, asked=False)]})
    assert codes(findings) == [("proxy_rejects_agent", "http://a/x.crl"), ("proxy_rejects_agent", "http://a/y.crl"),
                               ("proxy_rejects_agent", "http://a/z.crl")]
    by_url = {f["detail"].split(" ", 1)[0]: f["detail"] for f in findings}
    assert "a foreign agent was refused too (HTTP 403)" in by_url["http://a/x.crl"]
    assert "a foreign agent got HTTP 200: the path lets other agents through, not CryptoAPI's" in by_url[
        "http://a/y.crl"]
    assert "foreign agent" not in by_url["http://a/z.crl"]


def test_the_hosts_foreign_agent_entry_becomes_the_results_foreign_agent() -> None:
    endpoint = _crl_retrieval.normalize_endpoints([CRL_URL])[0]
    host = {"url": CRL_URL, "status": 404, "elapsed_ms": 9, "bytes": 3, "body_b64": "YWJj", "truncated": False,
            "truncated_by": None, "error": None,
            "foreign_agent": {"agent": AGENT, "status": 403, "error": None}}
    result = _crl_retrieval.interpret_result(endpoint, host, now=NOW, max_bytes=100, field="results[0]")
    assert result["foreign_agent"] == {"agent": AGENT, "http_status": 403, "error": None}
    cut = dict(host, foreign_agent={"agent": None, "status": None, "error": "not finished within the box"})
    assert _crl_retrieval.interpret_result(endpoint, cut, now=NOW, max_bytes=100, field="r")["foreign_agent"] == {
        "agent": None, "http_status": None, "error": "not finished within the box"}
    # A host (or a recording) that did not ask has no entry: null, as when not asked.
    old = {k: v for k, v in host.items() if k != "foreign_agent"}
    assert _crl_retrieval.interpret_result(endpoint, old, now=NOW, max_bytes=100, field="r")["foreign_agent"] is None


@pytest.mark.parametrize("bad", ["403", {"agent": AGENT, "status": "403", "error": None},
                                 {"agent": 5, "status": 403, "error": None}, {"status": True}])
def test_a_foreign_agent_entry_of_another_shape_is_refused_naming_the_field(bad) -> None:
    with pytest.raises(HostScriptError, match=r"results\[2\]\.foreign_agent"):
        _crl_retrieval.foreign_agent_result({"foreign_agent": bad}, "results[2]")


def _page(first: int, foreign: int | None) -> str:
    crl = {"results": [{"url": CRL_URL, "reachable": True, "usable": True, "http_status": first, "error": None,
                        "foreign_agent": {"agent": AGENT, "http_status": foreign, "error": None}}],
           "all_reachable": True, "all_usable": True}
    records = {"lync-fe01.lab.test": record("lync-fe01.lab.test", "compliant", checks={"before": {"crl": crl}})}
    return render_report_html(sample_report(records=records, hosts=["lync-fe01.lab.test"]))


def test_the_report_says_the_url_answered_403_only_for_a_foreign_agent() -> None:
    assert ("answered 403 only for a foreign agent: the proxy filters by User-Agent; CryptoAPI&#x27;s own retrieval "
            "passes") in _page(200, 403)
    assert "foreign agent" not in _page(200, 200)  # the same answer tells nothing
    assert "a foreign agent got HTTP 200" in _page(403, 200)
