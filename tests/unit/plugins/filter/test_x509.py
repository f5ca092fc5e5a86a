"""The x509_revocation_endpoints and crl_info filters (plugins/filter/x509.py), alone and through Jinja."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from ansible.errors import AnsibleFilterError
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.crlfix.windows.plugins.filter import x509 as x509_filter
from ansible_collections.crlfix.windows.plugins.filter.x509 import FilterModule, crl_info, x509_revocation_endpoints
from tests.unit.plugins import pki_factory as pf
from tests.unit.plugins.fixtures.ansible_cli import render_with_ansible

LEAF_ENDPOINTS = {"crl": [pf.HTTP_CRL, pf.LDAP_CRL], "delta_crl": [pf.HTTP_DELTA], "ocsp": [pf.OCSP],
                  "ca_issuers": [pf.ISSUING_AIA]}
EMPTY = {"crl": [], "delta_crl": [], "ocsp": [], "ca_issuers": []}


def test_filters_are_registered() -> None:
    assert FilterModule().filters() == {"x509_revocation_endpoints": x509_revocation_endpoints, "crl_info": crl_info}


@pytest.mark.parametrize("form", ["pem", "der_b64", "der"])
def test_one_certificate(pki, form) -> None:
    assert x509_revocation_endpoints(getattr(pki.leaf, form)) == LEAF_ENDPOINTS


def test_a_list_gives_a_list_in_order(pki) -> None:
    got = x509_revocation_endpoints([pki.leaf.pem, pki.root.der_b64, pki.ldap_leaf.pem])
    assert got == [LEAF_ENDPOINTS, EMPTY, {"crl": [pf.LDAP_CRL], "delta_crl": [], "ocsp": [],
                                           "ca_issuers": [pf.LDAP_AIA]}]


def test_bad_item_in_a_list_names_its_index(pki) -> None:
    with pytest.raises(AnsibleFilterError, match=r"x509_revocation_endpoints input\[1\]: neither PEM nor base64"):
        x509_revocation_endpoints([pki.leaf.pem, "nope!"])


def test_missing_cryptography_is_a_filter_error(pki, monkeypatch) -> None:
    from ansible_collections.crlfix.windows.plugins.module_utils import _cryptography_dep

    monkeypatch.setattr(_cryptography_dep, "HAS_CRYPTOGRAPHY", False)
    with pytest.raises(AnsibleFilterError, match="cryptography"):
        x509_revocation_endpoints(pki.leaf.pem)


@pytest.mark.parametrize(
    ("now", "stale"),
    [
        (None, False),  # the current time: the base CRL is valid for another week
        ("+8", True),
        ("+6", False),
    ],
)
def test_crl_info_now(pki, now, stale) -> None:
    pem = pki.base_crl.public_bytes(Encoding.PEM).decode()
    when = None
    if now is not None:
        when = (pki.now + datetime.timedelta(days=int(now))).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = crl_info(pem, now=when)
    assert got["stale"] is stale
    assert (got["crl_number"], got["is_delta"], got["revoked_count"]) == (7, False, 2)
    if when:
        assert got["checked_at"] == when


@pytest.mark.parametrize(
    "now",
    ["2026-11-26T04:00:00Z", "2026-11-26T04:00:00+00:00", "2026-11-26T05:00:00+01:00", "2026-11-26T04:00:00",
     datetime.datetime(2026, 11, 26, 4, 0, tzinfo=datetime.UTC)],
)
def test_crl_info_now_forms(pki, now) -> None:
    der_b64 = base64.b64encode(pki.base_crl.public_bytes(Encoding.DER)).decode()
    assert crl_info(der_b64, now=now)["checked_at"] == "2026-11-26T04:00:00Z"


@pytest.mark.parametrize("now", ["yesterday", 12, "2026-13-01"])
def test_crl_info_bad_now(pki, now) -> None:
    with pytest.raises(AnsibleFilterError, match="crl_info: now must be an ISO 8601 time"):
        crl_info(pki.base_crl.public_bytes(Encoding.PEM), now=now)


def test_crl_info_bad_input() -> None:
    with pytest.raises(AnsibleFilterError, match="crl_info input: not a valid X.509 CRL"):
        crl_info(base64.b64encode(b"\x30\x00").decode())


def test_through_ansible_by_fqcn(pki, tmp_path) -> None:
    # The filters as a playbook sees them: found by FQCN through the collection loader (fixtures/ansible_cli.py).
    crl_b64 = base64.b64encode(pki.delta_crl.public_bytes(Encoding.DER)).decode()
    (tmp_path / "vars.json").write_text(json.dumps({"cert": pki.leaf.pem, "crl": crl_b64}))
    expr = ("{{ {'ep': cert | crlfix.windows.x509_revocation_endpoints, "
            "'crl': crl | crlfix.windows.crl_info(now='2000-01-01T00:00:00Z')} | to_json }}")
    got = render_with_ansible(expr, tmp_path, f"@{tmp_path / 'vars.json'}")
    assert got["ep"] == LEAF_ENDPOINTS
    assert (got["crl"]["is_delta"], got["crl"]["base_crl_number"], got["crl"]["stale"]) == (True, 7, False)


def test_module_is_importable_by_name() -> None:
    assert x509_filter.FilterModule is FilterModule
