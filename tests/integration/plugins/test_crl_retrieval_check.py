"""crlfix.windows.crl_retrieval_check against a lab twin, through the real ansible + winrm connection.

The twin fetches through its own WinHTTP proxy (native registry view) with the lab's outbound policy: the
proxy is the lab's squid, the CRL server is "the internet" (reachable only through squid; a direct
connection is dropped and waits out the timeout). Faults come from the lab's own controls: squid stopped by
its PID, ``crl_server.set_fault``, CRLs re-signed with a NextUpdate in the past.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.lab.fleet.plan import SESSION_CRL_VALIDITY
from tests.lab.pki import AIA_HOST, CRL_HOST

from ._adhoc import http_profile_hosts, ldap_only_hosts, run_module, set_proxy

CRL = f"http://{CRL_HOST}/issuing-ca.crl"
DELTA = f"http://{CRL_HOST}/issuing-ca-delta.crl"
ROOT_CRL = f"http://{CRL_HOST}/root.crl"
CA_CERT = f"http://{AIA_HOST}/issuing-ca.crt"
TIMEOUT_MS = 2000
CANNOT_CONNECT = "A connection with the server could not be established"  # ERROR_WINHTTP_CANNOT_CONNECT
TIMED_OUT = "The operation timed out"  # ERROR_WINHTTP_TIMEOUT


@pytest.fixture
def host(lab):
    name = http_profile_hosts(lab)[0]
    lab.clear_crl_faults()
    yield name
    lab.clear_crl_faults()
    lab.reset_state(name)


def _check(lab, host, tmp_path, urls, **kw):
    args = {"endpoints": urls, "crl_timeout_ms": TIMEOUT_MS, **kw.pop("args", {})}
    return run_module(lab, host, "crl_retrieval_check", args, tmp_path, *kw.pop("extra", ()))


def _by_url(doc):
    return {r["url"]: r for r in doc["results"]}


def test_through_the_proxy_crls_and_ca_certificates_are_fetched_and_parsed(lab, host, tmp_path) -> None:
    set_proxy(lab, host, lab.proxy)
    before = len(lab.squid().access_log_lines())
    doc = _check(lab, host, tmp_path, [CRL, ROOT_CRL, {"url": CA_CERT, "kind": "ca_issuers"}])
    results = _by_url(doc)
    assert doc["all_usable"] is True, doc
    for url in (CRL, ROOT_CRL):
        assert results[url]["http_status"] == 200
        assert results[url]["parsed_as"] == "crl"
        assert results[url]["fresh"] is True and results[url]["stale"] is False
    assert results[CA_CERT]["parsed_as"] == "certificate"
    fetched = "\n".join(lab.squid().access_log_lines()[before:])
    assert f"GET {CRL}" in fetched and f"GET {CA_CERT}" in fetched  # really through squid


def test_a_404_and_garbage_from_the_crl_server_are_data_not_failures(lab, host, tmp_path) -> None:
    set_proxy(lab, host, lab.proxy)
    lab.set_crl_fault("404", "/issuing-ca-delta.crl")
    lab.set_crl_fault("garbage", "/root.crl")
    results = _by_url(_check(lab, host, tmp_path, [CRL, DELTA, ROOT_CRL]))
    assert results[CRL]["usable"] is True
    assert results[DELTA]["http_status"] == 404
    assert results[DELTA]["usable"] is False and results[DELTA]["reachable"] is False
    assert "404" in results[DELTA]["error"]
    assert results[ROOT_CRL]["http_status"] == 200
    assert results[ROOT_CRL]["parsed_as"] == "none" and results[ROOT_CRL]["usable"] is False
    assert "not a CRL" in results[ROOT_CRL]["error"]


def test_proxy_down_reports_unreachable_urls_without_failing_the_task(lab, host, tmp_path) -> None:
    set_proxy(lab, host, lab.proxy)
    squid = lab.squid()
    assert squid.stop(), "the lab's squid was not running"
    try:
        doc = _check(lab, host, tmp_path, [CRL, CA_CERT])
    finally:
        squid.start()
    assert doc["summary"]["unreachable"] == 2 and doc["all_reachable"] is False
    for result in doc["results"]:
        assert result["reachable"] is False and result["http_status"] is None
        assert result["error"] == CANNOT_CONNECT


def test_a_stale_crl_is_fetched_but_reported_stale(lab, host, tmp_path) -> None:
    set_proxy(lab, host, lab.proxy)
    now = dt.datetime.now(dt.UTC)
    lab.publish_crls(dt.timedelta(hours=1), now=now - dt.timedelta(hours=2))  # NextUpdate an hour ago
    try:
        results = _by_url(_check(lab, host, tmp_path, [CRL]))
    finally:
        lab.publish_crls(SESSION_CRL_VALIDITY)  # what the session's other tests expect
    assert results[CRL]["http_status"] == 200 and results[CRL]["parsed_as"] == "crl"
    assert results[CRL]["stale"] is True and results[CRL]["usable"] is False
    assert "stale" in results[CRL]["error"]


def test_a_bypass_list_that_sends_the_ca_direct_times_out(lab, host, tmp_path) -> None:
    # "*.public-ca.test" in the bypass list: WinHTTP goes direct, the firewall drops it, the request times out.
    set_proxy(lab, host, lab.proxy, bypass="<local>;*.public-ca.test")
    before = len(lab.squid().access_log_lines())
    doc = _check(lab, host, tmp_path, [CRL, CA_CERT])
    for result in doc["results"]:
        assert result["reachable"] is False and result["error"] == TIMED_OUT
        assert result["elapsed_ms"] >= TIMEOUT_MS  # the host's own measurement: it waited out its timeout
    assert not [line for line in lab.squid().access_log_lines()[before:] if CRL_HOST in line]


def test_an_ldap_only_distribution_point_is_reported_not_fetched(lab, tmp_path) -> None:
    hosts = ldap_only_hosts(lab)
    assert hosts, "the lab's seeded fleet must contain a host whose leaf has only LDAP distribution points"
    name = hosts[0]
    set_proxy(lab, name, lab.proxy)
    playbook = tmp_path / "ldap.yml"
    playbook.write_text(
        f"""
- hosts: {name}
  gather_facts: false
  tasks:
    - crlfix.windows.cert_revocation_info:
      register: revocation
    - crlfix.windows.crl_retrieval_check:
        endpoints: "{{{{ revocation.endpoints }}}}"
        crl_timeout_ms: {TIMEOUT_MS}
      register: retrieval
    - ansible.builtin.copy:
        content: "{{{{ {{'revocation': revocation, 'retrieval': retrieval}} | to_json }}}}"
        dest: "{tmp_path / 'out.json'}"
      delegate_to: localhost
"""
    )
    try:
        lab.run_playbook(playbook)
    finally:
        lab.reset_state(name)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["revocation"]["flags"]["ldap_only"], out["revocation"]["flags"]
    ldap = [r for r in out["retrieval"]["results"] if r["url"].lower().startswith("ldap:")]
    assert ldap and out["retrieval"]["summary"]["ldap_skipped"] == len(ldap)
    assert all(r["reachable"] is False and r["usable"] is False and "LDAP" in r["error"] for r in ldap)
    # The HTTP endpoints of the same chain (root CRL, CA certificates) still come through the proxy.
    assert [r for r in out["retrieval"]["results"] if r["url"].startswith("http:") and r["usable"]]


def test_purge_cache_is_skipped_in_check_mode_and_empties_the_url_cache_otherwise(lab, host, tmp_path) -> None:
    cached = [{"url": "http://crl.public-ca.test/old.crl", "kind": "crl"}]
    set_proxy(lab, host, lab.proxy, url_cache=cached)
    deletes = lab.state(host)["counters"].get("urlcache_deletes", 0)

    checked = _check(lab, host, tmp_path / "check", [CRL], args={"purge_cache": True}, extra=["--check"])
    assert checked["purge_skipped_check_mode"] is True and checked["purged"] is False
    assert checked["changed"] is False and checked["results"][0]["usable"] is True
    assert lab.state(host)["url_cache"] == cached
    assert lab.state(host)["counters"].get("urlcache_deletes", 0) == deletes

    purged = _check(lab, host, tmp_path / "run", [CRL], args={"purge_cache": True})
    assert purged["purged"] is True and purged["changed"] is True and purged["purge"]["rc"] == 0
    assert lab.state(host)["url_cache"] == []
    assert lab.state(host)["counters"]["urlcache_deletes"] == deletes + 1
