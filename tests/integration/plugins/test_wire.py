"""What goes on the wire, end to end: Ansible's winrm connection carries the bootstrap and the deflated script to a
twin, which runs them as Windows would (tests/twin/bootstrap.py); a Constrained Language host answers with its floor."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import HostBelowFloor

from ._audit_run import audit_request as _request
from ._audit_run import run_audit as _audit


@pytest.fixture
def constrained(lab, pair):
    """conftest's prober under an application control policy: its PowerShell runs in Constrained Language mode."""
    prober, _peer = pair
    state = lab.state(prober)
    state["os"] = {**state["os"], "overrides": {**state["os"].get("overrides", {}),
                                                "language_mode": "ConstrainedLanguage"}}
    lab.write_state(prober, state)
    yield prober
    lab.reset_state(prober)


def test_a_constrained_language_host_fails_its_audit_naming_the_language_mode_in_one_command(lab, constrained) -> None:
    before = lab.metrics()["hosts"][constrained]
    with pytest.raises(HostBelowFloor) as caught:
        _audit(lab, constrained, _request(lab, None))
    after = lab.metrics()["hosts"][constrained]
    assert after["shell_commands"] - before["shell_commands"] == 1
    assert "FullLanguage (found ConstrainedLanguage" in str(caught.value)
    assert "Windows PowerShell 5.1" not in str(caught.value)  # only the language mode is missing
    # The floor answered from the command line: the document is the floor alone.
    assert after["doc_floor"] > before["doc_floor"] and after["doc_winhttp"] == before["doc_winhttp"]


def test_an_audit_sends_the_host_a_deflated_script(lab, pair) -> None:
    prober, peer = pair
    before = lab.metrics()["hosts"][prober]
    result, commands = _audit(lab, prober, _request(lab, peer))
    after = lab.metrics()["hosts"][prober]
    assert commands == 1 and result.floor is not None and result.floor.ok
    # The readable host_audit is over 100 KB; deflated, with its bootstrap and WinRM's own requests, far less.
    assert after["bytes_in"] - before["bytes_in"] < 64 * 1024
    assert after["doc_certificates"] > before["doc_certificates"] and after["doc_tls"] > before["doc_tls"]
