"""Chain building, filters and the endpoint summary (module_utils/_cert_chain.py)."""

from __future__ import annotations

import datetime
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.crlfix.windows.plugins.module_utils._cert_chain import (
    FLAG_NAMES,
    MAX_CHAIN_LENGTH,
    CertificateFilter,
    StoreCertificate,
    build_chain,
    compile_subject_pattern,
    normalize_thumbprint,
    summarise_certificates,
    url_scheme,
)
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import certificate_info
from tests.unit.plugins import pki_factory as pf

DAY = datetime.timedelta(days=1)


def sc(issued: pf.Issued, store: str = "My", key: bool = False) -> StoreCertificate:
    return StoreCertificate(certificate_info(issued.der), store, key)


@pytest.fixture(scope="module")
def pool(pki) -> list[StoreCertificate]:
    return [sc(pki.issuing_old, "CA"), sc(pki.issuing, "CA"), sc(pki.root, "Root")]


@pytest.mark.parametrize(
    ("leaf", "chain", "complete"),
    [
        ("leaf", ["leaf", "issuing", "root"], True),
        ("ldap_leaf", ["ldap_leaf", "issuing", "root"], True),
        # No AKI at all: matched on the issuer name alone.
        ("bare_leaf", ["bare_leaf", "issuing", "root"], True),
        ("self_signed", ["self_signed"], True),
        ("root", ["root"], True),
        ("orphan_leaf", ["orphan_leaf"], False),
    ],
)
def test_build_chain(pki, pool, leaf, chain, complete) -> None:
    got = build_chain(sc(getattr(pki, leaf)), pool, now=pki.now)
    assert [e.info.thumbprint for e in got.elements] == [getattr(pki, n).thumbprint for n in chain]
    assert got.complete is complete
    assert (got.problem is None) is complete


def test_incomplete_chain_names_the_missing_issuer(pki, pool) -> None:
    got = build_chain(sc(pki.orphan_leaf), pool, now=pki.now)
    assert "'CN=Orphan CA, O=Elsewhere, C=US'" in got.problem
    assert certificate_info(pki.orphan_leaf.der).aki in got.problem


def test_valid_issuer_preferred_over_expired_renewal_twin(pki) -> None:
    # issuing_old and issuing share name and key; whatever the store order, the valid one wins.
    for order in ([pki.issuing_old, pki.issuing], [pki.issuing, pki.issuing_old]):
        pool = [sc(c, "CA") for c in order] + [sc(pki.root, "Root")]
        assert build_chain(sc(pki.leaf), pool, now=pki.now).elements[1].info.thumbprint == pki.issuing.thumbprint


def test_newest_of_two_valid_issuers(pki) -> None:
    key = pki.issuing.key
    older = pf.make_certificate("Lab Issuing CA", now=pki.now, issuer=pki.root, key=key, is_ca=True,
                                not_before=pki.now - 300 * DAY)
    newer = pf.make_certificate("Lab Issuing CA", now=pki.now, issuer=pki.root, key=key, is_ca=True,
                                not_before=pki.now - 3 * DAY)
    pool = [sc(newer, "CA"), sc(older, "CA"), sc(pki.root, "Root")]
    assert build_chain(sc(pki.leaf), pool, now=pki.now).elements[1].info.thumbprint == newer.thumbprint


def test_key_identifier_must_match_when_present(pki) -> None:
    # A CA with the right name but another key is not the issuer.
    impostor = pf.make_certificate("Lab Issuing CA", now=pki.now, issuer=pki.root, is_ca=True)
    got = build_chain(sc(pki.leaf), [sc(impostor, "CA"), sc(pki.root, "Root")], now=pki.now)
    assert got.complete is False
    assert [e.info.thumbprint for e in got.elements] == [pki.leaf.thumbprint]


def test_issuer_name_match_ignores_case(pki) -> None:
    shouting = pf.make_certificate("LAB ISSUING CA", now=pki.now, issuer=pki.root, key=pki.issuing.key,
                                   is_ca=True, org="LAB")
    got = build_chain(sc(pki.leaf), [sc(shouting, "CA"), sc(pki.root, "Root")], now=pki.now)
    assert got.complete is True


def test_issuer_loop_stops(pki) -> None:
    # Two CAs that name each other as issuer (cross-certified, no root in the stores).
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    stub_b = pf.Issued(pf.make_certificate("B", now=pki.now, key=key_b).cert, key_b)
    a = pf.make_certificate("A", now=pki.now, issuer=stub_b, key=key_a, is_ca=True)
    b = pf.make_certificate("B", now=pki.now, issuer=a, key=key_b, is_ca=True)
    leaf = pf.make_certificate("leaf", now=pki.now, issuer=a)
    got = build_chain(sc(leaf), [sc(a, "CA"), sc(b, "CA")], now=pki.now)
    assert got.complete is False
    assert "issuer loop" in got.problem
    assert len(got.elements) <= MAX_CHAIN_LENGTH


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("929bd441bf4d7e24cedd7b9f64a10cd59ddfad63", "929BD441BF4D7E24CEDD7B9F64A10CD59DDFAD63"),
        ("92 9b d4 41 bf 4d 7e 24 ce dd 7b 9f 64 a1 0c d5 9d df ad 63", "929BD441BF4D7E24CEDD7B9F64A10CD59DDFAD63"),
        # certlm.msc's "copy" adds an invisible LEFT-TO-RIGHT MARK in front.
        ("\u200e929bd441bf4d7e24cedd7b9f64a10cd59ddfad63", "929BD441BF4D7E24CEDD7B9F64A10CD59DDFAD63"),
        ("92:9B:D4:41:BF:4D:7E:24:CE:DD:7B:9F:64:A1:0C:D5:9D:DF:AD:63", "929BD441BF4D7E24CEDD7B9F64A10CD59DDFAD63"),
    ],
)
def test_normalize_thumbprint(value, expected) -> None:
    assert normalize_thumbprint(value) == expected


@pytest.mark.parametrize("value", ["929bd441", "Z" * 40, "", 12, None, "929BD441BF4D7E24CEDD7B9F64A10CD59DDFAD6300"])
def test_normalize_thumbprint_refuses(value) -> None:
    with pytest.raises(ValueError, match=r"^thumbprints: "):
        normalize_thumbprint(value)


def test_subject_pattern() -> None:
    assert compile_subject_pattern(None) is None and compile_subject_pattern("") is None
    assert compile_subject_pattern("cn=LYNC").search("CN=lync.lab.test, O=Lab")
    with pytest.raises(ValueError, match=r"^subject: '\(' is not a valid regular expression"):
        compile_subject_pattern("(")


@pytest.mark.parametrize(
    ("criteria", "matching"),
    [
        ({}, {"leaf", "ldap_leaf", "bare_leaf", "expired_leaf", "self_signed"}),
        ({"subject": "lync"}, {"leaf"}),
        ({"subject": r"^CN=(lync|legacy)\.lab\.test,"}, {"leaf", "ldap_leaf"}),
        # No EKU extension = valid for all purposes (bare_leaf) on Windows.
        ({"ekus": {"1.3.6.1.5.5.7.3.1"}}, {"leaf", "ldap_leaf", "bare_leaf", "self_signed"}),
        ({"ekus": {"1.3.6.1.5.5.7.3.2"}}, {"leaf", "ldap_leaf", "bare_leaf", "expired_leaf"}),
        ({"ekus": {"1.3.6.1.5.5.7.3.3"}}, {"bare_leaf"}),
        ({"thumbprints": "leaf,expired_leaf"}, {"leaf", "expired_leaf"}),
        ({"thumbprints": "leaf,expired_leaf", "ekus": {"1.3.6.1.5.5.7.3.1"}}, {"leaf"}),
    ],
)
def test_certificate_filter(pki, criteria, matching) -> None:
    names = ["leaf", "ldap_leaf", "bare_leaf", "expired_leaf", "self_signed"]
    kwargs = dict(criteria)
    if "thumbprints" in kwargs:
        kwargs["thumbprints"] = frozenset(getattr(pki, n).thumbprint for n in kwargs["thumbprints"].split(","))
    if "subject" in kwargs:
        kwargs["subject"] = re.compile(kwargs["subject"], re.IGNORECASE)
    if "ekus" in kwargs:
        kwargs["ekus"] = frozenset(kwargs["ekus"])
    flt = CertificateFilter(**kwargs)
    assert {n for n in names if flt.matches(certificate_info(getattr(pki, n).der))} == matching


def test_any_purpose_eku_matches_every_filter(pki) -> None:
    anything = pf.make_certificate("any.lab.test", now=pki.now, issuer=pki.issuing,
                                   ekus=[pf.x509.ObjectIdentifier("2.5.29.37.0")])
    assert CertificateFilter(ekus=frozenset({"1.3.6.1.5.5.7.3.3"})).matches(certificate_info(anything.der))


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("http://a/b.crl", "http"), ("HTTPS://a", "https"), ("ldap:///CN=x", "ldap"), ("file://\\\\srv\\x", "file"),
     ("pki.lab.test/x.crl", "")],
)
def test_url_scheme(url, scheme) -> None:
    assert url_scheme(url) == scheme


@pytest.fixture(scope="module")
def summary(pki, pool):
    targets = [sc(pki.leaf, key=True), sc(pki.ldap_leaf, key=True), sc(pki.bare_leaf), sc(pki.expired_leaf),
               sc(pki.expiring_leaf), sc(pki.self_signed), sc(pki.orphan_leaf)]
    return summarise_certificates(targets, targets + pool, now=pki.now, expiry_warning_days=30)


def test_summary_flags(pki, summary) -> None:
    def tp(*names):
        return [getattr(pki, n).thumbprint for n in names]

    assert summary["flags"] == {
        "expired": tp("expired_leaf"),
        "expiring_soon": tp("expiring_leaf"),
        "ldap_only": tp("ldap_leaf"),
        "no_endpoints": tp("self_signed"),
        "chain_incomplete": tp("orphan_leaf"),
    }
    assert set(summary["flags"]) == set(FLAG_NAMES)


def test_summary_certificate_entry(pki, summary) -> None:
    entry = summary["certificates"][0]
    assert entry["thumbprint"] == pki.leaf.thumbprint
    assert entry["has_private_key"] is True and entry["store"] == "My"
    assert entry["chain"] == [
        {"subject": "CN=lync.lab.test, O=Lab, C=US", "thumbprint": pki.leaf.thumbprint, "is_root": False,
         "store": "My", "not_after": entry["not_after"]},
        {"subject": "CN=Lab Issuing CA, O=Lab, C=US", "thumbprint": pki.issuing.thumbprint, "is_root": False,
         "store": "CA", "not_after": (pki.now + 1825 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")},
        {"subject": "CN=Lab Root CA, O=Lab, C=US", "thumbprint": pki.root.thumbprint, "is_root": True,
         "store": "Root", "not_after": (pki.now + 3650 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")},
    ]
    # Endpoints of every non-root element: the leaf's and the issuing CA's, not the root's.
    assert entry["endpoints"] == [
        {"thumbprint": pki.leaf.thumbprint, "subject": "CN=lync.lab.test, O=Lab, C=US",
         "crl": [pf.HTTP_CRL, pf.LDAP_CRL], "delta_crl": [pf.HTTP_DELTA], "ocsp": [pf.OCSP],
         "ca_issuers": [pf.ISSUING_AIA]},
        {"thumbprint": pki.issuing.thumbprint, "subject": "CN=Lab Issuing CA, O=Lab, C=US",
         "crl": [pf.ROOT_CRL], "delta_crl": [], "ocsp": [], "ca_issuers": [pf.ROOT_AIA]},
    ]
    assert entry["days_remaining"] == 365
    assert entry["chain_complete"] is True and entry["chain_problem"] is None
    assert entry["flags"] == {"expired": False, "expiring_soon": False, "ldap_only": False, "no_endpoints": False,
                              "chain_incomplete": False}


def test_summary_endpoints_deduplicated(pki, summary) -> None:
    by_key = {(e["kind"], e["url"]): e for e in summary["endpoints"]}
    assert len(by_key) == len(summary["endpoints"])
    http_crl = by_key[("crl", pf.HTTP_CRL)]
    assert http_crl["scheme"] == "http"
    assert http_crl["certificates"] == [pki.leaf.thumbprint, pki.expired_leaf.thumbprint,
                                        pki.expiring_leaf.thumbprint]
    assert http_crl["carried_by"] == http_crl["certificates"]
    root_crl = by_key[("crl", pf.ROOT_CRL)]
    # Every certificate issued under the issuing CA needs the root's CRL for the CA certificate.
    assert root_crl["certificates"] == [getattr(pki, n).thumbprint for n in
                                        ("leaf", "ldap_leaf", "bare_leaf", "expired_leaf", "expiring_leaf")]
    assert root_crl["carried_by"] == [pki.issuing.thumbprint]
    assert by_key[("crl", pf.LDAP_CRL)]["scheme"] == "ldap"
    assert [k for k in by_key if k[1] == pf.ORPHAN_CRL] == [("crl", pf.ORPHAN_CRL)]
    assert [e["kind"] for e in summary["endpoints"][:5]] == ["crl", "crl", "delta_crl", "ocsp", "ca_issuers"]


@pytest.mark.parametrize(("days", "expiring"), [(0, []), (9, []), (10, ["expiring_leaf"]), (400, ["leaf", "ldap_leaf",
                         "bare_leaf", "expiring_leaf", "orphan_leaf"])])
def test_expiry_threshold(pki, pool, days, expiring) -> None:
    names = ["leaf", "ldap_leaf", "bare_leaf", "expired_leaf", "expiring_leaf", "orphan_leaf"]
    targets = [sc(getattr(pki, n)) for n in names]
    got = summarise_certificates(targets, pool, now=pki.now, expiry_warning_days=days)
    assert got["flags"]["expiring_soon"] == [getattr(pki, n).thumbprint for n in expiring]
    assert got["flags"]["expired"] == [pki.expired_leaf.thumbprint]


def test_empty_summary() -> None:
    now = datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)
    assert summarise_certificates([], [], now=now, expiry_warning_days=30) == {
        "certificates": [], "endpoints": [], "flags": {name: [] for name in FLAG_NAMES}}
