"""The lab PKI: chain, extensions, leaf profiles, CRLs."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from tests.lab import pki
from tests.lab.cryptoapi import describe_content


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One lab directory for the module: its CAs are made once and reused, as in a lab."""
    return tmp_path_factory.mktemp("lab")


def _cert(entry: dict) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(entry["der_b64"]))


def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls).value


def _uris(value) -> list[str]:
    return [n.value for dp in value for n in dp.full_name]


def test_stores_have_cert_inventory_shape_and_the_chain_verifies(lab_dir: Path):
    stores = pki.issue_host_certificates(lab_dir, ["fe01.contoso.test"])["fe01.contoso.test"]
    assert [e["has_private_key"] for e in stores["My"]] == [True]
    assert [e["has_private_key"] for e in stores["CA"] + stores["Root"]] == [False, False]
    leaf, issuing, root = _cert(stores["My"][0]), _cert(stores["CA"][0]), _cert(stores["Root"][0])
    leaf.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert root.subject.rfc4514_string().startswith("O=Lab Public CA,CN=Lab Public Root CA")


def test_leaf_extensions(lab_dir: Path):
    leaf = pki.LabCA(lab_dir).leaf("fe01.contoso.test")
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "fe01.contoso.test"
    assert _ext(leaf, x509.SubjectAlternativeName).get_values_for_type(x509.DNSName) == ["fe01.contoso.test"]
    assert set(_ext(leaf, x509.ExtendedKeyUsage)) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _uris(_ext(leaf, x509.CRLDistributionPoints)) == [pki.ISSUING_CRL_URL]
    aia = {(d.access_method, d.access_location.value) for d in _ext(leaf, x509.AuthorityInformationAccess)}
    assert aia == {
        (AuthorityInformationAccessOID.CA_ISSUERS, "http://aia.public-ca.test/issuing-ca.crt"),
        (AuthorityInformationAccessOID.OCSP, "http://ocsp.public-ca.test/"),
    }


def test_intermediate_points_at_the_root_crl_and_cert(lab_dir: Path):
    issuing = pki.LabCA(lab_dir).issuing_cert
    assert _uris(_ext(issuing, x509.CRLDistributionPoints)) == ["http://crl.public-ca.test/root.crl"]
    assert [d.access_location.value for d in _ext(issuing, x509.AuthorityInformationAccess)] == [
        "http://aia.public-ca.test/root.crt"
    ]
    assert _ext(issuing, x509.BasicConstraints).ca is True


def test_profiles_delta_and_ldap_only(lab_dir: Path):
    ca = pki.LabCA(lab_dir)
    delta = ca.leaf("edge-delta.contoso.test")
    assert _uris(_ext(delta, x509.FreshestCRL)) == [pki.ISSUING_DELTA_CRL_URL]
    ldap = ca.leaf("edge-ldaponly.contoso.test")
    (uri,) = _uris(_ext(ldap, x509.CRLDistributionPoints))
    assert uri.startswith("ldap:///CN=") and "CN=CDP,CN=Public%20Key%20Services" in uri
    assert uri.endswith("?certificateRevocationList?base?objectClass=cRLDistributionPoint")
    with pytest.raises(x509.ExtensionNotFound):
        ca.leaf("fe01.contoso.test").extensions.get_extension_for_class(x509.FreshestCRL)


def test_leaf_profile_rule_is_deterministic_and_mixes_the_fleet():
    fleet = [f"host{i:03d}.contoso.test" for i in range(200)]
    profiles = [pki.leaf_profile(f) for f in fleet]
    assert profiles == [pki.leaf_profile(f.upper()) for f in fleet]
    assert {pki.PROFILE_HTTP, pki.PROFILE_HTTP_DELTA, pki.PROFILE_LDAP_ONLY} == set(profiles)
    assert 5 <= profiles.count(pki.PROFILE_LDAP_ONLY) <= 40


def test_second_call_reuses_cas_and_leaves(lab_dir: Path):
    first = pki.issue_host_certificates(lab_dir, ["fe02.contoso.test"])
    second = pki.issue_host_certificates(lab_dir, ["fe02.contoso.test"])
    assert first == second
    assert (lab_dir / "pki" / "hosts" / "fe02.contoso.test.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    chain_pem = (lab_dir / "pki" / "hosts" / "fe02.contoso.test.crt").read_bytes()
    assert chain_pem.count(b"BEGIN CERTIFICATE") == 2  # leaf + intermediate, as a TLS server sends them


def test_crls_are_signed_and_carry_next_update(tmp_path: Path):
    now = dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.UTC)
    pki.issue_host_certificates(tmp_path, ["a.contoso.test"])
    files = pki.publish(tmp_path, next_update=dt.timedelta(minutes=2), now=now)
    ca = pki.LabCA(tmp_path)
    base = x509.load_der_x509_crl(files["crl.public-ca.test/issuing-ca.crl"].read_bytes())
    delta = x509.load_der_x509_crl(files["crl.public-ca.test/issuing-ca-delta.crl"].read_bytes())
    root = x509.load_der_x509_crl(files["crl.public-ca.test/root.crl"].read_bytes())
    assert base.is_signature_valid(ca.issuing_cert.public_key())
    assert delta.is_signature_valid(ca.issuing_cert.public_key())
    assert root.is_signature_valid(ca.root_cert.public_key())
    assert base.next_update_utc == now + dt.timedelta(minutes=2)
    with pytest.raises(x509.ExtensionNotFound):  # only http+delta leaves point at the delta
        base.extensions.get_extension_for_class(x509.FreshestCRL)
    assert _ext(delta, x509.DeltaCRLIndicator).crl_number == _ext(base, x509.CRLNumber).crl_number
    assert describe_content(files["aia.public-ca.test/root.crt"].read_bytes())["kind"] == "cert"


def test_revoked_host_is_listed_in_base_or_delta(tmp_path: Path):
    pki.issue_host_certificates(tmp_path, ["a.contoso.test", "b.contoso.test"])
    serial_a = pki.revoke_host(tmp_path, "a.contoso.test")
    serial_b = pki.revoke_host(tmp_path, "b.contoso.test", delta_only=True)
    files = pki.publish(tmp_path, next_update=dt.timedelta(hours=1))
    base = x509.load_der_x509_crl(files["crl.public-ca.test/issuing-ca.crl"].read_bytes())
    delta = x509.load_der_x509_crl(files["crl.public-ca.test/issuing-ca-delta.crl"].read_bytes())
    assert [r.serial_number for r in base] == [serial_a]
    assert [r.serial_number for r in delta] == [serial_b]


def test_bad_input_names_the_field(tmp_path: Path):
    with pytest.raises(TypeError, match="fqdns"):
        pki.issue_host_certificates(tmp_path, "fe01.contoso.test")
    with pytest.raises(ValueError, match="fqdns"):
        pki.issue_host_certificates(tmp_path, ["../etc"])
    with pytest.raises(ValueError, match="next_update"):
        pki.publish(tmp_path, next_update=dt.timedelta(0))


@pytest.mark.parametrize(
    ("fqdn", "profile"),
    [
        # Public-CA Lync front ends never get an LDAP-only CDP, whatever their hash bucket.
        ("lync-fe01.lab.test", pki.PROFILE_HTTP),
        ("lync-fe07.lab.test", pki.PROFILE_HTTP),
        # The internal-CA AD FS farm: every lab of three hosts or more has this finding.
        ("adfs01.lab.test", pki.PROFILE_LDAP_ONLY),
        ("lync-ldaponly.lab.test", pki.PROFILE_LDAP_ONLY),
        ("lync-delta.lab.test", pki.PROFILE_HTTP_DELTA),
    ],
)
def test_named_profiles(fqdn: str, profile: str):
    assert pki.leaf_profile(fqdn) == profile
