"""The host's own service: split from the peers, judged stale only after a passing proof, restarted once."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _service
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import normalize_peers


def _result(peer: str, verdict: str, max_ms: int) -> dict:
    host, port = peer.split(":")
    return {"peer": peer, "host": host, "port": int(port), "sni": host, "verdict": verdict, "max_ms": max_ms,
            "median_ms": max_ms, "samples_ms": [max_ms], "protocol": "Tls12", "mutual": True, "errors": []}


def _tls() -> dict:
    results = [_result("fe02:5061", "pass", 20), _result("fe01:5061", "slow", 4000)]
    return {"changed": False, "results": results, "all_pass": False, "worst_ms": 4000, "summary": {"total": 2}}


def test_the_service_s_handshake_leaves_the_peers_totals() -> None:
    peer = normalize_peers([{"host": "fe01", "port": 5061, "sni": "fe01"}])[0]
    split = _service.split_service(_tls(), peer)
    assert [r["peer"] for r in split["results"]] == ["fe02:5061"]
    assert split["all_pass"] is True and split["worst_ms"] == 20 and split["summary"]["total"] == 1
    assert split["service"]["peer"] == "fe01:5061"
    peers, service = _service.take_service(split)
    assert "service" not in peers and service["verdict"] == "slow"
    assert _service.split_service(_tls(), None) == _tls()  # no service peer: untouched


def test_a_part_holding_only_the_service_is_no_peers_part() -> None:
    assert _service.take_service({"service": _result("fe01:5061", "pass", 5)})[0] is None
    assert _service.take_service(None) == (None, None)


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
    with pytest.raises(ValueError, match=r"services\[1\]: not a Windows service name"):
        _service.restart_args(["RTCSRV", name], 1000)
