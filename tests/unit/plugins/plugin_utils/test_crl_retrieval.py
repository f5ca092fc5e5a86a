"""crl_retrieval_check logic: option validation, body interpretation, and host documents replayed at the seam."""

from __future__ import annotations

import base64
import datetime

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import (
    LDAP_ERROR,
    Endpoint,
    EndpointError,
    interpret_body,
    interpret_result,
    normalize_endpoints,
    partition_endpoints,
    run_crl_retrieval_check,
    validate_url,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from tests import pslint
from tests.unit.plugins.fixtures.host import FakeHost, compact
from tests.unit.plugins.fixtures.verify.verify_bodies import load_document, make_bodies

NOW = datetime.datetime(2026, 11, 26, 4, 0, 0, tzinfo=datetime.UTC)
LDAP = ("ldap:///CN=Lab-Int,CN=PKI01,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,DC=lab,DC=test"
        "?certificateRevocationList?base?objectClass=cRLDistributionPoint")
MIXED_ENDPOINTS = [
    {"url": "http://crl.public-ca.test/lab-int.crl", "kind": "crl", "scheme": "http", "certificates": ["AB"]},
    {"url": "http://crl.public-ca.test/lab-int+.crl", "kind": "delta_crl"},
    "http://crl.public-ca.test/stale.crl",
    {"url": LDAP, "kind": "crl"},
    {"url": "http://crl.public-ca.test/lab-int.crt", "kind": "ca_issuers"},
    {"url": "http://crl.public-ca.test/lab-int.p7c", "kind": "ca_issuers"},
    {"url": "http://crl.public-ca.test/missing.crl", "kind": "crl"},
    {"url": "http://crl.public-ca.test/garbage.crl", "kind": "crl"},
    {"url": "http://crl.blackhole.test/lab.crl", "kind": "crl"},
    {"url": "http://crl.nowhere.test/lab.crl", "kind": "crl"},
    {"url": "http://ocsp.public-ca.test/", "kind": "ocsp"},
    {"url": "http://ocsp.down.test/", "kind": "ocsp"},
    {"url": "http://crl.public-ca.test/big.crl", "kind": "crl"},
    "http://crl.public-ca.test/lab-int-pem.crl",
    "http://crl.public-ca.test/lab-int.crl",  # listed twice: fetched once
]


def args(**overrides):
    base = {"endpoints": MIXED_ENDPOINTS, "crl_timeout_ms": 15000, "purge_cache": False, "max_bytes": 1_000_000}
    base.update(overrides)
    return base


# --- validation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "url",
    ["http://crl.public-ca.test/a.crl", "HTTPS://crl.public-ca.test:8443/a.crl", LDAP,
     "ldap://dc01.lab.test/CN=x?certificateRevocationList", "http://[2001:db8::1]/a.crl", "http://127.0.0.1:8080/x"],
)
def test_valid_urls(url) -> None:
    assert validate_url(url, field="endpoints[0]") == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://crl.public-ca.test/a.crl", "scheme must be one of http, https, ldap"),
        ('http://crl.public-ca.test/"a".crl', "URL contains '\"', which a URL must percent-encode"),
        ("http://crl.public-ca.test/a<b>.crl", "URL contains '<', '>', which a URL must percent-encode"),
        ("http://crl.public-ca.test/\u00e4.crl", "which a URL must percent-encode"),
        ("file:///C:/a.crl", "scheme must be one of"),
        ("crl.public-ca.test/a.crl", "scheme must be one of"),
        ("http://crl.public-ca.test/a b.crl", "whitespace or control characters"),
        ("ldap:///CN=Lab Int\tCA", "whitespace or control characters"),
        ("ldap:///CN=Lab Int\nCA", "whitespace or control characters"),
        ("http://crl.public-ca.test/a.crl\r\nHost: evil", "whitespace or control characters"),
        ("http://crl.public-ca.test/\x00", "whitespace or control characters"),
        ("http:///a.crl", "no host name"),
        ("http://crl.public-ca.test:99999/a.crl", "not a valid URL"),
        ("http://crl.public-ca.test:0/a.crl", "port must be 1-65535"),
        ("", "expected a URL string"),
        (42, "expected a URL string"),
    ],
)
def test_invalid_urls_name_field_and_value(url, message) -> None:
    with pytest.raises(EndpointError, match=message) as info:
        validate_url(url, field="endpoints[3].url")
    assert str(info.value).startswith("endpoints[3].url: ")
    if isinstance(url, str) and url:
        assert repr(url) in str(info.value)


def test_normalize_accepts_strings_and_cert_revocation_info_dicts() -> None:
    endpoints = normalize_endpoints(MIXED_ENDPOINTS)
    assert endpoints[0] == Endpoint(url="http://crl.public-ca.test/lab-int.crl", kind="crl")
    assert endpoints[2] == Endpoint(url="http://crl.public-ca.test/stale.crl", kind=None)
    assert endpoints[3].scheme == "ldap"
    assert len(endpoints) == len(MIXED_ENDPOINTS) - 1  # the duplicate is dropped, first kind wins


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], r"endpoints: expected a non-empty list"),
        ("http://a.test/x.crl", r"endpoints: expected a non-empty list"),
        ([{"kind": "crl"}], r"endpoints\[0\]: a dict needs the key 'url'"),
        (["http://a.test/x.crl", {"url": "http://a.test/y", "kind": "cdp"}], r"endpoints\[1\]\.kind: must be one of"),
        (["http://a.test/x.crl", 5], r"endpoints\[1\]: expected a URL string or a"),
        ([{"url": "gopher://a.test/"}], r"endpoints\[0\]\.url: URL scheme"),
    ],
)
def test_normalize_refuses(value, message) -> None:
    with pytest.raises(EndpointError, match=message):
        normalize_endpoints(value)


# --- bodies -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bodies():
    return make_bodies(NOW)


@pytest.mark.parametrize(
    ("body", "kind", "parsed_as", "stale", "fresh", "error"),
    [
        ("CRL_FRESH", "crl", "crl", False, True, None),
        ("CRL_FRESH_PEM", None, "crl", False, True, None),
        ("CRL_DELTA", "delta_crl", "delta_crl", False, True, None),
        ("CRL_STALE", "crl", "crl", True, False, "the CRL is stale"),
        ("CERT_DER", "ca_issuers", "certificate", None, None, None),
        ("CERTS_P7C", "ca_issuers", "certificate", None, None, None),
        ("CERT_DER", "crl", "certificate", None, None, "a crl URL answered with a certificate"),
        ("CRL_FRESH", "ca_issuers", "crl", False, True, "a ca_issuers URL answered with a crl"),
        ("GARBAGE", "crl", "none", None, None, "is not a CRL or a certificate"),
    ],
)
def test_interpret_body(bodies, body, kind, parsed_as, stale, fresh, error) -> None:
    out = interpret_body(bodies[body], kind=kind, now=NOW, field="results[0]")
    assert (out["parsed_as"], out["stale"], out["fresh"]) == (parsed_as, stale, fresh)
    if error is None:
        assert out["error"] is None
    else:
        assert error in out["error"]


def test_interpret_body_times(bodies) -> None:
    out = interpret_body(bodies["CRL_STALE"], kind="crl", now=NOW, field="x")
    assert out["this_update"] == "2026-11-25T03:00:00Z"
    assert out["next_update"] == "2026-11-26T03:00:00Z"


def test_crl_not_yet_valid_is_not_fresh(bodies) -> None:
    # Judged two hours before ThisUpdate (a host clock running behind the CA's): not stale, not fresh either.
    out = interpret_body(bodies["CRL_FRESH"], kind="crl", now=NOW - datetime.timedelta(hours=2), field="x")
    assert (out["stale"], out["fresh"]) == (False, False)


# --- the whole check at the seam -----------------------------------------------------------------------------

@pytest.fixture
def mixed_bodies():
    return make_bodies(NOW)


@pytest.fixture
def mixed(monkeypatch, mixed_bodies):
    return FakeHost(monkeypatch, compact(load_document("crl_fetch_mixed.json", NOW, mixed_bodies)))


def run(check_mode=False, **overrides):
    return run_crl_retrieval_check("conn", args(**overrides), check_mode=check_mode,
                                   task_action="crlfix.windows.crl_retrieval_check", now=NOW)


def by_url(result):
    return {r["url"]: r for r in result["results"]}


def test_one_remote_command_with_http_urls_only(mixed) -> None:
    result = run()
    assert mixed.calls == 1
    assert mixed.sent_name() == "crl_fetch"
    sent = mixed.sent_args()
    assert LDAP not in sent["urls"]
    assert len(sent["urls"]) == len(set(sent["urls"])) == 13
    assert sent == {"urls": sent["urls"], "timeout_ms": 15000, "purge_cache": False, "max_bytes": 1_000_000}
    # results keep the order of the option, LDAP included
    assert [r["url"] for r in result["results"]][:4] == [
        "http://crl.public-ca.test/lab-int.crl", "http://crl.public-ca.test/lab-int+.crl",
        "http://crl.public-ca.test/stale.crl", LDAP]


def test_mixed_results(mixed, mixed_bodies) -> None:
    result = run()
    r = by_url(result)
    fresh = r["http://crl.public-ca.test/lab-int.crl"]
    assert fresh == {
        "url": "http://crl.public-ca.test/lab-int.crl", "kind": "crl", "reachable": True, "usable": True,
        "http_status": 200, "elapsed_ms": 41, "bytes": len(mixed_bodies["CRL_FRESH"]), "truncated": False,
        "parsed_as": "crl", "this_update": "2026-11-26T03:00:00Z", "next_update": "2026-11-27T04:00:00Z",
        "stale": False, "fresh": True, "error": None, "foreign_agent": None, "winhttp_error": None,
        "proxy_error": None, "via": None, "location": None, "rejected": None, "ocsp_status": None,
        "ocsp_cert_status": None,
    }
    assert r["http://crl.public-ca.test/lab-int+.crl"]["parsed_as"] == "delta_crl"
    stale = r["http://crl.public-ca.test/stale.crl"]
    assert (stale["kind"], stale["reachable"], stale["usable"], stale["stale"]) == (None, True, False, True)

    ldap = r[LDAP]
    assert (ldap["reachable"], ldap["usable"], ldap["http_status"], ldap["error"]) == (False, False, None, LDAP_ERROR)
    assert "LDAP is not fetched over an HTTP proxy" in ldap["error"]

    assert r["http://crl.public-ca.test/lab-int.crt"]["parsed_as"] == "certificate"
    assert r["http://crl.public-ca.test/lab-int.p7c"]["usable"] is True

    missing = r["http://crl.public-ca.test/missing.crl"]
    assert (missing["reachable"], missing["http_status"], missing["error"]) == (False, 404, "HTTP status 404")
    assert missing["parsed_as"] == "none"

    garbage = r["http://crl.public-ca.test/garbage.crl"]
    assert (garbage["reachable"], garbage["usable"], garbage["parsed_as"]) == (True, False, "none")
    assert "is not a CRL or a certificate" in garbage["error"]

    timed_out = r["http://crl.blackhole.test/lab.crl"]
    assert timed_out["reachable"] is False
    assert (timed_out["http_status"], timed_out["elapsed_ms"]) == (None, 15000)
    assert timed_out["error"] == "The operation timed out"
    assert r["http://crl.nowhere.test/lab.crl"]["error"] == "The server name or address could not be resolved"

    ocsp = r["http://ocsp.public-ca.test/"]
    assert (ocsp["reachable"], ocsp["usable"], ocsp["parsed_as"], ocsp["error"]) == (True, True, "none", None)
    ocsp_down = r["http://ocsp.down.test/"]
    assert (ocsp_down["reachable"], ocsp_down["http_status"]) == (False, 503)
    assert "gateway error" in ocsp_down["error"]

    big = r["http://crl.public-ca.test/big.crl"]
    assert (big["reachable"], big["usable"], big["truncated"], big["bytes"]) == (True, False, True, 5000000)
    assert "max_bytes (1000000)" in big["error"]
    assert r["http://crl.public-ca.test/lab-int-pem.crl"]["usable"] is True

    assert result["summary"] == {"total": 14, "reachable": 9, "unreachable": 5, "usable": 6, "stale": 1,
                                 "ldap_skipped": 1}
    assert result["all_reachable"] is False
    assert result["all_usable"] is False
    assert (result["changed"], result["purged"], result["purge_skipped_check_mode"], result["purge"]) == (
        False, False, False, None)
    assert result["checked_at"] == "2026-11-26T04:00:00Z"


def test_all_good(monkeypatch) -> None:
    host = FakeHost(monkeypatch, compact(load_document("crl_fetch_purged.json", NOW)))
    result = run(endpoints=["http://crl.public-ca.test/lab-int.crl"], purge_cache=True)
    assert host.sent_args()["purge_cache"] is True
    assert (result["all_reachable"], result["all_usable"]) == (True, True)
    assert (result["changed"], result["purged"]) == (True, True)
    assert result["purge"]["output"].startswith("CertUtil: -URLCache")
    assert "warnings" not in result


def test_purge_is_skipped_in_check_mode(monkeypatch) -> None:
    host = FakeHost(monkeypatch, compact(load_document("crl_fetch_mixed.json", NOW)))
    result = run(check_mode=True, purge_cache=True)
    assert host.sent_args()["purge_cache"] is False  # the fetch runs, the write does not
    assert (result["changed"], result["purged"], result["purge_skipped_check_mode"]) == (False, False, True)


def test_failed_purge_is_a_warning_not_a_change(monkeypatch) -> None:
    FakeHost(monkeypatch, compact(load_document("crl_fetch_purge_failed.json", NOW)))
    result = run(endpoints=["http://crl.public-ca.test/lab-int.crl"], purge_cache=True)
    assert (result["changed"], result["purged"]) == (False, False)
    assert "Access is denied" in result["warnings"][0]
    assert result["results"][0]["usable"] is True


def test_only_ldap_needs_no_remote_command(monkeypatch) -> None:
    host = FakeHost(monkeypatch, "must not be read")
    result = run(endpoints=[LDAP])
    assert host.calls == 0
    assert result["summary"]["ldap_skipped"] == 1
    assert result["all_reachable"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"crl_timeout_ms": 0}, "crl_timeout_ms: must be an integer from 1 to 600000, got 0"),
        ({"max_bytes": -1}, "max_bytes: must be an integer from 1 to"),
        ({"endpoints": ["http://ok.test/a.crl", "http://bad host/"]}, r"endpoints\[1\]: URL contains whitespace"),
    ],
)
def test_bad_options_fail_before_any_remote_command(monkeypatch, overrides, message) -> None:
    host = FakeHost(monkeypatch, "")
    with pytest.raises(EndpointError, match=message):
        run(**overrides)
    assert host.calls == 0


def test_a_document_for_other_urls_is_refused(monkeypatch) -> None:
    FakeHost(monkeypatch, compact(load_document("crl_fetch_purged.json", NOW)))
    with pytest.raises(HostScriptError, match="not the answer for 'http://other.test/x.crl'"):
        run(endpoints=["http://other.test/x.crl"])


def test_a_document_with_too_few_results_is_refused(monkeypatch) -> None:
    FakeHost(monkeypatch, compact(load_document("crl_fetch_purged.json", NOW)))
    with pytest.raises(HostScriptError, match="1 results for 2 URLs"):
        run(endpoints=["http://crl.public-ca.test/lab-int.crl", "http://other.test/x.crl"])


def test_a_body_that_is_not_base64_is_refused(monkeypatch) -> None:
    doc = ('{"script":"crl_fetch","schema":1,"purge":null,"results":[{"url":"http://a.test/x.crl","status":200,'
           '"elapsed_ms":1,"bytes":3,"body_b64":"@@@","truncated":false,"error":null}]}')
    FakeHost(monkeypatch, doc)
    with pytest.raises(HostScriptError, match=r"results\[0\]\.body_b64 is not base64"):
        run(endpoints=["http://a.test/x.crl"])


def test_body_b64_is_decoded_not_taken_as_text(monkeypatch) -> None:
    crl = make_bodies(NOW)["CRL_FRESH"]
    doc = ('{"script":"crl_fetch","schema":1,"purge":null,"results":[{"url":"http://a.test/x.crl","status":200,'
           f'"elapsed_ms":1,"bytes":{len(crl)},"body_b64":"{base64.b64encode(crl).decode()}","truncated":false,'
           '"error":null}]}')
    FakeHost(monkeypatch, doc)
    assert run(endpoints=["http://a.test/x.crl"])["results"][0]["parsed_as"] == "crl"


# --- the host script reads what the controller sends ---------------------------------------------------------

def test_crl_fetch_ps1_reads_every_sent_argument_and_others_only_with_a_default(monkeypatch) -> None:
    host = FakeHost(monkeypatch, compact(load_document("crl_fetch_purged.json", NOW)))
    run(endpoints=["http://crl.public-ca.test/lab-int.crl"])
    text = host.scripts[-1]  # the script as sent: its body and the fragments holding the option tables
    root = pslint.parse(text).root_node
    direct, defaulted = pslint.member_reads(root, "CrlfixArgs"), pslint.defaulted_reads(root, "CrlfixArgs")
    assert direct <= set(host.sent_args()) <= direct | defaulted
    assert "@'" not in text and '@"' not in text  # the encoder strips lines: no here-strings


def test_partition_reports_each_malformed_certificate_url_once_and_keeps_the_rest() -> None:
    items = [{"url": "http://a.test/x.crl", "kind": "crl"}, {"url": "http://a.test/bad x.crl", "kind": "crl"},
             {"url": "http://a.test/bad x.crl", "kind": "crl"}, {"url": 'http://a.test/"q".crt', "kind": "ca_issuers"},
             {"url": "http://a.test/x.crl", "kind": "delta_crl"}]
    valid, invalid = partition_endpoints(items)
    assert [(e.url, e.kind) for e in valid] == [("http://a.test/x.crl", "crl")]
    assert [(e["url"], e["kind"]) for e in invalid] == [("http://a.test/bad x.crl", "crl"),
                                                        ('http://a.test/"q".crt', "ca_issuers")]
    assert invalid[0]["reason"] == "URL contains whitespace or control characters: 'http://a.test/bad x.crl'"


def test_a_body_the_document_cap_left_out_says_so_not_max_bytes() -> None:
    # truncated_by "document_cap" is not "longer than max_bytes".
    endpoint = Endpoint("http://crl.public-ca.test/big.crl", "crl")
    host = {"url": endpoint.url, "status": 200, "elapsed_ms": 9, "bytes": 900, "body_b64": "", "truncated": True,
            "truncated_by": "document_cap", "error": None}
    result = interpret_result(endpoint, host, now=datetime.datetime.now(datetime.UTC), max_bytes=4194304,
                              field="results[0]")
    assert (result["reachable"], result["usable"], result["truncated"]) == (True, False, True)
    assert result["error"].startswith("the body (900 bytes) was left out by the document cap")
    assert "max_bytes" not in result["error"]


@pytest.mark.parametrize("status", [401, 403, 407])
@pytest.mark.parametrize("kind", ["ocsp", "crl"])
def test_a_refusal_is_not_a_usable_endpoint(kind: str, status: int) -> None:
    # an OCSP responder's 400/405 proves the path; a 401/403/407 (server or proxy) does not.
    endpoint = Endpoint(url="http://ocsp.public-ca.test/", kind=kind)
    result = interpret_result(endpoint, {"status": status, "elapsed_ms": 3, "bytes": 0},
                              now=datetime.datetime.now(datetime.UTC), max_bytes=1, field="results[0]")
    assert (result["reachable"], result["usable"]) == (False, False)
    assert result["error"].startswith(f"HTTP status {status}: ")


# ---- what the diagnosis reads of an answer: the proxy's own words, a CRL its issuer did not sign, an OCSP answer ----

def test_the_winhttp_error_and_the_proxys_headers_reach_the_result() -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import Endpoint, interpret_result
    host = {"url": "http://crl.a/x.crl", "status": 503, "headers": {"X-Squid-Error": "ERR_DNS_FAIL 0",
                                                                    "Via": "1.1 squid (squid/5.7)"}}
    result = interpret_result(Endpoint("http://crl.a/x.crl", "crl"), host, now=NOW, max_bytes=1000, field="r")
    assert (result["proxy_error"], result["via"]) == ("ERR_DNS_FAIL 0", "1.1 squid (squid/5.7)")
    assert result["winhttp_error"] is None
    silent = interpret_result(Endpoint("http://crl.a/x.crl", "crl"), {"url": "http://crl.a/x.crl", "status": None,
                              "error": "The operation timed out", "winhttp_error": 12002}, now=NOW, max_bytes=1,
                              field="r")
    assert silent["winhttp_error"] == 12002 and silent["error"] == "The operation timed out"


def test_a_crl_its_certificates_issuer_did_not_sign_is_rejected() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import Endpoint, interpret_result
    from tests.unit.plugins import pki_factory as pf
    p = pf.build_lab_pki(NOW)
    issuer = p.issuing.cert.public_bytes(Encoding.DER)

    def answer(crl) -> dict:
        body = crl.public_bytes(Encoding.DER)
        host = {"url": pf.HTTP_CRL, "status": 200, "bytes": len(body), "body_b64": base64.b64encode(body).decode()}
        return interpret_result(Endpoint(pf.HTTP_CRL, "crl", issuer), host, now=NOW, max_bytes=10**6, field="r")

    good, forged = answer(p.base_crl), answer(p.forged_crl)
    assert good["usable"] is True and good["rejected"] is None
    assert forged["usable"] is False and "does not verify with the issuer's public key" in forged["rejected"]
    assert forged["error"].startswith("the CRL is not valid for its certificates: ")


def test_an_ocsp_responders_answer_to_the_hosts_request_is_read() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp

    from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import Endpoint, interpret_result
    responder = "http://ocsp.a/"
    broken = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    body = base64.b64encode(broken.public_bytes(Encoding.DER)).decode()
    host = {"url": responder + "MEIwQDA%2BMDwwOjAJBgUrDgMCGgUA", "location": responder, "status": 200,
            "body_b64": body}
    result = interpret_result(Endpoint(responder, "ocsp"), host, now=NOW, max_bytes=10**6, field="r")
    assert (result["ocsp_status"], result["usable"], result["location"]) == ("unauthorized", False, host["url"])
    assert "the OCSP responder answered unauthorized" in result["error"]
    bare = interpret_result(Endpoint(responder, "ocsp"), {"url": responder, "status": 405}, now=NOW, max_bytes=1,
                            field="r")
    assert (bare["usable"], bare["ocsp_status"]) == (True, None)  # no request sent: only the path is proven
