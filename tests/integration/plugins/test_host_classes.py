"""Host classes on the lab (tests/twin/README.md, "Host classes"): the floor at first contact, TLS per class, and
mutual TLS (the peer's 5061 listener checks the prober's certificate with its own state: docs/fix-crl.md), and whose
state a peer's unknown revocation is (its certificate's CRL locations, read from the certificate the probe received).

The audit runs as the fix_crl action runs it (``run_host_audit`` over Ansible's winrm connection, one command) against
twins whose state is given a class: a stock 2008 R2 (below the floor), a ``tls10_peer`` (tests/lab/fleet/
tls_scenarios.py: a Lync 2010 front end, TLS 1.0 only) and a 2022 that disabled TLS 1.0.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import HostBelowFloor
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._findings import protocol_findings
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import Criteria, Measurement, judge_phase
from tests.lab.fleet.tls_scenarios import seed_tls10_peer
from tests.lab.pki import ISSUING_LDAP_CRL_URL, OCSP_URL

from ._adhoc import ldap_only_hosts, set_proxy
from ._audit_run import audit_request as _request
from ._audit_run import run_audit as _audit

MAX_HANDSHAKE_MS = 3000  # _request's; the lab's chain timeout is 4000 ms (tests/lab/fleet/plan.py)


def _restart(lab, name: str) -> None:
    """The 5061 listener takes the host's class when the twin starts."""
    lab.stop_twin(name)
    lab.start_twin(name)


@pytest.fixture
def proxied_pair(lab, pair):
    """conftest's pair, the prober given the lab's proxy; the peer's state is put back after (tests change it)."""
    prober, peer = pair
    set_proxy(lab, prober, lab.proxy)
    yield prober, peer
    lab.reset_state(peer)


@pytest.fixture
def tls10_pair(lab, proxied_pair):
    prober, peer = proxied_pair
    lab.write_state(peer, seed_tls10_peer(lab.state(peer)))
    _restart(lab, peer)
    yield prober, peer
    lab.reset_state(peer)
    _restart(lab, peer)


def test_a_host_below_the_floor_fails_in_its_one_command_naming_what_is_missing(lab, proxied_pair) -> None:
    prober, peer = proxied_pair
    state = lab.state(prober)
    state["os"] = {**state["os"], "build": 7601}  # Windows Server 2008 R2 SP1 as it ships: PowerShell 2.0, no .NET 4
    lab.write_state(prober, state)
    before = lab.metrics()["hosts"][prober]["shell_commands"]
    with pytest.raises(HostBelowFloor) as caught:
        _audit(lab, prober, _request(lab, peer))
    assert lab.metrics()["hosts"][prober]["shell_commands"] - before == 1
    assert "Windows PowerShell 5.1 (found 2.0" in str(caught.value)
    assert ".NET Framework 4.5 (Release 378389; found none)" in str(caught.value)
    assert caught.value.floor.os_build == 7601


def test_a_host_on_the_floor_reports_its_facts(lab, proxied_pair) -> None:
    prober, peer = proxied_pair
    result, commands = _audit(lab, prober, _request(lab, None))
    assert commands == 1
    assert result.floor is not None and result.floor.ok and result.floor.powershell == "5.1"
    assert result.floor.os_build == lab.hosts[prober].os_build


def test_handshakes_with_a_tls10_peer_are_measured_and_report_tls10(lab, tls10_pair) -> None:
    prober, peer = tls10_pair
    result, commands = _audit(lab, prober, _request(lab, peer))
    assert commands == 1
    assert result.tls["offered_protocols"] == "Tls, Tls11, Tls12"
    probe = result.tls["results"][0]
    assert probe["protocol"] == "Tls" and probe["protocol_mismatch"] is False
    assert probe["verdict"] == "pass", probe
    # The tls10 peer itself (WMF 5.1 installed) is on the floor and can be audited.
    audit, _commands = _audit(lab, peer, _request(lab, None))
    assert audit.floor.os_build == 7601 and audit.floor.ok


def test_a_host_that_disabled_tls10_says_the_peer_speaks_only_what_it_disabled(lab, tls10_pair) -> None:
    prober, peer = tls10_pair
    state = lab.state(prober)
    state["os"] = {**state["os"], "overrides": {"tls_protocols": ["Tls12", "Tls13"]}}
    lab.write_state(prober, state)
    result, _commands = _audit(lab, prober, _request(lab, peer))
    probe = result.tls["results"][0]
    assert probe["protocol_mismatch"] is True and probe["protocol"] is None, (probe["errors"], probe["protocol"])
    assert probe["verdict"] == "error"
    phase = judge_phase(Measurement(tls=result.tls), Criteria("usable", 3000))
    assert "no TLS protocol in common: the peer speaks only protocols this host has disabled" in phase.summary
    assert [f.code for f in protocol_findings(result.tls)] == ["protocol_mismatch"]


def _mutual(request):
    return dataclasses.replace(request, mutual=True)


def test_mutual_tls_presents_the_host_certificate_and_a_fixed_peer_passes(lab, proxied_pair) -> None:
    prober, peer = proxied_pair
    set_proxy(lab, peer, lab.proxy)
    result, commands = _audit(lab, prober, _mutual(_request(lab, peer)))
    assert commands == 1
    probe = result.tls["results"][0]
    assert probe["mutual"] is True and probe["verdict"] == "pass", probe
    assert probe["one_sided_ms"] is not None and probe["slow_because"] is None


def test_a_handshake_slow_because_the_peer_cannot_check_our_certificate_is_the_peers(lab, proxied_pair) -> None:
    prober, peer = proxied_pair
    state = set_proxy(lab, peer, None)  # the peer is not fixed: its check of our certificate waits its chain timeout
    state.setdefault("event_logs", {}).setdefault("Lync Server", [])  # the peer is a Lync front end
    lab.write_state(peer, state)
    result, _commands = _audit(lab, prober, _mutual(_request(lab, peer)))
    # The peer's own side outlasted Lync's limit: it logs LS IM MCU 33019, the incident's symptom.
    logged = [e for e in lab.state(peer)["event_logs"]["Lync Server"] if e["id"] == 33019]
    assert logged and "TLS Negotiation took too long to complete" in logged[-1]["message"], logged
    probe = result.tls["results"][0]
    assert probe["mutual"] is True and probe["verdict"] == "slow", probe
    assert probe["max_ms"] > MAX_HANDSHAKE_MS and probe["one_sided_ms"] <= MAX_HANDSHAKE_MS
    assert probe["slow_because"] == "peer"
    phase = judge_phase(Measurement(tls=result.tls), Criteria("usable", MAX_HANDSHAKE_MS))
    assert phase.tls_ok is True and "not counted: the peer cannot check it" in phase.summary
    # One-sided (mutual_tls off): the same peer passes, so nothing here measured the peer's work.
    one_sided, _commands = _audit(lab, prober, _request(lab, peer))
    assert one_sided.tls["results"][0]["verdict"] == "pass" and one_sided.tls["results"][0]["mutual"] is False


def test_a_correct_host_probing_a_peer_whose_certificate_names_only_ldap_crls_says_it_is_the_certificates(
        lab, proxied_pair) -> None:
    # The measured case: a host whose proxy is right probes a peer whose leaf names only the AD CS ldap:/// CDP, which
    # nothing outside its domain can fetch; the chain comes back revocation-unknown however right this host is.
    prober, http_peer = proxied_pair
    peer = ldap_only_hosts(lab)[0]
    for fixed in (peer, http_peer):  # both peers fixed: their own checks of our certificate are not in the way
        set_proxy(lab, fixed, lab.proxy)
    try:
        result, commands = _audit(lab, prober, _mutual(_request(lab, peer)))
        healthy, _commands = _audit(lab, prober, _mutual(_request(lab, http_peer)))
    finally:
        lab.reset_state(peer)
    assert commands == 1
    probe = result.tls["results"][0]
    assert probe["verdict"] == "revocation_unknown", probe
    assert probe["unknown_because"] == "peer_certificate"
    # The certificate the handshake received, as the peer's listener serves it: its own leaf (My), read independently.
    served = base64.b64decode(lab.state(peer)["cert_stores"]["My"][0]["der_b64"])
    assert probe["peer_certificate"] == {
        "subject": f"CN={peer}", "thumbprint": hashlib.sha1(served, usedforsecurity=False).hexdigest().upper(),
        "crl_urls": [ISSUING_LDAP_CRL_URL], "ocsp_urls": [OCSP_URL], "http_crl": False, "error": None}
    assert "peer_certificate_b64" not in probe  # the DER does not stay in the record
    # The same host and a peer whose certificate has an http CRL: it passes, and the host sent no certificate.
    other = healthy.tls["results"][0]
    assert other["verdict"] == "pass", other
    assert (other["peer_certificate"], other["unknown_because"]) == (None, None)
