"""The twin's time box (tests/twin/scripts/host_audit.py TimeBox, tls_probe.cut_samples) against the controller's.

The twin gives a cut CRL request or TLS sample the controller's exact text, and abandons a peer as the script's
Complete-CrlfixCut does (docs/dev/host-scripts.md, host_audit).
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import time_box_error
from tests.twin.scripts.host_audit import TimeBox
from tests.twin.scripts.tls_probe import SKIPPED, cut_samples
from tests.unit.plugins.fixtures.audit_host import GOOD_SAMPLE, UNKNOWN_SAMPLE

BOX = 1000
CUT = time_box_error(BOX)
# A sample the box cut off, as _ps1/_tls.ps1 builds it: no timings, the box's text.
CUT_SAMPLE = {"tcp_connect_ms": None, "handshake_ms": None, "protocol": None, "mutual": False, "chain_status": [],
              "policy_errors": None, "error": CUT, "handshake": None, "certificate_requested": None,
              "certificate_sent": None}


def test_the_twin_gives_the_controllers_text() -> None:
    assert TimeBox(1234).text == time_box_error(1234)


# --- the twin's abandon of a peer, as Complete-CrlfixCut does it ----------------------------------------------------

@pytest.mark.parametrize(("done", "stop", "expected"), [
    ([], True, ["cut", "skipped", "skipped"]),
    ([GOOD_SAMPLE], True, ["good", "cut", "skipped"]),
    ([UNKNOWN_SAMPLE], True, ["unknown", "skipped", "skipped"]),
    ([UNKNOWN_SAMPLE], False, ["unknown", "cut", "skipped"]),
    ([GOOD_SAMPLE, CUT_SAMPLE], True, ["good", "cut", "skipped"]),
    ([GOOD_SAMPLE, GOOD_SAMPLE, GOOD_SAMPLE], True, ["good", "good", "good"]),
])
def test_an_abandoned_peer_keeps_its_finished_samples_and_one_cut(done, stop, expected) -> None:
    box = TimeBox(BOX)
    names = {id(GOOD_SAMPLE): "good", id(UNKNOWN_SAMPLE): "unknown"}

    def name(sample: dict[str, t.Any]) -> str:
        if sample == SKIPPED:
            return "skipped"
        return "cut" if sample == CUT_SAMPLE else names[id(sample)]

    assert [name(s) for s in cut_samples(done, 3, stop, box)] == expected
    assert box.hit is ("cut" in expected[len(done):])  # only a cut made here; the probe marks its own
