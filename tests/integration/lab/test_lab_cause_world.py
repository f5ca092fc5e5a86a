"""The revocation world's pieces for the cause catalogue, on the real squid and CRL server: the proxies that ask for
authentication, that cannot resolve, that block the root certificate list; IIS's refusal of a '+'; the cause CAs'
publications; the OCSP responder (tests/lab/squid.py, crl_server.py, cause_pki.py, ocsp_responder.py)."""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.lab import cause_pki, ocsp_responder, pki
from tests.lab import squid as squid_mod
from tests.lab.cryptoapi import describe_content
from tests.lab.winhttp import WinHttpProxy, http_get

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def no_dns(lab_dir, squid, crl_http):
    proxy = squid_mod.no_dns_squid(lab_dir, port=squid.port, nameserver=crl_http.resolver_address)
    proxy.start()
    yield proxy
    proxy.stop()


def _get(url, proxy, names, **kw):
    return http_get(url, proxy=WinHttpProxy(proxy), names=names, timeout=10, **kw)


def test_the_auth_listener_answers_407_with_a_basic_challenge(squid, lab_addresses):
    result = _get(pki.ISSUING_CRL_URL, squid.filtered_proxy(squid_mod.AUTH_REQUIRED_ADDRESS), lab_addresses)
    assert result["http_status"] == 407 and result["reachable"] is False, result
    assert result["headers"]["proxy-authenticate"].startswith("Basic"), result["headers"]
    assert result["headers"]["x-squid-error"].startswith("ERR_CACHE_ACCESS_DENIED"), result["headers"]


def test_the_proxy_without_dns_answers_its_gateway_error_where_the_lab_squid_reaches_the_crl(
        squid, no_dns, lab_addresses):
    assert _get(pki.ISSUING_CRL_URL, squid.proxy, lab_addresses)["http_status"] == 200
    result = _get(pki.ISSUING_CRL_URL, no_dns.proxy, lab_addresses)
    # squid's documentation names ERR_DNS_FAIL (503) for a name it cannot resolve; squid 5.7, which the lab runs,
    # answers a name its resolver says does not exist with 502 ERR_READ_ERROR ("path selection found no paths").
    # Either is the proxy's own gateway error, at once (the NXDOMAIN server answers without delay).
    assert (result["http_status"], result["reachable"]) in ((502, False), (503, False)), result
    assert result["headers"]["x-squid-error"].split()[0] in ("ERR_DNS_FAIL", "ERR_READ_ERROR"), result["headers"]
    assert result["elapsed_ms"] < 2000, result
    assert no_dns.proxy == squid_mod.filtered_proxy(squid.proxy, squid_mod.NO_DNS_ADDRESS)


def test_the_ctl_listener_blocks_only_the_root_certificate_list(squid, lab_addresses):
    blocking = squid.filtered_proxy(squid_mod.CTL_BLOCKED_ADDRESS)
    assert _get(pki.CTL_URL, squid.proxy, lab_addresses)["http_status"] == 200
    refused = _get(pki.CTL_URL, blocking, lab_addresses)
    assert refused["http_status"] == 403 and "ERR_ACCESS_DENIED" in refused["error"], refused
    assert _get(pki.ISSUING_CRL_URL, blocking, lab_addresses)["http_status"] == 200


def test_iis_refuses_the_plus_in_a_delta_crls_name_and_serves_the_same_crl_without_it(squid, lab_addresses):
    plus = _get(pki.ISSUING_PLUS_DELTA_CRL_URL, squid.proxy, lab_addresses)
    assert plus["http_status"] == 404 and b"404.11" in plus["content"], plus
    plain = _get(pki.ISSUING_DELTA_CRL_URL, squid.proxy, lab_addresses)
    assert plain["http_status"] == 200 and describe_content(plain["content"])["kind"] == "delta_crl"
    assert (pki.LabCA(squid.dir.parent).dir / "www" / pki.CRL_HOST / "issuing-ca+.crl").read_bytes() == plain["content"]


def test_the_cause_cas_publish_a_stale_crl_no_crl_and_a_crl_signed_with_another_key(squid, lab_addresses, lab_dir):
    stale = _get(cause_pki.CAUSE_CAS["legacy-ca"].crl_url, squid.proxy, lab_addresses)
    info = describe_content(stale["content"])
    assert stale["http_status"] == 200 and info["kind"] == "crl", stale
    crl = x509.load_der_x509_crl(stale["content"])
    assert crl.next_update_utc - crl.last_update_utc == cause_pki.STALE_AGE - cause_pki.STALE_OVERDUE
    assert crl.next_update_utc < dt.datetime.now(dt.UTC)
    assert _get(cause_pki.CAUSE_CAS["branch-ca"].crl_url, squid.proxy, lab_addresses)["http_status"] == 404
    renewed = x509.load_der_x509_crl(_get(cause_pki.CAUSE_CAS["renewed-ca"].crl_url, squid.proxy,
                                          lab_addresses)["content"])
    ca_cert = cause_pki.ca_material(pki.LabCA(lab_dir), cause_pki.CAUSE_CAS["renewed-ca"])[0]
    assert renewed.issuer == ca_cert.subject and not renewed.is_signature_valid(ca_cert.public_key())


def _ocsp_get(cert_pem: bytes, issuer: x509.Certificate, squid, names) -> ocsp.OCSPResponse:
    cert = x509.load_pem_x509_certificate(cert_pem)
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    der = request.public_bytes(serialization.Encoding.DER)
    # RFC 6960 Appendix A.1: <responder URL>/<url-encoding of base64 of the DER request>
    url = pki.OCSP_URL.rstrip("/") + "/" + quote(base64.b64encode(der).decode(), safe="")
    result = _get(url, squid.proxy, names)
    assert result["http_status"] == 200, result
    return ocsp.load_der_ocsp_response(result["content"])


def test_the_ocsp_responder_answers_good_for_the_lab_ca_and_unauthorized_for_one_it_does_not_serve(
        squid, lab_addresses, lab_dir):
    lab = pki.LabCA(lab_dir)
    leaf = (lab.dir / "hosts" / "fe01.contoso.test.crt").read_bytes()
    good = _ocsp_get(leaf, lab.issuing_cert, squid, lab_addresses)
    assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == x509.load_pem_x509_certificate(leaf).serial_number
    stores = cause_pki.cause_certificate(lab_dir, "fe01.contoso.test", "ocsp_responder_failing")
    partner = x509.load_der_x509_certificate(base64.b64decode(stores["My"][0]["der_b64"]))
    partner_ca = x509.load_der_x509_certificate(base64.b64decode(stores["CA"][0]["der_b64"]))
    answer = _ocsp_get(partner.public_bytes(serialization.Encoding.PEM), partner_ca, squid, lab_addresses)
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("mode", ["internalError", "tryLater", "malformedRequest", "unauthorized"])
def test_a_broken_responder_answers_every_request_with_its_mode(squid, lab_addresses, lab_dir, mode):
    lab = pki.LabCA(lab_dir)
    ocsp_responder.set_mode(lab_dir, mode)
    try:
        answer = _ocsp_get((lab.dir / "hosts" / "fe01.contoso.test.crt").read_bytes(), lab.issuing_cert, squid,
                           lab_addresses)
    finally:
        ocsp_responder.set_mode(lab_dir, "good")
    assert answer.response_status.name.replace("_", "").lower() == mode.lower()


def test_a_get_without_a_request_is_a_malformed_request_not_a_404(squid, lab_addresses):
    result = _get(pki.OCSP_URL, squid.proxy, lab_addresses)
    assert result["http_status"] == 200, result
    assert ocsp.load_der_ocsp_response(result["content"]).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
