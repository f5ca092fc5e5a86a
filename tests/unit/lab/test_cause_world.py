"""The cause catalogue's pieces of the lab world, without a network: the cause CAs and the hosts' second certificates
(tests/lab/cause_pki.py), the OCSP responder's answers (ocsp_responder.py), the NXDOMAIN server's (nxdomain_dns.py)."""

from __future__ import annotations

import base64
import datetime as dt
import struct
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from tests.lab import cause_pki, ocsp_responder, pki
from tests.lab.nxdomain_dns import RCODE_NXDOMAIN, nxdomain_answer

FQDN = "fe01.contoso.test"


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab")
    pki.issue_host_certificates(path, [FQDN])
    pki.publish(path, next_update=dt.timedelta(hours=1))
    return path


def _cert(entry: dict) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(entry["der_b64"]))


def _uris(cert: x509.Certificate, cls) -> list[str]:
    try:
        value = cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return []
    return [n.value for dp in value for n in dp.full_name]


def _ocsp(cert: x509.Certificate) -> list[str]:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]


@pytest.mark.parametrize("cause", sorted(cause_pki.LEAVES))
def test_each_second_certificate_names_its_causes_pointers_and_chains_to_its_ca(lab_dir, cause):
    stores = cause_pki.cause_certificate(lab_dir, FQDN, cause)
    leaf, issuer = _cert(stores["My"][0]), _cert(stores["CA"][0])
    slug, cdp, freshest, ocsp_url = cause_pki.LEAVES[cause]
    leaf.verify_directly_issued_by(issuer)
    issuer.verify_directly_issued_by(pki.LabCA(lab_dir).root_cert)
    assert stores["My"][0]["has_private_key"] is True
    assert _uris(leaf, x509.CRLDistributionPoints) == list(cdp)
    assert _uris(leaf, x509.FreshestCRL) == list(freshest)
    assert _ocsp(leaf) == ([ocsp_url] if ocsp_url else [])
    # Never the service's certificate: that one has the FQDN itself in its SAN.
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [f"app.{FQDN}"]
    assert cause_pki.cause_certificate(lab_dir, FQDN, cause) == stores  # issued once, then reused


def test_the_cause_cas_publish_as_their_mode_says(lab_dir):
    www = lab_dir / "pki" / "www" / pki.CRL_HOST
    lab = pki.LabCA(lab_dir)
    now = dt.datetime.now(dt.UTC)
    legacy = x509.load_der_x509_crl((www / "legacy-ca.crl").read_bytes())
    assert legacy.next_update_utc < now
    assert not (www / "branch-ca.crl").exists()
    renewed_cert = cause_pki.ca_material(lab, cause_pki.CAUSE_CAS["renewed-ca"])[0]
    renewed = x509.load_der_x509_crl((www / "renewed-ca.crl").read_bytes())
    assert renewed.issuer == renewed_cert.subject and not renewed.is_signature_valid(renewed_cert.public_key())
    partner_cert = cause_pki.ca_material(lab, cause_pki.CAUSE_CAS["partner-ca"])[0]
    partner = x509.load_der_x509_crl((www / "partner-ca.crl").read_bytes())
    assert partner.is_signature_valid(partner_cert.public_key()) and partner.next_update_utc > now
    assert (www / "issuing-ca+.crl").read_bytes() == (www / "issuing-ca-delta.crl").read_bytes()
    assert (lab_dir / "pki" / "www" / pki.CTL_HOST / pki.CTL_PATH.lstrip("/")).read_bytes() == pki.CTL_BODY


def test_the_large_root_store_passes_the_issuer_list_limit_and_every_entry_is_a_root(lab_dir):
    entries = cause_pki.large_root_store(lab_dir)
    certs = [_cert(e) for e in entries]
    assert all(c.subject == c.issuer for c in certs)
    assert sum(len(c.subject.public_bytes()) + 2 for c in certs) > 16384
    assert cause_pki.large_root_store(lab_dir) == entries


def test_the_intermediate_as_root_is_an_entry_whose_issuer_is_not_its_subject(lab_dir):
    cert = _cert(cause_pki.intermediate_as_root(lab_dir))
    assert cert.subject != cert.issuer


def _request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    return ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)


def test_the_responder_answers_good_revoked_and_unauthorized(lab_dir):
    lab = pki.LabCA(lab_dir)
    leaf = x509.load_pem_x509_certificate((lab.dir / "hosts" / f"{FQDN}.crt").read_bytes())
    answer = ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, _request(leaf, lab.issuing_cert)))
    assert (answer.response_status, answer.certificate_status) == (ocsp.OCSPResponseStatus.SUCCESSFUL,
                                                                   ocsp.OCSPCertStatus.GOOD)
    # Signed by the CA itself, a CA-designated responder (RFC 6960 4.2.2.2): raises when it is not.
    lab.issuing_cert.public_key().verify(answer.signature, answer.tbs_response_bytes,
                                         ec.ECDSA(answer.signature_hash_algorithm))
    lab.revoke(leaf.serial_number)
    revoked = ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, _request(leaf, lab.issuing_cert)))
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    stores = cause_pki.cause_certificate(lab_dir, FQDN, "ocsp_responder_failing")
    other = ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, _request(_cert(stores["My"][0]),
                                                                                 _cert(stores["CA"][0]))))
    assert other.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_a_request_that_does_not_parse_is_malformed_and_a_mode_answers_every_request(lab_dir):
    bad = ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, b"\x30\x03\x02\x01\x01"))
    assert bad.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, None)).response_status is \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    ocsp_responder.set_mode(lab_dir, "internalError")
    try:
        assert ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, b"")).response_status is \
            ocsp.OCSPResponseStatus.INTERNAL_ERROR
    finally:
        ocsp_responder.set_mode(lab_dir, "good")
    with pytest.raises(ValueError, match="mode"):
        ocsp_responder.set_mode(lab_dir, "broken")


def test_a_get_request_is_read_from_the_urls_last_segment():
    der = b"\x30\x00\xfb\xff"
    encoded = base64.b64encode(der).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert ocsp_responder.request_from_path(f"/{encoded}") == der
    with pytest.raises(ValueError):
        ocsp_responder.request_from_path("/")


def test_the_dns_server_answers_every_query_nxdomain_with_its_id_and_question():
    question = b"\x03crl\x09public-ca\x04test\x00\x00\x01\x00\x01"
    query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + question
    answer = nxdomain_answer(query)
    ident, flags, qdcount, ancount = struct.unpack("!HHHH", answer[:8])
    assert (ident, qdcount, ancount) == (0x1234, 1, 0)
    assert flags & 0x8000 and flags & 0x0100 and flags & 0x000F == RCODE_NXDOMAIN
    assert answer[12:] == question
    assert nxdomain_answer(answer) is None and nxdomain_answer(b"\x00") is None
