"""The peer's certificate a probe kept, read on the controller, and whose state a revocation_unknown peer is.

The host sends ``peer_certificate_b64`` (``GetRawCertData()`` of the peer's end-entity certificate, base64) only when a
sample's chain came back revocation-unknown or revoked (docs/dev/host-scripts.md, tls_probe). The certificates are the
session's generated lab PKI (tests/unit/plugins/pki_factory.py): an AD CS-like leaf with an http and an ldap CRL
location and an OCSP responder, and one whose only CRL location is the AD CS default ``ldap:///`` URL.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import MissingCryptographyError
from ansible_collections.crlfix.windows.plugins.plugin_utils import _tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import PS1_DIR, build_host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import interpret_document, parse_peer
from tests import pslint
from tests.unit.plugins import pki_factory as pf

PEER = parse_peer("adfs10.lab.test:443", field="peers[0]")
UNKNOWN = ["RevocationStatusUnknown", "OfflineRevocation"]


def sample(chain_status: list[str], ms: int = 40) -> dict[str, t.Any]:
    return {"tcp_connect_ms": 1, "handshake_ms": ms, "protocol": "Tls12", "mutual": False,
            "chain_status": chain_status, "policy_errors": "RemoteCertificateChainErrors" if chain_status else "None",
            "error": None, "handshake": "full"}


def peer_result(certificate_b64: t.Any, chain_status: list[str] | None = None) -> dict[str, t.Any]:
    host = {"host": PEER.host, "port": PEER.port, "sni": PEER.sni, "one_sided": None,
            "samples": [sample(UNKNOWN if chain_status is None else chain_status)]}
    if certificate_b64 is not ...:
        host["peer_certificate_b64"] = certificate_b64
    return interpret_document([PEER], {"results": [host]}, max_handshake_ms=1000)["results"][0]


def test_a_peer_whose_certificate_names_only_ldap_crls_is_the_peer_certificates(pki) -> None:
    result = peer_result(pki.ldap_leaf.der_b64)
    assert result["verdict"] == "revocation_unknown"
    assert result["unknown_because"] == "peer_certificate"
    assert result["peer_certificate"] == {
        "subject": "CN=legacy.lab.test, O=Lab, C=US", "thumbprint": pki.ldap_leaf.thumbprint,
        "crl_urls": [pf.LDAP_CRL], "ocsp_urls": [], "http_crl": False, "error": None}


def test_a_peer_whose_certificate_names_an_http_crl_is_this_hosts(pki) -> None:
    # An http location beside the ldap one: a host with a working proxy fetches it, so the unknown is this host's.
    result = peer_result(pki.leaf.der_b64)
    assert result["unknown_because"] == "this_host"
    certificate = result["peer_certificate"]
    assert (certificate["crl_urls"], certificate["ocsp_urls"], certificate["http_crl"]) == (
        [pf.HTTP_CRL, pf.LDAP_CRL], [pf.OCSP], True)
    assert certificate["thumbprint"] == pki.leaf.thumbprint


@pytest.mark.parametrize(("crl", "ocsp", "expected"), [
    ((), (), "peer_certificate"),  # no CRL location at all: no host can check it
    ((pf.LDAP_CRL,), (pf.OCSP,), "peer_certificate"),  # an OCSP responder does not count: the CRL locations decide
    (("https://pki.lab.test/crl/Lab-Issuing-CA.crl",), (), "this_host"),
    (("HTTP://PKI.LAB.TEST/crl/Lab-Issuing-CA.crl", pf.LDAP_CRL), (), "this_host"),
])
def test_only_an_http_or_https_crl_location_makes_it_this_hosts(pki, crl, ocsp, expected) -> None:
    issued = pf.make_certificate("adfs10.lab.test", now=pki.now, issuer=pki.issuing, crl=crl, ocsp=ocsp)
    result = peer_result(issued.der_b64)
    assert result["unknown_because"] == expected
    assert result["peer_certificate"]["crl_urls"] == list(crl)
    assert result["peer_certificate"]["ocsp_urls"] == list(ocsp)


def test_without_a_certificate_nothing_shows_it_is_the_peers() -> None:
    # A script before peer_certificate_b64, or a sample cut before its validation: this host's, as before.
    for sent in (..., None):
        result = peer_result(sent)
        assert (result["peer_certificate"], result["unknown_because"]) == (None, "this_host")


def test_another_verdict_is_nobodys_unknown(pki) -> None:
    passed = peer_result(None, chain_status=[])
    assert (passed["verdict"], passed["peer_certificate"], passed["unknown_because"]) == ("pass", None, None)
    # A revoked peer: the host keeps its certificate too, but a service refuses the handshake (error), not unknown.
    revoked = peer_result(pki.ldap_leaf.der_b64, chain_status=["Revoked"])
    assert revoked["verdict"] == "error" and revoked["unknown_because"] is None
    assert revoked["peer_certificate"]["thumbprint"] == pki.ldap_leaf.thumbprint


@pytest.mark.parametrize(("sent", "why"), [
    ("not base64 at all!", "neither PEM nor base64 DER"),
    (base64.b64encode(b"\x30\x03\x02\x01\x05").decode(), "not a valid X.509 certificate"),
    ("", "empty value"),
    (12345, "expected PEM text, base64 DER or bytes, got int"),
])
def test_a_certificate_that_cannot_be_read_is_said_with_its_field_never_raised(sent, why) -> None:
    result = peer_result(sent)
    certificate = result["peer_certificate"]
    assert certificate["error"].startswith("adfs10.lab.test:443: peer_certificate_b64: ")
    assert why in certificate["error"]
    assert (certificate["subject"], certificate["thumbprint"], certificate["crl_urls"], certificate["http_crl"]) == (
        None, None, [], None)
    assert result["unknown_because"] == "this_host"  # unreadable: nothing shows it is the peer's
    assert result["verdict"] == "revocation_unknown"  # the measurement stands


def test_a_controller_without_cryptography_says_so_in_the_peer(monkeypatch, pki) -> None:
    def missing(*_args: t.Any, **_kwargs: t.Any) -> t.NoReturn:
        raise MissingCryptographyError("Failed to import the required Python library (cryptography)")
    monkeypatch.setattr(_tls_probe, "revocation_summary", missing)
    result = peer_result(pki.ldap_leaf.der_b64)
    assert result["peer_certificate"]["error"].startswith("Failed to import the required Python library")
    assert result["unknown_because"] == "this_host"


def test_the_der_does_not_stay_in_the_result(pki) -> None:
    result = peer_result(pki.ldap_leaf.der_b64)
    assert "peer_certificate_b64" not in result
    assert pki.ldap_leaf.der_b64[:40] not in json.dumps(result)


def test_an_expired_certificate_is_still_read(pki) -> None:
    # Validity is the chain's business (chain_status); the CRL locations are read whatever the dates.
    expired = pf.make_certificate("old.lab.test", now=pki.now, issuer=pki.issuing, crl=[pf.LDAP_CRL],
                                  not_before=pki.now - datetime.timedelta(days=900),
                                  not_after=pki.now - datetime.timedelta(days=1))
    assert peer_result(expired.der_b64)["unknown_because"] == "peer_certificate"


def test_the_validation_callback_keeps_the_certificate_only_with_a_revocation_flag_once_per_peer() -> None:
    # RemoteCertificateValidationCallback's certificate is the peer's end-entity certificate; GetRawCertData its DER
    # (Microsoft Learn). The callback is the one place that sees both it and the chain's flags.
    tree = pslint.parse((PS1_DIR / "_tls.ps1").read_text(encoding="utf-8")).root_node
    code = pslint.code(tree)
    callback = code[code.index("[System.Net.Security.RemoteCertificateValidationCallback]{"):]
    callback = callback[:callback.index("$true")]
    for flag in ("RevocationStatusUnknown", "OfflineRevocation", "Revoked"):
        assert f"$sample.chain_status -contains '{flag}'" in callback
    assert re.search(r"if \(\$revocationFlagged -and \$null -ne \$certificate -and "
                     r"\$null -eq \$Live\.peer_certificate_b64\) \{\s*"
                     r"\$Live\.peer_certificate_b64 = \[Convert\]::ToBase64String\(\$certificate\.GetRawCertData\(\)\)",
                     callback)
    # Each peer's result carries what its samples' validation kept (null: nothing kept).
    complete = pslint.code(pslint.functions(tree)["Complete-CrlfixProbes"])
    assert "peer_certificate_b64 = $probe.Live.peer_certificate_b64" in complete
    assert "peer_certificate_b64 = $null" in pslint.code(pslint.functions(tree)["Start-CrlfixProbes"])


@pytest.mark.parametrize("name", ["tls_probe", "host_audit", "service_restart"])
def test_every_script_that_probes_carries_the_kept_certificate(name: str) -> None:
    # host_audit carries the probe engine only with its tls part (FRAGMENT_NEEDS).
    script = build_host_script(name, {"tls": {"peers": [PEER.as_host_args()]}} if name == "host_audit" else {})
    assert "$certificate.GetRawCertData()" in script.minified
    assert "peer_certificate_b64 = $probe.Live.peer_certificate_b64" in script.minified
