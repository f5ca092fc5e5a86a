"""The twin's mirror of _ps1/_der.ps1 (tests/twin/scripts/host_audit.py) against the controller's cryptography parser.

The controller is the authority on endpoints; the host's minimal DER walk only lets the fetch start in the same
command. These tests hold the walk to the parser on the lab PKI (tests/lab/pki.py) and on the unit PKI
(tests/unit/plugins/pki_factory.py: LDAP CDPs and AIA, delta CRLs, OCSP, bare and self-signed certificates).
"""

from __future__ import annotations

import base64
import datetime

import pytest
import tree_sitter
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import revocation_endpoints
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import (
    summarise_inventory,
    validate_options,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import PS1_DIR
from tests import pslint
from tests.lab import pki as lab_pki
from tests.twin.scripts import host_audit as mirror
from tests.unit.plugins import pki_factory as pf

NOW = datetime.datetime(2026, 11, 26, 4, 0, 0, tzinfo=datetime.UTC)
LAB_HOSTS = ["lync-fe01.lab.test", "sql-delta01.lab.test", "adfs-ldaponly01.lab.test"]
HTTP_SCHEMES = ("http", "https")


@pytest.fixture(scope="module")
def unit_pki() -> pf.LabPki:
    return pf.build_lab_pki(NOW)


@pytest.fixture(scope="module")
def lab_stores(tmp_path_factory) -> dict[str, dict[str, list[dict]]]:
    return lab_pki.issue_host_certificates(tmp_path_factory.mktemp("lab"), LAB_HOSTS)


def _unit_certificates(p: pf.LabPki) -> list[pf.Issued]:
    return [p.root, p.issuing, p.issuing_old, p.leaf, p.ldap_leaf, p.bare_leaf, p.expired_leaf, p.expiring_leaf,
            p.self_signed, p.orphan_ca, p.orphan_leaf]


def _by_extension(der: bytes) -> dict[str, list[str]]:
    """The mirror's URIs per extension, in the controller's kinds."""
    cert = mirror.HostCertificate.from_der(der)
    out: dict[str, list[str]] = {"crl": [], "delta_crl": [], "aia": []}
    for oid, value in cert.extensions:
        if oid == mirror.OID_CDP:
            out["crl"] += mirror.der_uris(value, 0, len(value))
        elif oid == mirror.OID_FRESHEST_CRL:
            out["delta_crl"] += mirror.der_uris(value, 0, len(value))
        elif oid == mirror.OID_AIA:
            out["aia"] += mirror.aia_uris(value)
    return out


def _assert_same_as_controller(der: bytes) -> None:
    expected = revocation_endpoints(der)
    got = _by_extension(der)
    assert got["crl"] == list(expected.crl)
    assert got["delta_crl"] == list(expected.delta_crl)
    # AIA keeps the certificate's order on the host; the controller groups OCSP before caIssuers.
    assert sorted(got["aia"]) == sorted([*expected.ocsp, *expected.ca_issuers])
    assert sorted(mirror.certificate_uris(mirror.HostCertificate.from_der(der))) == sorted(
        [*expected.crl, *expected.delta_crl, *expected.ocsp, *expected.ca_issuers])


def test_unit_pki_certificates_give_the_controllers_urls(unit_pki) -> None:
    certs = _unit_certificates(unit_pki)
    for issued in certs:
        _assert_same_as_controller(issued.der)
    # The comparison is not vacuous: the leaf carries every kind, LDAP included.
    assert _by_extension(unit_pki.leaf.der) == {"crl": [pf.HTTP_CRL, pf.LDAP_CRL], "delta_crl": [pf.HTTP_DELTA],
                                                "aia": [pf.OCSP, pf.ISSUING_AIA]}
    assert _by_extension(unit_pki.ldap_leaf.der)["aia"] == [pf.LDAP_AIA]


def test_lab_pki_certificates_give_the_controllers_urls(lab_stores) -> None:
    seen = 0
    for stores in lab_stores.values():
        for entries in stores.values():
            for entry in entries:
                _assert_same_as_controller(base64.b64decode(entry["der_b64"]))
                seen += 1
    # My, CA and Root each hold one; a Lync-style host's My also holds its machine certificate.
    assert seen == 3 * len(LAB_HOSTS) + sum(lab_pki.has_machine(name) for name in LAB_HOSTS)


def test_raw_names_mirror_what_windows_compares(unit_pki) -> None:
    leaf = mirror.HostCertificate.from_der(unit_pki.leaf.der)
    issuing = mirror.HostCertificate.from_der(unit_pki.issuing.der)
    root = mirror.HostCertificate.from_der(unit_pki.root.der)
    assert leaf.issuer == issuing.subject and issuing.issuer == root.subject
    assert root.issuer == root.subject and leaf.issuer != leaf.subject
    assert leaf.subject == unit_pki.leaf.cert.subject.public_bytes()
    assert leaf.thumbprint == unit_pki.leaf.thumbprint


def _controller_http_urls(stores: dict[str, list[dict]], store_names=("My",), chain=("CA", "Root")) -> set[str]:
    options = validate_options({"stores": list(store_names), "chain_stores": list(chain)})
    document = {"script": "cert_inventory", "schema": 1, "computer_name": "X", "stores": stores,
                "missing_stores": [], "winhttp": None}
    summary = summarise_inventory(document, options, now=NOW)
    return {e["url"] for e in summary["endpoints"] if e["scheme"] in HTTP_SCHEMES}


def _host_http_urls(stores: dict[str, list[dict]], store_names=("My",)) -> list[str]:
    targets, pool = mirror._store_certificates({"stores": stores}, list(store_names))
    return [u for u in mirror.chain_uris(targets, pool) if mirror.FETCHED.match(u)]


@pytest.mark.parametrize("host", LAB_HOSTS)
def test_the_chain_walk_fetches_exactly_the_controllers_http_endpoints_on_the_lab(lab_stores, host) -> None:
    fetched = _host_http_urls(lab_stores[host])
    assert len(fetched) == len(set(fetched)), "each URL is fetched once"
    assert set(fetched) == _controller_http_urls(lab_stores[host])
    assert lab_pki.ROOT_CRL_URL in fetched and lab_pki.OCSP_URL in fetched  # issuer walked, OCSP kept


def test_the_chain_walk_matches_the_controller_on_the_unit_pki(unit_pki) -> None:
    p = unit_pki
    stores = pf.inventory_document({
        "My": [p.leaf, p.ldap_leaf, p.bare_leaf, p.expired_leaf, p.self_signed, p.orphan_leaf],
        "CA": [p.issuing_old, p.issuing],
        "Root": [p.root],
    })["stores"]
    fetched = _host_http_urls(stores)
    assert set(fetched) == _controller_http_urls(stores)
    assert pf.ORPHAN_CRL in fetched and pf.ROOT_CRL in fetched and pf.LDAP_CRL not in fetched


def test_the_walk_stops_at_six_certificates(unit_pki) -> None:
    # A chain of 8 CAs under the root: the host walks 6 deep, the controller (10) goes further; the difference
    # is what run_host_audit then fetches with a second command.
    parent = unit_pki.root
    chain = []
    for depth in range(8):
        parent = pf.make_certificate(f"CA {depth}", now=NOW, issuer=parent, is_ca=True,
                                     crl=[f"http://pki.lab.test/ca{depth}.crl"])
        chain.append(parent)
    leaf = pf.make_certificate("deep.lab.test", now=NOW, issuer=parent, crl=["http://pki.lab.test/leaf.crl"])
    stores = pf.inventory_document({"My": [leaf], "CA": chain, "Root": [unit_pki.root]})["stores"]
    fetched = _host_http_urls(stores)
    assert fetched == ["http://pki.lab.test/leaf.crl"] + [f"http://pki.lab.test/ca{d}.crl" for d in (7, 6, 5, 4, 3)]
    assert _controller_http_urls(stores) - set(fetched) == {f"http://pki.lab.test/ca{d}.crl" for d in (2, 1, 0)}


def test_a_crl_issuer_uri_is_not_taken_for_a_distribution_point() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    cdp = x509.CRLDistributionPoints([x509.DistributionPoint(
        [x509.UniformResourceIdentifier("http://a.test/x.crl")], None, None,
        [x509.UniformResourceIdentifier("http://issuer.test/not-a-crl")])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ca")])).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(cdp, critical=False).sign(key, hashes.SHA256()))
    _assert_same_as_controller(cert.public_bytes(Encoding.DER))


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x85\x00\x00\x00\x00\x01", b"\x30\x05\x86\x10abc",
                                  b"\x30\x80\x86\x01a\x00\x00", bytes(range(256))])
def test_malformed_der_ends_the_walk_without_an_error(data: bytes) -> None:
    assert isinstance(mirror.der_uris(data, 0, len(data)), list)
    assert isinstance(mirror.aia_uris(data), list)


def _literals(function: tree_sitter.Node, kind: str) -> set[str]:
    """The literals of one kind a function's code holds (comments are no nodes of these kinds)."""
    return {pslint.text(node) for node in pslint.walk(function) if node.type == kind}


def test_the_powershell_walk_uses_the_same_constants_as_the_mirror() -> None:
    # Structural, not textual: the constants must stand as literals in the functions that use them (a comment
    # naming 0x86 does not count). The PowerShell cannot run here, so its tree is what can be checked.
    functions = pslint.functions(pslint.parse((PS1_DIR / "_der.ps1").read_bytes()).root_node)
    certificate = _literals(functions["Get-CrlfixCertificateUris"], "string_literal")
    assert {f"'{oid}'" for oid in (mirror.OID_CDP, mirror.OID_FRESHEST_CRL, mirror.OID_AIA)} <= certificate
    access = _literals(functions["Get-CrlfixAccessDescriptionUris"], "string_literal")
    assert {"'" + "-".join(f"{b:02X}" for b in method) + "'" for method in mirror.AIA_METHODS} <= access
    points = _literals(functions["Get-CrlfixDistributionPointUris"], "hexadecimal_integer_literal")
    assert {"0x86", "0x30", "0xA0"} <= {literal.upper().replace("0X", "0x") for literal in points}
    comparisons = {pslint.code(node) for node in pslint.walk(functions["Get-CrlfixChainUris"])
                   if node.type == "comparison_expression"}
    assert f"$depth -ge {mirror.MAX_CHAIN_DEPTH}" in comparisons
