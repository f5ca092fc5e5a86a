"""The host's own service: split from the peers, judged stale only after a passing proof, restarted once."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _audit, _service
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import interpret_document, normalize_peers
from tests.unit.plugins.fixtures.audit_host import request


def _result(peer: str, verdict: str, max_ms: int) -> dict:
    host, port = peer.split(":")
    return {"peer": peer, "host": host, "port": int(port), "sni": host, "verdict": verdict, "max_ms": max_ms,
            "median_ms": max_ms, "samples_ms": [max_ms], "protocol": "Tls12", "mutual": True, "errors": []}


def _raw(host: str, ms: int) -> dict:
    """One peer's result as the host's tls_probe document holds it (host-scripts.md)."""
    return {"host": host, "port": 5061, "sni": host, "one_sided": None,
            "samples": [{"tcp_connect_ms": 1, "handshake_ms": ms, "protocol": "Tls12", "mutual": True,
                         "chain_status": [], "policy_errors": "None", "error": None}]}


def _document() -> dict:
    # The host probes its own service (fe01) after its peers (fe02).
    return {"offered_protocols": "Tls, Tls11, Tls12", "results": [_raw("fe02", 20), _raw("fe01", 4000)]}


def test_the_service_s_handshake_leaves_the_peers_totals() -> None:
    peer, own = normalize_peers([{"host": "fe02", "port": 5061, "sni": "fe02"},
                                 {"host": "fe01", "port": 5061, "sni": "fe01"}])
    peers_document, service = _service.split_service(_document(), own, max_handshake_ms=1000)
    split = interpret_document([peer], peers_document, max_handshake_ms=1000)
    assert [r["peer"] for r in split["results"]] == ["fe02:5061"]
    assert split["all_pass"] is True and split["worst_ms"] == 20 and split["summary"]["total"] == 1
    assert service["peer"] == "fe01:5061" and service["verdict"] == "slow"
    assert _service.split_service(_document(), None, max_handshake_ms=1000) == (_document(), None)  # untouched


def test_a_document_that_does_not_answer_the_service_is_refused_naming_it() -> None:
    own = normalize_peers([{"host": "fe01", "port": 5061, "sni": "fe01"}])[0]
    with pytest.raises(HostScriptError, match="not the answer for fe01:5061"):
        _service.split_service({"results": [_raw("fe02", 20)]}, own, max_handshake_ms=1000)


def test_an_audit_without_peers_has_no_peers_part_but_the_service_s_handshake() -> None:
    own = normalize_peers([{"host": "fe01", "port": 5061, "sni": "fe01"}])[0]
    document = {"tls": {"script": "tls_probe", "schema": 1, **_document(), "results": [_raw("fe01", 12)]}}
    tls, service = _audit._tls(document, request(peers=(), service_peer=own))
    assert tls is None and (service["peer"], service["verdict"]) == ("fe01:5061", "pass")


CUT = "sample 1: not finished within the audit's time box of 3000 ms"


@pytest.mark.parametrize(("passed", "verdict", "errors", "stale"), [
    (True, "slow", [], True), (True, "error", [CUT], True), (True, "pass", [], False), (False, "slow", [], False),
    # this host's own view of its certificate, or a refused connection: not the service's state
    (True, "revocation_unknown", [], False), (True, "error", ["sample 1: No connection could be made"], False)])
def test_stale_only_when_the_host_s_own_proof_passed(passed: bool, verdict: str, errors: list, stale: bool) -> None:
    findings: list = [{"code": "service_stale", "identity": None, "detail": "from an earlier phase"}]
    service = _service.judge_service({**_result("fe01:5061", verdict, 4000), "errors": errors}, phase_passed=passed,
                                     services=["RTCSRV", "RTCMEDSRV"], max_handshake_ms=1000, findings=findings)
    assert service["stale"] is stale and service["target"] == {"host": "fe01", "port": 5061, "sni": "fe01"}
    assert [f["code"] for f in findings] == (["service_stale"] if stale else [])
    if stale:
        assert "RTCSRV, RTCMEDSRV" in findings[0]["detail"] and "limit 1000 ms" in findings[0]["detail"]


def _stale_record() -> dict:
    return {"host": "fe01", "status": "failed", "reason": "service_stale: ...", "commands": 1,
            "findings": [{"code": "service_stale", "identity": None, "detail": "x"},
                         {"code": "capi2_log_disabled", "identity": None, "detail": "y"}],
            "service": {"stale": True, "services": ["RTCSRV"], "status_when_fresh": "changed",
                        "reason_when_fresh": "set proxy p in native", "restart": None,
                        "target": {"host": "fe01", "port": 5061, "sni": "fe01"}}}


def test_a_fresh_service_after_the_restart_gives_the_host_back_its_status() -> None:
    restart = {"services": [{"name": "RTCSRV", "restarted": True, "state": "Running", "error": None}]}
    record = _service.apply_restart(_stale_record(), restart, _result("fe01:5061", "pass", 15), max_handshake_ms=1000)
    assert (record["status"], record["reason"], record["commands"]) == ("changed", "set proxy p in native", 2)
    assert [f["code"] for f in record["findings"]] == ["capi2_log_disabled"]
    assert record["service"]["stale"] is False and record["service"]["restart"]["ok"] is True


def test_a_failed_restart_is_reported_with_windows_message_and_keeps_the_finding() -> None:
    restart = {"services": [{"name": "RTCSRV", "restarted": False, "state": "StopPending",
                             "error": "Time out has expired and the operation has not been completed."}]}
    record = _service.apply_restart(_stale_record(), restart, _result("fe01:5061", "pass", 15), max_handshake_ms=1000)
    assert record["status"] == "failed" and "the restart failed: RTCSRV: Time out has expired" in record["reason"]
    assert [f["code"] for f in record["findings"]] == ["capi2_log_disabled", "service_stale"]
    assert record["service"]["restart"]["ok"] is False


def test_still_slow_after_the_restart_says_so() -> None:
    restart = {"services": [{"name": "RTCSRV", "restarted": True, "state": "Running", "error": None}]}
    record = _service.apply_restart(_stale_record(), restart, _result("fe01:5061", "slow", 5000), max_handshake_ms=1000)
    assert record["status"] == "failed" and record["reason"].startswith("service_stale: after the restart, ")


@pytest.mark.parametrize("name", ["", "a\\b", "RTC/SRV", 7])
def test_a_service_name_that_is_not_one_is_refused_naming_it(name) -> None:
    with pytest.raises(ValueError, match=r"services\[1\]: not a valid service name"):
        _service.restart_args(["RTCSRV", name], 1000)
