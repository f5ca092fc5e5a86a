"""Certificate loading, identity and revocation endpoints (module_utils/_x509_endpoints.py)."""

from __future__ import annotations

import base64
import textwrap

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    CertificateParseError,
    certificate_info,
    display_name,
    eku_oid,
    iso_utc,
    name_key,
    revocation_endpoints,
    revocation_summary,
)
from tests.unit.plugins import pki_factory as pf

# Input forms a playbook may hand over: PEM, base64 DER as one line, base64 wrapped at 64 columns the way
# Windows' "Base-64 encoded X.509 (.CER)" export and certutil -encode write it (CRLF), and raw bytes.
INPUT_FORMS = {
    "pem": lambda issued: issued.pem,
    "pem_bytes": lambda issued: issued.pem.encode(),
    "der_b64": lambda issued: issued.der_b64,
    "der_b64_wrapped_crlf": lambda issued: "\r\n".join(textwrap.wrap(issued.der_b64, 64)) + "\r\n",
    "der_bytes": lambda issued: issued.der,
    "certificate_object": lambda issued: issued.cert,
}


@pytest.mark.parametrize("form", sorted(INPUT_FORMS))
def test_every_input_form_gives_the_same_endpoints(pki, form) -> None:
    got = revocation_endpoints(INPUT_FORMS[form](pki.leaf)).as_dict()
    assert got == {
        "crl": [pf.HTTP_CRL, pf.LDAP_CRL],
        "delta_crl": [pf.HTTP_DELTA],
        "ocsp": [pf.OCSP],
        "ca_issuers": [pf.ISSUING_AIA],
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("root", {"crl": [], "delta_crl": [], "ocsp": [], "ca_issuers": []}),
        ("issuing", {"crl": [pf.ROOT_CRL], "delta_crl": [], "ocsp": [], "ca_issuers": [pf.ROOT_AIA]}),
        ("ldap_leaf", {"crl": [pf.LDAP_CRL], "delta_crl": [], "ocsp": [], "ca_issuers": [pf.LDAP_AIA]}),
        ("bare_leaf", {"crl": [], "delta_crl": [], "ocsp": [], "ca_issuers": []}),
        ("orphan_leaf", {"crl": [pf.ORPHAN_CRL], "delta_crl": [], "ocsp": [], "ca_issuers": []}),
    ],
)
def test_endpoints_per_certificate(pki, name, expected) -> None:
    endpoints = revocation_endpoints(getattr(pki, name).der)
    assert endpoints.as_dict() == expected
    assert endpoints.is_empty() == (not any(expected.values()))


def test_urls_keep_certificate_order_and_spelling(pki) -> None:
    urls = ["LDAP:///CN=Z", "http://B.example/x.crl", "http://a.example/y.crl"]
    cert = pf.make_certificate("order.lab.test", now=pki.now, issuer=pki.issuing, crl=urls)
    assert list(revocation_endpoints(cert.der).crl) == urls


def test_directory_name_distribution_points_are_skipped(pki) -> None:
    # A DP may name the CRL issuer as a directory name instead of a URL; there is nothing to fetch.
    dn = x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CRL1")]))
    point = x509.DistributionPoint([dn, x509.UniformResourceIdentifier(pf.HTTP_CRL)], None, None, None)
    builder = (x509.CertificateBuilder().subject_name(pki.leaf.cert.subject).issuer_name(pki.issuing.cert.subject)
               .public_key(pki.leaf.key.public_key()).serial_number(5)
               .not_valid_before(pki.now).not_valid_after(pki.now)
               .add_extension(x509.CRLDistributionPoints([point]), critical=False))
    cert = builder.sign(pki.issuing.key, pf.hashes.SHA256())
    assert revocation_endpoints(cert).crl == (pf.HTTP_CRL,)


def test_certificate_info_identity(pki) -> None:
    info = certificate_info(pki.leaf.pem)
    assert info.subject == "CN=lync.lab.test, O=Lab, C=US"
    assert info.issuer == "CN=Lab Issuing CA, O=Lab, C=US"
    assert info.thumbprint == pki.leaf.thumbprint
    assert int(info.serial, 16) == pki.leaf.cert.serial_number and info.serial == info.serial.upper()
    assert len(info.serial) % 2 == 0
    assert iso_utc(info.not_after) == pki.leaf.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info.ekus == ("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2")
    assert (info.is_ca, info.self_signed) == (False, False)
    issuing = certificate_info(pki.issuing.der_b64)
    assert info.aki == issuing.ski and info.aki is not None
    assert info.issuer_key == issuing.subject_key


@pytest.mark.parametrize(
    ("name", "is_ca", "self_signed", "has_ski", "ekus"),
    [
        ("root", True, True, True, None),
        ("issuing", True, False, True, None),
        ("self_signed", False, True, True, ("1.3.6.1.5.5.7.3.1",)),
        ("bare_leaf", False, False, False, None),
        ("orphan_ca", True, True, True, None),
    ],
)
def test_certificate_info_flags(pki, name, is_ca, self_signed, has_ski, ekus) -> None:
    info = certificate_info(getattr(pki, name).der)
    assert (info.is_ca, info.self_signed, info.ski is not None, info.ekus) == (is_ca, self_signed, has_ski, ekus)


def test_self_issued_but_not_self_signed(pki) -> None:
    # Same subject and issuer name, signed by another key (a CA key rollover "link" certificate).
    cert = pf.make_certificate("Lab Root CA", now=pki.now, issuer=pki.root)
    info = certificate_info(cert.der)
    assert info.subject == info.issuer
    assert info.self_signed is False


def test_as_dict_is_plain_data(pki) -> None:
    data = certificate_info(pki.leaf.der).as_dict()
    assert data["thumbprint"] == pki.leaf.thumbprint
    assert data["crl"] == [pf.HTTP_CRL, pf.LDAP_CRL]
    assert data["not_after"].endswith("Z")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty value"),
        ("   \n", "empty value"),
        (b"", "empty value"),
        ("not base64 at all!", "neither PEM nor base64 DER"),
        (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), "not a valid X.509 certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid X.509 certificate"),
        (b"\x00\x01garbage", "not a valid X.509 certificate"),
        (42, "got int"),
        (None, "got NoneType"),
    ],
)
def test_bad_input_names_the_field(value, message) -> None:
    with pytest.raises(CertificateParseError, match=message) as err:
        revocation_endpoints(value, field="stores.My[3]")
    assert str(err.value).startswith("stores.My[3]: ")


@pytest.mark.parametrize(
    ("value", "oid"),
    [
        ("serverAuth", "1.3.6.1.5.5.7.3.1"),
        ("SERVERAUTH", "1.3.6.1.5.5.7.3.1"),
        ("Server Authentication", "1.3.6.1.5.5.7.3.1"),
        (" clientAuth ", "1.3.6.1.5.5.7.3.2"),
        ("smartcardLogon", "1.3.6.1.4.1.311.20.2.2"),
        ("anyExtendedKeyUsage", "2.5.29.37.0"),
        ("1.3.6.1.4.1.311.10.3.4", "1.3.6.1.4.1.311.10.3.4"),
    ],
)
def test_eku_oid(value, oid) -> None:
    assert eku_oid(value) == oid


@pytest.mark.parametrize("value", ["serverauthentication", "1.3.", "3.1.2", "", None, "01.2"])
def test_eku_oid_refuses(value) -> None:
    with pytest.raises(ValueError, match=r"^ekus: "):
        eku_oid(value)


def test_display_name_quotes_like_windows_and_key_folds_case() -> None:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso, Ltd"),
        x509.NameAttribute(NameOID.COMMON_NAME, "web01"),
    ])
    assert display_name(name) == 'CN=web01, O="Contoso, Ltd", C=DE'
    shouted = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "de"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CONTOSO,  LTD"),
        x509.NameAttribute(NameOID.COMMON_NAME, "WEB01"),
    ])
    assert name_key(name) == name_key(shouted)
    assert name_key(name) != name_key(x509.Name(list(reversed(list(name)))))


def test_revocation_summary_says_whether_any_crl_location_is_http(pki) -> None:
    assert revocation_summary(pki.leaf.pem) == {
        "subject": "CN=lync.lab.test, O=Lab, C=US", "thumbprint": pki.leaf.thumbprint,
        "crl_urls": [pf.HTTP_CRL, pf.LDAP_CRL], "ocsp_urls": [pf.OCSP], "http_crl": True}
    ldap_only = revocation_summary(pki.ldap_leaf.der)
    assert (ldap_only["crl_urls"], ldap_only["http_crl"]) == ([pf.LDAP_CRL], False)
    assert revocation_summary(pki.bare_leaf.der_b64)["http_crl"] is False  # no CDP extension at all
    with pytest.raises(CertificateParseError, match=r"^results\[0\]\.peer_certificate_b64: not a valid X\.509"):
        revocation_summary(b"\x30\x00", field="results[0].peer_certificate_b64")
