"""fix_crl behind a proxy that filters by User-Agent: the ua_restricted scenario end to end.

``ua_restricted`` (tests/lab/fleet/scenarios.py): the site's proxy is squid's listener that lets only
``Microsoft-CryptoAPI/*`` through (squid's ``browser`` ACL, 403 for any other agent; tests/lab/squid.py), and the
host already uses it. CryptoAPI's own retrieval (the TLS probes, each identity's chain) and the per-URL fetch, which
sends CryptoAPI's agent, pass; the fetch's one HEAD per URL with WinHttpRequest's own agent is refused, and the record
and the HTML report say so (finding ``proxy_filters_agent``, informational). A site whose proxy refuses CryptoAPI's
agent (squid's browsers-only listener) is still ``proxy_rejects_agent``.
"""

from __future__ import annotations

import base64

import pytest

from tests.lab.fleet import scenarios
from tests.lab.pki import PROFILE_LDAP_ONLY, leaf_profile
from tests.lab.squid import BROWSERS_ONLY_ADDRESS, filtered_proxy
from tests.twin import winhttp_value

from ._runs import FAST, run_fix_crl, site_proxies

pytestmark = pytest.mark.lab

AGENT_CODES = ("proxy_filters_agent", "proxy_rejects_agent")
FOREIGN_ONLY = "only for a foreign agent: the proxy filters by User-Agent; CryptoAPI&#x27;s own retrieval passes"


def _lync_host(fleet) -> str:
    """The first Lync front end whose leaf has HTTP CRL distribution points (its services run as NETWORK SERVICE)."""
    return sorted(n for n, h in fleet.hosts.items()
                  if h.group == "lync_servers" and leaf_profile(n) != PROFILE_LDAP_ONLY)[0]


def _crl_results(host: dict, phase: str) -> list[dict]:
    return host["crl_checks"][phase]["results"]


def test_a_ua_restricted_site_passes_through_cryptoapis_agent_and_the_report_names_the_filter(fleet, tmp_path) -> None:
    name = _lync_host(fleet)
    site_proxy = site_proxies(fleet)[fleet.hosts[name].site]
    restricted = scenarios.ua_restricted_proxy(site_proxy)
    fleet.write_state(name, scenarios.apply_scenario(fleet.state(name), "ua_restricted", site_proxy))
    mark = len(fleet.squid().access_log_lines())

    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name,
                        extra_vars={**FAST, "fix_crl_proxy": restricted})
    host = audit.host(name)
    assert host["status"] == "compliant", host["reason"]
    assert host["verification"]["before"]["passed"] is True, host["verification"]
    results = _crl_results(host, "before")
    http = [r for r in results if r["http_status"] is not None]
    assert http, results
    # Every URL the fetch got with CryptoAPI's agent was refused to WinHttpRequest's own agent by the proxy's ACL.
    for result in http:
        assert result["foreign_agent"]["http_status"] == 403, result
        assert result["foreign_agent"]["agent"].startswith("Mozilla/"), result
    filtered = [f for f in host["findings"] if f["code"] in AGENT_CODES]
    assert {f["code"] for f in filtered} == {"proxy_filters_agent"}, filtered
    assert all("answered HTTP 403 only for a foreign agent" in f["detail"] for f in filtered)
    # The services' identities went through the same proxy with CryptoAPI's agent and passed.
    assert all(i["chain_ok"] is True for i in host["identities"].values() if i.get("runnable")), host["identities"]
    assert host["commands"] == 1
    assert fleet.state(name)["counters"]["netsh_writes"] == 0
    # squid saw both: CryptoAPI's GETs through, and the HEADs refused by its browser ACL.
    lines = fleet.squid().access_log_lines()[mark:]
    assert any("TCP_DENIED/403" in line and " HEAD " in line for line in lines), lines
    assert any("/200 " in line and " GET " in line for line in lines), lines
    page = next(iter(sorted((tmp_path / "audit").glob("*.html")))).read_text(encoding="utf-8")
    assert f"answered 403 {FOREIGN_ONLY}" in page


def test_a_direct_host_of_a_ua_restricted_site_is_fixed_and_verified_through_the_filtering_proxy(fleet, tmp_path):
    name = _lync_host(fleet)
    restricted = scenarios.ua_restricted_proxy(site_proxies(fleet)[fleet.hosts[name].site])
    state = fleet.state(name)
    direct = base64.b64encode(winhttp_value.encode(1, "", "")).decode("ascii")
    for view in ("native", "wow6432"):
        state["registry"][view]["WinHttpSettings"] = direct
    fleet.write_state(name, state)

    fix = run_fix_crl(fleet, tmp_path / "fix", "-l", name, extra_vars={**FAST, "fix_crl_proxy": restricted})
    host = fix.host(name)
    assert host["status"] == "changed", host["reason"]
    assert host["verification"]["after"]["passed"] is True, host["verification"]
    assert {f["code"] for f in host["findings"] if f["code"] in AGENT_CODES} == {"proxy_filters_agent"}
    native = winhttp_value.decode(base64.b64decode(fleet.state(name)["registry"]["native"]["WinHttpSettings"]))
    assert native.proxy == restricted  # independent read-back with the twin's own decoder

    again = run_fix_crl(fleet, tmp_path / "again", "-l", name, extra_vars={**FAST, "fix_crl_proxy": restricted})
    assert again.host(name)["status"] == "compliant", again.host(name)["reason"]


def test_a_site_whose_proxy_refuses_cryptoapis_agent_is_still_proxy_rejects_agent(fleet, tmp_path) -> None:
    name = _lync_host(fleet)
    browsers_only = filtered_proxy(site_proxies(fleet)[fleet.hosts[name].site], BROWSERS_ONLY_ADDRESS)
    state = fleet.state(name)
    value = base64.b64encode(winhttp_value.encode(1, browsers_only, "")).decode("ascii")
    for view in ("native", "wow6432"):
        state["registry"][view]["WinHttpSettings"] = value
    fleet.write_state(name, state)

    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name,
                        extra_vars={**FAST, "fix_crl_proxy": browsers_only})
    host = audit.host(name)
    assert host["status"] != "compliant", host["reason"]
    assert host["verification"]["before"]["passed"] is False
    refused = [r for r in _crl_results(host, "before") if r["http_status"] == 403]
    assert refused and all(r["usable"] is False for r in refused), _crl_results(host, "before")
    # The foreign agent (a Mozilla/ one) passes there: the record says the proxy lets other agents through.
    assert all(r["foreign_agent"]["http_status"] != 403 for r in refused), refused
    codes = {f["code"] for f in host["findings"] if f["code"] in AGENT_CODES}
    assert codes == {"proxy_rejects_agent"}, host["findings"]
    assert any("a foreign agent got HTTP" in f["detail"]
               for f in host["findings"] if f["code"] == "proxy_rejects_agent"), host["findings"]
