"""plugin_utils/_fix_crl/_service.py: the restart step's one command, and the record it leaves through the judge.

The restart's document is shaped as ``_ps1/service_restart.ps1`` prints it (docs/dev/host-scripts.md,
``service_restart``); its message texts are ServiceController's (Microsoft Learn, "ServiceController.WaitForStatus":
``System.ServiceProcess.TimeoutException``).
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _audit, _service
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import ServiceMeasurement
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import judge_restart
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord
from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _script as _host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import interpret_document, normalize_peers
from tests.unit.plugins.fixtures.audit_host import request
from tests.unit.plugins.fixtures.host import FakeHost, document_reply

TARGET = {"host": "fe01", "port": 5061, "sni": "fe01"}
SERVICE = {"services": ["RTCSRV"], "target": TARGET, "stale": True}
TIMEOUT = "Time out has expired and the operation has not been completed."


def _raw(host: str, ms: int) -> dict:
    """One peer's result as the host's tls_probe document holds it (host-scripts.md)."""
    return {"host": host, "port": 5061, "sni": host, "one_sided": None,
            "samples": [{"tcp_connect_ms": 1, "handshake_ms": ms, "protocol": "Tls12", "mutual": True,
                         "chain_status": [], "policy_errors": "None", "error": None}]}


def _document() -> dict:
    # The host probes its own service (fe01) after its peers (fe02).
    return {"offered_protocols": "Tls, Tls11, Tls12", "results": [_raw("fe02", 20), _raw("fe01", 4000)]}


def test_the_service_s_handshake_leaves_the_peers_totals() -> None:
    peer, own = normalize_peers([{"host": "fe02", "port": 5061, "sni": "fe02"}, TARGET])
    peers_document, service = _audit._split_service(_document(), own, max_handshake_ms=1000)
    split = interpret_document([peer], peers_document, max_handshake_ms=1000)
    assert [r["peer"] for r in split["results"]] == ["fe02:5061"]
    assert split["all_pass"] is True and split["worst_ms"] == 20 and split["summary"]["total"] == 1
    assert service["peer"] == "fe01:5061" and service["verdict"] == "slow"
    assert _audit._split_service(_document(), None, max_handshake_ms=1000) == (_document(), None)  # untouched


def test_a_document_that_does_not_answer_the_service_is_refused_naming_it() -> None:
    own = normalize_peers([TARGET])[0]
    with pytest.raises(HostScriptError, match="not the answer for fe01:5061"):
        _audit._split_service({"results": [_raw("fe02", 20)]}, own, max_handshake_ms=1000)


def test_an_audit_without_peers_has_no_peers_part_but_the_service_s_handshake() -> None:
    own = normalize_peers([TARGET])[0]
    document = {"tls": {"script": "tls_probe", "schema": 1, **_document(), "results": [_raw("fe01", 12)]}}
    tls, service = _audit._tls(document, request(peers=(), service_peer=own))
    assert tls is None and (service["peer"], service["verdict"]) == ("fe01:5061", "pass")


def _restart(monkeypatch, reply) -> tuple[dict, ServiceMeasurement | None, FakeHost]:
    host = FakeHost(reply=reply)
    monkeypatch.setattr(_host_script, "run_powershell", host)
    restart, measurement = _service.restart_service(object(), SERVICE, wait_ms=60000, samples=1, timeout_ms=8000,
                                                    max_handshake_ms=1000, check_revocation=True, task_action="t")
    return restart, measurement, host


def test_the_restart_is_one_command_and_its_handshake_is_measured_again(monkeypatch) -> None:
    document = {"services": [{"name": "RTCSRV", "restarted": True, "state": "Running", "error": None}],
                "tls": {"offered_protocols": "Tls12", "results": [_raw("fe01", 15)]}}
    reply = document_reply({"script": "service_restart", "schema": 1, **document})
    restart, measurement, host = _restart(monkeypatch, reply)
    assert host.names == ["service_restart"] and host.sent_args()["services"] == ["RTCSRV"]
    assert host.sent_args()["tls"]["mutual"] is True
    assert restart["services"][0]["restarted"] is True and measurement.handshake["verdict"] == "pass"


def test_a_lost_connection_is_the_restart_s_failure_with_no_measurement(monkeypatch) -> None:
    restart, measurement, _host = _restart(monkeypatch, AnsibleConnectionFailure("winrm: connection reset"))
    assert measurement is None
    assert restart["services"] == [{"name": "RTCSRV", "restarted": False, "state": None,
                                    "error": "t: winrm: connection reset"}]


def _stale_record() -> HostRecord:
    """A record whose run set the proxy and whose service the judge found stale (what from_run leaves)."""
    return HostRecord.from_dict({
        "host": "fe01", "status": "failed", "reason": "service_stale: ...", "check_mode": False,
        "desired": {"state": "present", "proxy": "p:8080"}, "before": None,
        "planned": {"change": True, "views": ["native"], "predicted_change": True}, "after": None,
        "certificates": [], "flags": {}, "endpoints": [], "errors": [], "rollback": None, "commands": 3,
        "counts_against_rollout": False, "changed": True,
        "checks": {"before": {"passed": False, "summary": "CRL: 0/1"}, "after": {"passed": True, "summary": "ok"}},
        "findings": [{"code": "service_stale", "identity": None, "detail": "x"},
                     {"code": "capi2_log_disabled", "identity": None, "detail": "y"}],
        "service": {"stale": True, "services": ["RTCSRV"], "verdict": {"state": "stale", "detail": "x"},
                    "restart": None, "target": TARGET}})


def _after(restart: dict, verdict: str, ms: int) -> HostRecord:
    handshake = {"peer": "fe01:5061", "verdict": verdict, "max_ms": ms, "samples_ms": [ms], "errors": []}
    measurement = ServiceMeasurement(handshake=handshake)
    judged = judge_restart(restart, measurement, services=["RTCSRV"], max_handshake_ms=1000)
    return _stale_record().with_restart(restart, measurement, judged)


RESTARTED = {"services": [{"name": "RTCSRV", "restarted": True, "state": "Running", "error": None}]}


def test_a_fresh_service_after_the_restart_gives_the_host_back_its_status() -> None:
    record = _after(RESTARTED, "pass", 15)
    assert (record.status.value, record.reason, record.commands) == ("changed", "set proxy p:8080 in native; ok", 4)
    assert [f["code"] for f in record.findings] == ["capi2_log_disabled"]
    assert record.service["stale"] is False and record.service["restart"]["ok"] is True


def test_a_failed_restart_is_reported_with_windows_message_and_keeps_the_finding() -> None:
    restart = {"services": [{"name": "RTCSRV", "restarted": False, "state": "StopPending", "error": TIMEOUT}]}
    record = _after(restart, "pass", 15)
    assert record.status.value == "failed" and f"the restart failed: RTCSRV: {TIMEOUT}" in record.reason
    assert [f["code"] for f in record.findings] == ["capi2_log_disabled", "service_stale"]
    assert record.service["restart"]["ok"] is False


def test_still_slow_after_the_restart_is_slow_not_stale_and_no_second_restart_is_advised() -> None:
    record = _after(RESTARTED, "slow", 5000)
    assert record.status.value == "changed" and record.service["stale"] is False
    [slow] = [f for f in record.findings if f["code"] == "service_slow"]
    assert "took 5000 ms" in slow["detail"] and "no restart is advised" in slow["detail"]


@pytest.mark.parametrize("name", ["", "a\\b", "RTC/SRV", 7])
def test_a_service_name_that_is_not_one_is_refused_naming_it(name) -> None:
    with pytest.raises(ValueError, match=r"services\[1\]: not a valid service name"):
        _service.restart_args(["RTCSRV", name], 1000)
