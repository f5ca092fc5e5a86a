"""The tls_probe action plugin end to end, with the remote seam replaying host documents."""

from __future__ import annotations

import typing as t

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.crlfix.windows.plugins.action import tls_probe
from ansible_collections.crlfix.windows.plugins.modules import tls_probe as module_doc
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.host import FakeHost, compact
from tests.unit.plugins.fixtures.verify.verify_bodies import FIXTURES

RETURN = yaml.safe_load(module_doc.RETURN)
ACTION = "crlfix.windows.tls_probe"
MIXED_PEERS = ["lab-fe02.lab.test:5061", "lab-fe03.lab.test:5061", "lab-fe04.lab.test:5061",
               {"host": "127.0.0.1", "port": 5062, "sni": "lab-fe05.lab.test"},
               {"host": "::1", "port": 5063, "sni": "lab-fe06.lab.test"}]


def make_plugin(args: dict[str, t.Any], *, check_mode: bool = False) -> tls_probe.ActionModule:
    return make_action(tls_probe.ActionModule, ACTION, args, check_mode=check_mode)


@pytest.fixture
def mixed(monkeypatch):
    return FakeHost(monkeypatch, compact((FIXTURES / "tls_probe_mixed.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("check_mode", [False, True])
def test_peer_failures_are_data_and_nothing_changes(mixed, check_mode) -> None:
    result = make_plugin({"peers": MIXED_PEERS}, check_mode=check_mode).run(task_vars={})
    assert "failed" not in result
    assert result["changed"] is False
    assert mixed.calls == 1  # one remote command for all peers, in check mode too
    assert set(RETURN) <= set(result)
    for peer in result["results"]:
        assert set(peer) == set(RETURN["results"]["contains"])
    assert [p["verdict"] for p in result["results"]] == ["pass", "slow", "revocation_unknown", "error", "error"]
    assert result["all_pass"] is False


def test_defaults_reach_the_host(mixed) -> None:
    make_plugin({"peers": MIXED_PEERS}).run(task_vars={})
    sent = mixed.sent_args()
    assert (sent["samples"], sent["timeout_ms"], sent["check_revocation"]) == (3, 20000, True)


def test_bad_peer_fails_with_field_and_value(monkeypatch) -> None:
    host = FakeHost(monkeypatch, "")
    result = make_plugin({"peers": ["a.test:5061", "[a.test]:5061"]}).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"] == f"{ACTION}: peers[1]: brackets are only for IPv6 addresses, got '[a.test]:5061'"
    assert host.calls == 0


def test_missing_peers_is_refused_by_the_spec() -> None:
    with pytest.raises(AnsibleActionFail, match="peers"):
        make_plugin({}).run(task_vars={})


def test_host_script_failure_is_a_failed_task(monkeypatch) -> None:
    FakeHost(monkeypatch, "", rc=1, stderr="Exception calling \"Open\" with \"0\" argument(s)")
    result = make_plugin({"peers": ["a.test:5061"]}).run(task_vars={})
    assert result["failed"] is True
    assert result["rc"] == 1
