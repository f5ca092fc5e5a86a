"""The probe keeps the peer's certificate its handshake received, only when the chain's revocation was not known.

``_ps1/_tls.ps1``'s validation callback keeps ``GetRawCertData()`` of the peer's end-entity certificate once per peer
when the chain status carries RevocationStatusUnknown, OfflineRevocation or Revoked (docs/dev/host-scripts.md,
tls_probe); the twin keeps the leaf its TLS client received (``tests.lab.schannel``), never a lab file read by name.
Real twins (5061 listeners on loopback, ``running_twins``); the CRL server cannot be reached, so every revocation
check fails fast, offline.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.twin.scripts import ScriptContext, tls_probe
from tests.unit.twin.running_twins import free_port, running_twins

# ``ldaponly`` in the first label: the lab PKI gives that host a leaf whose only CDP is the AD CS ldap:/// URL.
PROBER, HTTP_PEER, LDAP_PEER = "web01.lab.test", "web02.lab.test", "ldaponly03.lab.test"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict]:
    with running_twins(tmp_path, [PROBER, HTTP_PEER, LDAP_PEER]) as twins:
        yield {**twins, "dir": tmp_path}


def probe(lab: dict, *peers: str, samples: int = 2, check_revocation: bool = True) -> dict:
    args = {"peers": [{"host": "127.0.0.1", "port": lab["twins"][name].spec.tls_port, "sni": name} for name in peers],
            "samples": samples, "timeout_ms": 20000, "check_revocation": check_revocation}
    return tls_probe.probe_all(ScriptContext(lab["twins"][PROBER].state), args)


def leaf_der(lab: dict, name: str) -> bytes:
    return base64.b64decode(lab["stores"][name]["My"][0]["der_b64"])


def test_an_unknown_revocation_keeps_the_certificate_the_handshake_received(lab) -> None:
    # The files of the listeners change after they started: what the twin reports is what came over the wire.
    served = {name: leaf_der(lab, name) for name in (HTTP_PEER, LDAP_PEER)}
    hosts = lab["dir"] / "pki" / "hosts"
    shutil.copy(hosts / f"{PROBER}.crt", hosts / f"{HTTP_PEER}.crt")
    shutil.copy(hosts / f"{PROBER}.crt", hosts / f"{LDAP_PEER}.crt")
    document = probe(lab, HTTP_PEER, LDAP_PEER)
    for result, name in zip(document["results"], (HTTP_PEER, LDAP_PEER), strict=True):
        assert all("OfflineRevocation" in sample["chain_status"] for sample in result["samples"])
        kept = base64.b64decode(result["peer_certificate_b64"])
        assert kept == served[name]
        assert x509.load_der_x509_certificate(kept).subject.rfc4514_string() == f"CN={name}"


def test_a_chain_without_revocation_flags_keeps_nothing(lab) -> None:
    # checkCertificateRevocation false: no revocation flag can be set, so the healthy handshake costs no bytes.
    [result] = probe(lab, LDAP_PEER, check_revocation=False)["results"]
    assert [sample["chain_status"] for sample in result["samples"]] == [[], []]
    assert result["samples"][0]["error"] is None
    assert result["peer_certificate_b64"] is None


def test_a_peer_that_never_handshakes_has_no_certificate(lab) -> None:
    closed = free_port()
    document = tls_probe.probe_all(ScriptContext(lab["twins"][PROBER].state), {
        "peers": [{"host": "127.0.0.1", "port": closed, "sni": HTTP_PEER}], "samples": 1, "timeout_ms": 2000,
        "check_revocation": True})
    [result] = document["results"]
    assert result["samples"][0]["error"].startswith("No connection could be made")
    assert result["peer_certificate_b64"] is None


def test_the_lab_gives_an_ldaponly_host_a_certificate_with_ldap_crls_only(lab) -> None:
    # What the controller's rule reads (unknown_because): the profile the lab PKI gives such a name.
    for name, schemes in ((HTTP_PEER, {"http"}), (LDAP_PEER, {"ldap"})):
        cert = x509.load_der_x509_certificate(leaf_der(lab, name))
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert {uri.value.split(":", 1)[0] for point in points for uri in point.full_name} == schemes
