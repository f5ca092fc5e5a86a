"""CRL facts, staleness and signature checks (module_utils/_crl_info.py)."""

from __future__ import annotations

import base64
import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.crlfix.windows.plugins.module_utils._crl_info import (
    CrlParseError,
    crl_info,
    verify_crl_signature,
)

DAY = datetime.timedelta(days=1)

CRL_FORMS = {
    "pem": lambda crl: crl.public_bytes(Encoding.PEM).decode(),
    "der_b64": lambda crl: base64.b64encode(crl.public_bytes(Encoding.DER)).decode(),
    "der_bytes": lambda crl: crl.public_bytes(Encoding.DER),
    "pem_bytes": lambda crl: crl.public_bytes(Encoding.PEM),
}


@pytest.mark.parametrize("form", sorted(CRL_FORMS))
def test_base_crl_in_every_form(pki, form) -> None:
    info = crl_info(CRL_FORMS[form](pki.base_crl))
    assert info.issuer == "CN=Lab Issuing CA, O=Lab, C=US"
    assert (info.crl_number, info.is_delta, info.base_crl_number, info.revoked_count) == (7, False, None, 2)
    assert info.this_update == pki.now - DAY
    assert info.next_update == pki.now + 7 * DAY
    ski = pki.issuing.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert info.aki == ski.digest.hex().upper()


def test_delta_crl(pki) -> None:
    info = crl_info(pki.delta_crl)
    assert (info.crl_number, info.is_delta, info.base_crl_number, info.revoked_count) == (8, True, 7, 1)


@pytest.mark.parametrize(
    ("crl_name", "offset_days", "stale"),
    [
        ("base_crl", 0, False),
        ("base_crl", 6, False),
        ("base_crl", 8, True),
        ("delta_crl", 2, True),
        ("stale_crl", 0, True),
        ("stale_crl", -4, False),
    ],
)
def test_stale_at_a_given_time(pki, crl_name, offset_days, stale) -> None:
    info = crl_info(getattr(pki, crl_name))
    now = pki.now + offset_days * DAY
    assert info.is_stale(now) is stale
    assert info.as_dict(now=now)["stale"] is stale


def test_exactly_at_next_update_is_not_stale(pki) -> None:
    info = crl_info(pki.base_crl)
    assert info.is_stale(info.next_update) is False
    assert info.is_stale(info.next_update + datetime.timedelta(seconds=1)) is True


def test_naive_now_is_utc(pki) -> None:
    info = crl_info(pki.stale_crl)
    assert info.is_stale((pki.now).replace(tzinfo=None)) is True


def test_no_next_update_never_stale(pki) -> None:
    # cryptography cannot sign a CRL without NextUpdate, so take the parsed facts and drop it.
    info = dataclasses.replace(crl_info(pki.base_crl), next_update=None)
    assert info.is_stale(pki.now + 10000 * DAY) is False
    assert info.as_dict(now=pki.now)["next_update"] is None


def test_as_dict_keys(pki) -> None:
    data = crl_info(pki.delta_crl).as_dict(now=pki.now)
    assert data == {
        "issuer": "CN=Lab Issuing CA, O=Lab, C=US",
        "this_update": (pki.now - DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "next_update": (pki.now + DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "crl_number": 8,
        "is_delta": True,
        "base_crl_number": 7,
        "revoked_count": 1,
        "aki": data["aki"],
        "stale": False,
        "checked_at": pki.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert len(data["aki"]) == 40


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty value"),
        ("%%%", "neither PEM nor base64 DER"),
        ("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "not a valid X.509 CRL"),
        (b"\x30\x00", "not a valid X.509 CRL"),
        ([1], "got list"),
    ],
)
def test_bad_crl_names_the_field(value, message) -> None:
    with pytest.raises(CrlParseError, match=message) as err:
        crl_info(value, field="crl_info input")
    assert str(err.value).startswith("crl_info input: ")


def test_a_certificate_is_not_a_crl(pki) -> None:
    with pytest.raises(CrlParseError, match="not a valid X.509 CRL"):
        crl_info(pki.leaf.der_b64)


@pytest.mark.parametrize(
    ("crl_name", "issuer_name", "ok", "reason"),
    [
        ("base_crl", "issuing", True, ""),
        ("delta_crl", "issuing", True, ""),
        ("forged_crl", "issuing", False, "signature does not verify"),
        ("base_crl", "root", False, "is not the certificate subject"),
    ],
)
def test_verify_crl_signature(pki, crl_name, issuer_name, ok, reason) -> None:
    got_ok, got_reason = verify_crl_signature(getattr(pki, crl_name), getattr(pki, issuer_name).pem)
    assert got_ok is ok
    assert reason in got_reason and (got_reason == "") is ok
