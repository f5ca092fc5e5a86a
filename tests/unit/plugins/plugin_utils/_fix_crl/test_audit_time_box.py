"""host_audit's time box (docs/performance.md): the argument, its validation, and how cut results are judged.

The fake host answers with fixtures/audit_host.py's ``AuditAnswers``; ``edit`` turns its document into what a
host answers when the box ended while the CRL requests and the TLS handshake were still waiting
(docs/dev/host-scripts.md, host_audit).
"""

from __future__ import annotations

import re
import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import (
    MAX_TIME_BOX_MS,
    host_args,
    is_time_box_error,
    time_box_error,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import PS1_DIR
from tests import pslint
from tests.unit.plugins.fixtures.audit_host import (
    GOOD_SAMPLE,
    SKIPPED_SAMPLE,
    UNKNOWN_SAMPLE,
    audit,
    audit_host,
    request,
)
from tests.unit.plugins.fixtures.host import FakeHost

BOX = 1000
CUT = time_box_error(BOX)
# A sample the box cut off, as _ps1/_tls.ps1 builds it: no timings, the box's text.
CUT_SAMPLE = {"tcp_connect_ms": None, "handshake_ms": None, "protocol": None, "mutual": False, "chain_status": [],
              "policy_errors": None, "error": CUT}


def _cut_host(monkeypatch, p, bodies, samples: list[dict[str, t.Any]]) -> FakeHost:
    """Every CRL request aborted at the box, the peer's samples as given, time_box_hit true."""
    fake = audit_host(monkeypatch, p, bodies, samples=samples)

    def edit(doc: dict[str, t.Any]) -> None:
        for entry in doc["crl"]["results"]:
            entry.update(status=None, elapsed_ms=BOX - 1, bytes=None, body_b64=None, truncated=False, error=CUT)
        doc.update(time_box_ms=BOX, time_box_hit=True)

    fake.answer.edit = edit
    return fake


# --- the argument ---------------------------------------------------------------------------------------------------

def test_the_time_box_is_sent_and_null_by_default() -> None:
    assert host_args(request(), check_mode=True)["time_box_ms"] is None
    assert host_args(request(time_box_ms=1500), check_mode=True)["time_box_ms"] == 1500


@pytest.mark.parametrize("value", [0, -1, MAX_TIME_BOX_MS + 1, True, "1000", 1.5])
def test_a_bad_time_box_names_the_field_and_runs_nothing(host, value) -> None:
    with pytest.raises(ValueError, match=f"^time_box_ms: .* or null, got {re.escape(repr(value))}$"):
        audit(request(time_box_ms=value))
    assert host.scripts == []


@pytest.mark.parametrize("value", [1, MAX_TIME_BOX_MS])
def test_the_time_box_limits_are_accepted_and_reach_the_host(host, value) -> None:
    result = audit(request(time_box_ms=value))
    assert host.sent_args(0)["time_box_ms"] == value and result.time_box_ms == value


# --- how cut results are judged -------------------------------------------------------------------------------------

def test_cut_crl_requests_are_unreachable_and_a_cut_peer_is_an_error(monkeypatch, p, bodies) -> None:
    fake = _cut_host(monkeypatch, p, bodies, [CUT_SAMPLE, SKIPPED_SAMPLE, SKIPPED_SAMPLE])
    result = audit(request(time_box_ms=BOX), check_mode=True)
    # A cut URL was answered (with an error): no second command to fetch it again.
    assert result.commands == 1 and fake.names == ["host_audit"] and result.warnings == []
    assert result.time_box_ms == BOX and result.time_box_hit is True
    crl = result.crl
    assert crl["results"] and {r["error"] for r in crl["results"]} == {CUT}
    assert not any(r["reachable"] or r["usable"] for r in crl["results"])
    assert crl["summary"]["unreachable"] == crl["summary"]["total"] and crl["all_usable"] is False
    peer = result.tls["results"][0]
    assert peer["verdict"] == "error" and peer["revocation_unknown"] is False
    assert peer["errors"] == [f"sample 1: {CUT}"] and peer["samples_ms"] == [None, None, None]
    assert result.tls["all_pass"] is False and result.tls["summary"]["error"] == 1


def test_a_peer_cut_after_a_good_sample_is_judged_by_the_samples_that_finished(monkeypatch, p, bodies) -> None:
    # Sample 2 started late; being cut says nothing about its speed, so it counts as skipped, not failed.
    _cut_host(monkeypatch, p, bodies, [GOOD_SAMPLE, CUT_SAMPLE, SKIPPED_SAMPLE])
    peer = audit(request(time_box_ms=BOX)).tls["results"][0]
    assert peer["verdict"] == "pass" and peer["errors"] == []
    assert peer["samples_ms"] == [12, None, None]


def test_a_first_sample_cut_by_the_box_fails_the_peer(monkeypatch, p, bodies) -> None:
    _cut_host(monkeypatch, p, bodies, [CUT_SAMPLE, GOOD_SAMPLE, SKIPPED_SAMPLE])
    peer = audit(request(time_box_ms=BOX)).tls["results"][0]
    assert peer["verdict"] == "error" and peer["errors"] == [f"sample 1: {CUT}"]


def test_a_peer_that_finished_revocation_unknown_inside_the_box_keeps_its_verdict(monkeypatch, p, bodies) -> None:
    _cut_host(monkeypatch, p, bodies, [UNKNOWN_SAMPLE, SKIPPED_SAMPLE, SKIPPED_SAMPLE])
    peer = audit(request(time_box_ms=5000)).tls["results"][0]
    assert peer["verdict"] == "revocation_unknown" and peer["errors"] == []


def test_a_document_without_the_time_box_keys_was_not_cut(host) -> None:
    result = audit()
    assert result.time_box_ms is None and result.time_box_hit is False


@pytest.mark.parametrize(("text", "expected"), [
    (CUT, True), (f"sample 2: {CUT}", True), (time_box_error(600000), True),
    ("The operation timed out", False), (f"peer: {CUT}", False), (CUT + ".", False), (None, False),
])
def test_time_box_errors_are_recognised_exactly(text, expected) -> None:
    assert is_time_box_error(text) is expected


# --- one text on the host and the controller ------------------------------------------------------------------------

def test_the_script_gives_the_controllers_text() -> None:
    # host_audit.ps1 cannot run here: its tree holds the one string that builds the text (comments do not count).
    root = pslint.parse((PS1_DIR / "host_audit.ps1").read_bytes()).root_node
    literals = [pslint.text(node) for node in pslint.walk(root)
                if node.type == "expandable_string_literal" and "not finished within" in pslint.text(node)]
    assert len(literals) == 1, "host_audit.ps1 builds the time box's text in one place"
    assert literals[0].strip('"').replace("$timeBoxLimitMs", "1234") == time_box_error(1234)
