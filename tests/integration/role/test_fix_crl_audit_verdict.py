"""A scheduled audit of a healthy pool stays green: the whole lab audited at once fails no host it did not seed broken.

The audit runs as an admin runs it (``--check``, the lab inventory's own variables and the role's defaults: the audit's
2000 ms time box, three samples, mutual TLS with each Lync host's own service), over every host of the lab at once, so
each twin's slow hosts (no proxy: every CRL URL waits out its timeout) are measured beside the healthy ones. Every
host the lab seeded ``correct`` must be ``compliant``; every other starting state needs only the proxy, so it is
``would_change``; nothing is ``failed`` and the playbook exits 0. Three audits in a row, because a verdict made on a
loaded moment would differ from one run to the next. No time is asserted.
"""

from __future__ import annotations

import pytest

from ._runs import configuration, run_fix_crl

pytestmark = pytest.mark.lab


def test_whole_lab_audits_call_every_correct_host_compliant_and_fail_none(fleet, tmp_path) -> None:
    before = {name: configuration(fleet.state(name)) for name in fleet.hosts}
    expected = {name: "compliant" if host.scenario == "correct" else "would_change"
                for name, host in fleet.hosts.items()}
    assert "compliant" in expected.values() and "would_change" in expected.values(), expected
    for attempt in range(3):
        run = run_fix_crl(fleet, tmp_path / f"audit{attempt}", "--check")
        reasons = {h["host"]: (h["status"], h["reason"], [f["code"] for f in h["findings"]])
                   for h in run.report["hosts"]}
        assert run.status() == expected, reasons
        assert not [f for h in run.report["hosts"] for f in h["findings"] if f["code"] == "service_stale"], reasons
        assert run.rc == 0, run.stdout[-3000:] + run.stderr
    # The audit changed nothing on any host.
    assert {name: configuration(fleet.state(name)) for name in fleet.hosts} == before
