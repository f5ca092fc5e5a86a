"""CryptoAPI retrieval model: outbound policy, proxy, bypass, LDAP, URL cache, chain revocation status."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from tests.lab import crl_server, cryptoapi, pki
from tests.lab.winhttp import ERROR_WINHTTP_CANNOT_CONNECT, ERROR_WINHTTP_TIMEOUT, WinHttpProxy

pytestmark = pytest.mark.lab
FAST = {"per_url_timeout": 0.5, "total_timeout": 1.0}


def _chain(stores: dict) -> list[bytes]:
    return [base64.b64decode(stores[s][0]["der_b64"]) for s in ("My", "CA", "Root")]


def _host_chain(lab_dir: Path, fqdn: str) -> list[bytes]:
    return _chain(pki.issue_host_certificates(lab_dir, [fqdn])[fqdn])


def test_direct_fetch_of_internet_name_times_out(crl_http, lab_addresses):
    result = cryptoapi.retrieve(pki.ISSUING_CRL_URL, proxy=WinHttpProxy(), names=lab_addresses, timeout=0.5)
    assert (result["via"], result["reachable"], result["http_status"]) == ("direct", False, None)
    assert result["error"] == ERROR_WINHTTP_TIMEOUT


def test_blackhole_wait_is_interruptible(crl_http, lab_addresses):
    cancel = threading.Event()
    cancel.set()
    result = cryptoapi.retrieve(
        pki.ISSUING_CRL_URL, proxy=WinHttpProxy(), names=lab_addresses, timeout=600, cancel=cancel
    )
    assert result["error"] == ERROR_WINHTTP_TIMEOUT


def test_fetch_through_proxy_succeeds(squid, lab_addresses):
    result = cryptoapi.retrieve(pki.ISSUING_CRL_URL, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, timeout=5)
    assert (result["via"], result["reachable"], result["http_status"], result["error"]) == ("proxy", True, 200, None)
    assert result["bytes"] == len(result["content"]) > 0
    assert cryptoapi.describe_content(result["content"])["kind"] == "crl"


def test_bypass_matching_the_ca_host_goes_direct_and_fails(squid, lab_addresses):
    proxy = WinHttpProxy(squid.proxy, "<local>;*.public-ca.test")
    result = cryptoapi.retrieve(pki.ISSUING_CRL_URL, proxy=proxy, names=lab_addresses, timeout=0.5)
    assert (result["via"], result["error"]) == ("direct", ERROR_WINHTTP_TIMEOUT)


def test_proxy_down_is_an_immediate_connect_error(lab_addresses, free_port):
    result = cryptoapi.retrieve(
        pki.ISSUING_CRL_URL, proxy=WinHttpProxy(f"127.0.0.1:{free_port}"), names=lab_addresses, timeout=5
    )
    assert (result["via"], result["reachable"], result["error"]) == ("proxy", False, ERROR_WINHTTP_CANNOT_CONNECT)


def test_server_404_and_hang_through_proxy(squid, lab_dir, lab_addresses):
    proxy = WinHttpProxy(squid.proxy)
    crl_server.set_fault(lab_dir, "404", "/issuing-ca.crl")
    result = cryptoapi.retrieve(pki.ISSUING_CRL_URL, proxy=proxy, names=lab_addresses, timeout=5)
    assert (result["reachable"], result["http_status"], result["error"]) == (True, 404, "HTTP 404")
    crl_server.set_fault(lab_dir, "hang", "/issuing-ca.crl", hang_seconds=3)
    result = cryptoapi.retrieve(pki.ISSUING_CRL_URL, proxy=proxy, names=lab_addresses, timeout=0.5)
    assert (result["reachable"], result["error"]) == (False, ERROR_WINHTTP_TIMEOUT)


def test_ldap_url_fails_at_once_and_never_uses_the_proxy(squid, lab_addresses):
    result = cryptoapi.retrieve(
        pki.ISSUING_LDAP_CRL_URL, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, timeout=5
    )
    assert (result["via"], result["reachable"]) == ("direct", False)
    assert result["error"].startswith(cryptoapi.CRYPT_E_NOT_FOUND)
    ldap_with_host = "ldap://crl.public-ca.test/CN=x?certificateRevocationList"
    result = cryptoapi.retrieve(ldap_with_host, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, timeout=0.3)
    assert result["error"].startswith(ERROR_WINHTTP_TIMEOUT)


def test_chain_ok_through_proxy_and_offline_without(squid, stores, lab_addresses):
    chain = _chain(stores)
    ok = cryptoapi.check_chain_revocation(chain, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, cache={}, **FAST)
    assert (ok["status"], ok["error_status"], ok["trust_status"]) == ("ok", 0, [])
    assert [e["crl_url"] for e in ok["elements"]] == [pki.ISSUING_CRL_URL, pki.ROOT_CRL_URL]
    offline = cryptoapi.check_chain_revocation(chain, proxy=WinHttpProxy(), names=lab_addresses, cache={}, **FAST)
    assert offline["status"] == "revocation_offline"
    assert offline["trust_status"] == ["CERT_TRUST_REVOCATION_STATUS_UNKNOWN", "CERT_TRUST_IS_OFFLINE_REVOCATION"]
    assert offline["error_status"] == 0x01000040


def test_cumulative_timeout_leaves_later_elements_to_the_cache(crl_http, stores, lab_addresses):
    result = cryptoapi.check_chain_revocation(
        _chain(stores), proxy=WinHttpProxy(), names=lab_addresses, cache={}, per_url_timeout=0.4, total_timeout=0.4
    )
    errors = [r["error"] for r in result["retrievals"]]
    assert errors == [ERROR_WINHTTP_TIMEOUT, "cumulative retrieval timeout spent: cache only"]
    assert result["status"] == "revocation_offline"


def test_garbage_crl_is_offline(squid, stores, lab_dir, lab_addresses):
    crl_server.set_fault(lab_dir, "garbage", "/issuing-ca.crl")
    result = cryptoapi.check_chain_revocation(
        _chain(stores), proxy=WinHttpProxy(squid.proxy), names=lab_addresses, cache={}, **FAST
    )
    assert result["status"] == "revocation_offline"
    assert result["retrievals"][0]["error"] == "retrieved object is not a CRL"
    assert result["elements"][0]["status"] == "revocation_offline" and result["elements"][1]["status"] == "ok"


def test_ldap_only_leaf_is_offline_even_with_proxy(squid, lab_dir, lab_addresses):
    chain = _host_chain(lab_dir, "edge-ldaponly.contoso.test")
    result = cryptoapi.check_chain_revocation(
        chain, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, cache={}, **FAST
    )
    assert result["status"] == "revocation_offline"
    assert result["retrievals"][0]["url"] == pki.ISSUING_LDAP_CRL_URL


def test_delta_leaf_needs_the_delta_crl(squid, lab_dir, lab_addresses):
    chain = _host_chain(lab_dir, "edge-delta.contoso.test")
    proxy = WinHttpProxy(squid.proxy)
    ok = cryptoapi.check_chain_revocation(chain, proxy=proxy, names=lab_addresses, cache={}, **FAST)
    assert ok["status"] == "ok"
    assert pki.ISSUING_DELTA_CRL_URL in [r["url"] for r in ok["retrievals"]]
    crl_server.set_fault(lab_dir, "404", "/issuing-ca-delta.crl")
    missing = cryptoapi.check_chain_revocation(chain, proxy=proxy, names=lab_addresses, cache={}, **FAST)
    assert missing["status"] == "revocation_offline"


@pytest.fixture()
def own_lab(squid, crl_http):
    """A throwaway PKI served by the session's CRL server: tests that revoke or republish use it."""
    path = Path(tempfile.mkdtemp(prefix="crlfix-lab-own-"))
    saved = crl_http.www_dir
    crl_http.www_dir = path / "pki" / "www"
    yield path
    crl_http.www_dir = saved
    shutil.rmtree(path, ignore_errors=True)


def test_revoked_in_base_and_in_delta(own_lab, squid, lab_addresses):
    pki.issue_host_certificates(own_lab, ["gone.contoso.test", "gone-delta.contoso.test"])
    pki.revoke_host(own_lab, "gone.contoso.test")
    pki.revoke_host(own_lab, "gone-delta.contoso.test", delta_only=True)
    pki.publish(own_lab, next_update=dt.timedelta(hours=1))
    proxy = WinHttpProxy(squid.proxy)
    for fqdn in ("gone.contoso.test", "gone-delta.contoso.test"):
        result = cryptoapi.check_chain_revocation(
            _host_chain(own_lab, fqdn), proxy=proxy, names=lab_addresses, cache={}, **FAST
        )
        assert (result["status"], result["trust_status"]) == ("revoked", ["CERT_TRUST_IS_REVOKED"])


def test_cache_serves_until_next_update_then_refetches(own_lab, squid, lab_addresses, free_port):
    t0 = dt.datetime.now(dt.UTC)
    pki.issue_host_certificates(own_lab, ["fe01.contoso.test"])
    pki.publish(own_lab, next_update=dt.timedelta(minutes=10), now=t0)
    chain = _host_chain(own_lab, "fe01.contoso.test")
    cache: dict = {}
    first = cryptoapi.check_chain_revocation(
        chain, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, cache=cache, now=t0, **FAST
    )
    assert first["status"] == "ok" and not any(r["from_cache"] for r in first["retrievals"])
    assert set(cache) == {pki.ISSUING_CRL_URL, pki.ROOT_CRL_URL}
    # Before NextUpdate the cache answers, even with the proxy gone.
    down = WinHttpProxy(f"127.0.0.1:{free_port}")
    cached = cryptoapi.check_chain_revocation(
        chain, proxy=down, names=lab_addresses, cache=cache, now=t0 + dt.timedelta(minutes=9), **FAST
    )
    assert cached["status"] == "ok" and all(r["from_cache"] for r in cached["retrievals"])
    # After NextUpdate the cached CRL is not used: the proxy being down now shows.
    later = t0 + dt.timedelta(minutes=11)
    expired = cryptoapi.check_chain_revocation(chain, proxy=down, names=lab_addresses, cache=cache, now=later, **FAST)
    assert expired["status"] == "revocation_offline"
    # The CA republished: the next check fetches again through squid.
    pki.publish(own_lab, next_update=dt.timedelta(minutes=10), now=later)
    log_before = len(squid.access_log_lines())
    refetched = cryptoapi.check_chain_revocation(
        chain, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, cache=cache, now=later, **FAST
    )
    assert refetched["status"] == "ok" and not any(r["from_cache"] for r in refetched["retrievals"])
    assert any("issuing-ca.crl" in line for line in squid.access_log_lines()[log_before:])


def test_stale_crl_on_server_is_offline(own_lab, squid, lab_addresses):
    t0 = dt.datetime.now(dt.UTC)
    pki.issue_host_certificates(own_lab, ["fe01.contoso.test"])
    pki.publish(own_lab, next_update=dt.timedelta(minutes=5), now=t0)
    result = cryptoapi.check_chain_revocation(
        _host_chain(own_lab, "fe01.contoso.test"),
        proxy=WinHttpProxy(squid.proxy),
        names=lab_addresses,
        cache={},
        now=t0 + dt.timedelta(minutes=6),
        **FAST,
    )
    assert result["status"] == "revocation_offline"
    assert "stale" in result["retrievals"][0]["error"]


def test_cache_is_plain_json_and_purge_empties_it(squid, stores, lab_addresses):
    import json

    cache: dict = {}
    cryptoapi.check_chain_revocation(
        _chain(stores), proxy=WinHttpProxy(squid.proxy), names=lab_addresses, cache=cache, **FAST
    )
    assert json.loads(json.dumps(cache)) == cache
    entry = cache[pki.ISSUING_CRL_URL]
    assert entry["kind"] == "crl" and entry["next_update"].endswith("Z")
    assert cryptoapi.purge_cache(cache) == 2 and cache == {}


def test_bad_timeouts_name_the_field(stores, lab_addresses):
    with pytest.raises(ValueError, match="per_url_timeout"):
        cryptoapi.check_chain_revocation(
            _chain(stores), proxy=WinHttpProxy(), names=lab_addresses, cache={}, per_url_timeout=0
        )


def test_retrieval_report_is_json_and_flags_stale_and_garbage(squid, lab_dir, lab_addresses):
    import json

    proxy = WinHttpProxy(squid.proxy)
    cache: dict = {}
    fresh = cryptoapi.retrieval_report(pki.ISSUING_CRL_URL, proxy=proxy, names=lab_addresses, timeout=5, cache=cache)
    assert json.loads(json.dumps(fresh)) == fresh
    assert (fresh["parsed"], fresh["kind"], fresh["stale"], fresh["error"]) == (True, "crl", False, None)
    assert list(cache) == [pki.ISSUING_CRL_URL]
    stale = cryptoapi.retrieval_report(
        pki.ISSUING_CRL_URL,
        proxy=proxy,
        names=lab_addresses,
        timeout=5,
        now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    assert stale["stale"] is True and stale["error"].startswith("stale")
    cert = cryptoapi.retrieval_report("http://aia.public-ca.test/root.crt", proxy=proxy, names=lab_addresses, timeout=5)
    assert (cert["kind"], cert["parsed"]) == ("cert", True)
    crl_server.set_fault(lab_dir, "garbage", "/issuing-ca.crl")
    garbage = cryptoapi.retrieval_report(pki.ISSUING_CRL_URL, proxy=proxy, names=lab_addresses, timeout=5)
    assert (garbage["http_status"], garbage["parsed"], garbage["kind"]) == (200, False, None)
    assert garbage["error"] == "retrieved object is neither a CRL nor a certificate"
