"""plugin_utils/_fix_crl/_run.py: one host's run, its remote command budget, and the record it leaves.

The two remote steps (``run_host_audit`` and ``apply_change``) are replaced by fixtures/fix_crl_steps.py's
fakes that answer like the real helpers (their own unit tests replay host output at the seam); what is tested
here is the order of the steps, what each is asked, how many commands each costs, and the record.
"""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _run as _fix_crl_host
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions, Inventory
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from tests.unit.plugins.fixtures.fix_crl_steps import INVENTORY, PROXY, URL, FakeSteps, run, tls
from tests.unit.plugins.fixtures.winhttp.values import DIRECT_B64, PROXY_B64


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_correct_host_costs_one_command_in_audit_and_fix(monkeypatch, check_mode) -> None:
    host = FakeSteps(monkeypatch, views=(PROXY_B64, PROXY_B64), healthy_before=True)
    record = run(check_mode)
    assert (record["status"], record["commands"], host.writes) == ("compliant", 1, [])
    assert record["checks"]["before"]["passed"] is True and record["reason"] is None
    assert host.audits[0].cert_options is not None and host.audits[0].peers
    # Only the audit cuts its measurement at the time box; the fix's first measurement is the rollback baseline.
    assert host.audits[0].time_box_ms == (2000 if check_mode else None)


def test_the_audit_of_a_host_that_needs_a_change_is_one_command_and_predicts_the_write(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False)
    record = run(True)
    assert record["status"] == "would_change" and record["commands"] == 1
    (args, current, check_mode), = host.writes
    assert check_mode is True and args["proxy"] == PROXY and args["views"] == ["native", "wow6432"]
    assert current.views["native"].raw == base64.b64decode(DIRECT_B64)  # the write does not read again
    assert record["reason"].startswith(f"no machine-wide WinHTTP proxy: would set proxy {PROXY} in native, wow6432; "
                                       "now: CRL: 0/1")
    assert [d["cause"] for d in record["diagnosis"]] == ["no_proxy"]


def test_a_fix_is_three_commands_and_measures_after_with_the_cache_purged(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, DIRECT_B64), healthy_before=False)
    record = run(False)
    assert (record["status"], record["commands"]) == ("changed", 3)
    after = host.audits[1]
    assert after.cert_options is None and after.purge_cache is True
    assert [e.url for e in after.endpoints] == [URL] and after.peers == host.audits[0].peers
    assert record["after"]["views"]["native"]["raw_b64"] == PROXY_B64
    assert record["checks"]["before"]["passed"] is False and record["checks"]["after"]["passed"] is True


def test_a_dead_proxy_is_rolled_back_in_four_commands_against_what_was_written(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=True, healthy_after=False,
                     proxy_answers=False)
    record = run(False)
    assert (record["status"], record["commands"]) == ("rolled_back", 4)
    restore, current, _check_mode = host.writes[1]
    assert restore == {"restore": {"native": DIRECT_B64, "wow6432": None}}
    assert current.views["native"].raw == base64.b64decode(PROXY_B64)  # compare-and-swap with our own write
    assert record["rollback"]["why"].startswith("it made worse: ")
    assert "after the rollback: not measured" in record["reason"] and record["counts_against_rollout"] is True


def test_measure_after_rollback_adds_the_fifth_command(monkeypatch) -> None:
    FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=True, healthy_after=False, proxy_answers=False)
    record = run(False, measure_after_rollback=True)
    assert record["commands"] == 5 and "after_rollback" in record["checks"]


def test_a_change_that_made_nothing_worse_and_reaches_the_crl_server_is_kept(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, DIRECT_B64), healthy_before=False, healthy_after=False)
    record = run(False)
    assert record["status"] == "failed" and len(host.writes) == 1 and record["commands"] == 3
    assert record["rollback"]["kept"] is True and "and kept it (the proxy path works" in record["reason"]
    assert record["counts_against_rollout"] is False


def test_a_host_that_cannot_be_reached_is_unreachable_at_gather(monkeypatch) -> None:
    FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=True,
              fail={"audit": AnsibleConnectionFailure("winrm: connection refused")})
    record = run(False)
    assert record["status"] == "unreachable" and record["errors"][0]["step"] == "gather"
    assert record["reason"].startswith("gather: t: winrm: connection refused") and record["before"] is None


def test_a_connection_lost_during_the_apply_never_claims_the_old_values(monkeypatch) -> None:
    FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False,
              fail={"apply": AnsibleConnectionFailure("connection reset")})
    record = run(False)
    assert record["status"] == "unreachable" and record["after"] is None
    assert "the connection was lost while applying" in record["errors"][0]["msg"]


def test_a_refused_write_is_a_failed_host_with_the_reason(monkeypatch) -> None:
    FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False,
              fail={"apply": ExpectedFailure("WinHttpSettings in view native changed since it was read")})
    record = run(False)
    assert record["status"] == "failed" and "changed since it was read" in record["reason"]
    assert record["commands"] == 2


def test_a_host_without_a_proxy_in_the_inventory_is_not_changed(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False)
    opts = FixCrlOptions.from_args({"proxy": None})
    record = _fix_crl_host.run_fix_crl_host(object(), opts, INVENTORY, check_mode=False, task_action="t").as_dict()
    assert record["status"] == "failed" and host.writes == []
    assert record["reason"].startswith("plan: fix_crl_proxy is not set for this host")


def test_the_proxy_may_be_given_as_win_http_proxys_dict(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False)
    record = run(True, proxy={"https": "proxy.contoso.com:8443", "http": PROXY})
    (args, _current, _check_mode), = host.writes
    assert args["proxy"] == f"http={PROXY};https=proxy.contoso.com:8443"
    assert record["status"] == "would_change"


def test_a_proxy_dict_with_other_keys_fails_the_plan_with_win_http_proxys_text(monkeypatch) -> None:
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False)
    record = run(True, proxy={"gopher": "proxy:70"})
    assert record["status"] == "failed" and host.writes == []
    assert record["reason"] == ("plan: Invalid keys found in proxy: gopher. Valid keys are http, https, ftp, socks.")


def test_peers_are_the_next_members_of_the_sorted_group() -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import derive_peers
    group, peers = derive_peers(FixCrlOptions.from_args({"max_peers": 1}), INVENTORY)
    assert group == "lync_servers" and peers == [{"host": "fe02", "port": 5061, "sni": "fe02"}]
    _group, ring = derive_peers(FixCrlOptions.from_args({"max_peers": 0}),
                                Inventory("fe03", ("lync_servers",), INVENTORY.groups))
    assert [p["sni"] for p in ring] == ["fe01", "fe02"]


def test_only_the_chosen_peers_variables_are_read() -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import derive_peers

    class CountingHostVars(dict):
        reads: list[str] = []

        def __getitem__(self, name):
            self.reads.append(name)
            return super().__getitem__(name)

    members = [f"fe{i:03d}" for i in range(400)]
    hostvars = CountingHostVars({name: {"ansible_host": f"127.0.1.{i % 250}"} for i, name in enumerate(members)})
    inventory = Inventory("fe010", ("lync_servers",), {"lync_servers": members}, hostvars)
    _group, peers = derive_peers(FixCrlOptions.from_args({"peer_address_from": "ansible_host"}), inventory)
    assert [p["host"] for p in peers] == ["127.0.1.11", "127.0.1.12", "127.0.1.13"]
    assert hostvars.reads == ["fe011", "fe012", "fe013"]  # not the 400 members: each read templates a host


def test_a_handshake_cut_by_the_time_box_is_reported_as_over_the_box_not_as_the_fastest() -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import (
        Criteria,
        Measurement,
        judge_phase,
    )
    cut = {**tls(False), "worst_ms": 40, "unfinished_ms": 2000}
    summary = judge_phase(Measurement(tls=cut), Criteria("reachable", 1000)).summary
    assert "worst handshake over 2000 ms (cut by the audit's time box) (limit 1000 ms)" in summary
    whole = judge_phase(Measurement(tls={**tls(True), "unfinished_ms": None}), Criteria("reachable", 1000))
    assert "worst handshake 40 ms (limit 1000 ms)" in whole.summary


def test_a_rollback_restores_both_views_whatever_views_asked_for(monkeypatch) -> None:
    # whether one netsh writes both views is contested, so the view the plan left alone is put back
    # too, from what the audit read (a restore leaves a view that still holds those bytes alone).
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, PROXY_B64), healthy_before=True, healthy_after=False,
                     proxy_answers=False)
    original = host.winhttp

    def only_native(connection, args, **kwargs):
        result = original(connection, args, **kwargs)
        if "restore" not in args:
            result["previous_raw"] = {"native": DIRECT_B64}
        return result

    monkeypatch.setattr(host, "winhttp", only_native)
    record = run(False, views=["native"])
    assert record["status"] == "rolled_back"
    restore, _current, _check_mode = host.writes[1]
    assert restore == {"restore": {"native": DIRECT_B64, "wow6432": PROXY_B64}}


def test_a_peer_sharing_no_tls_protocol_is_a_protocol_mismatch_finding_in_the_record(monkeypatch) -> None:
    from tests.unit.plugins.fixtures import fix_crl_steps

    measured = fix_crl_steps.tls

    def no_common_protocol(ok: bool) -> dict:
        result = measured(ok)
        result["results"][0].update(verdict="error", protocol_mismatch=True)
        return {**result, "all_pass": False, "offered_protocols": "Tls11, Tls12"}

    monkeypatch.setattr(fix_crl_steps, "tls", no_common_protocol)
    FakeSteps(monkeypatch, views=(PROXY_B64, PROXY_B64), healthy_before=True)
    record = run(True)
    mismatches = [f for f in record["findings"] if f["code"] == "protocol_mismatch"]
    assert len(mismatches) == 1 and mismatches[0]["identity"] is None, record["findings"]
    assert mismatches[0]["detail"].startswith("fe02:5061: no TLS protocol in common"), mismatches[0]
