"""The fix_crl_host action plugin: the role's one task, its options, the record as the result."""

from __future__ import annotations

import dataclasses
import re
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.action import fix_crl_host
from ansible_collections.crlfix.windows.plugins.modules import fix_crl_host as module_doc
from ansible_collections.crlfix.windows.plugins.plugin_utils._argspec import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _run as _fix_crl_host
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord, Status
from tests.conftest import REPO_ROOT
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.fix_crl_steps import BYPASS, PROXY, FakeSteps
from tests.unit.plugins.fixtures.winhttp.values import DIRECT_B64

RETURN = yaml.safe_load(module_doc.RETURN)
ROLE_TASK = yaml.safe_load((REPO_ROOT / "roles" / "fix_crl" / "tasks" / "main.yml").read_text())


def test_the_role_task_passes_every_option_from_its_role_variable() -> None:
    task_args = ROLE_TASK[0]["crlfix.windows.fix_crl_host"]
    assert set(task_args) == set(fix_crl_host.ActionModule.ARGUMENT_SPEC)
    for name, value in task_args.items():
        assert f"fix_crl_{name}" in value, name
    assert ROLE_TASK[0]["register"] == "fix_crl_record"


def test_the_options_are_the_documented_options_with_their_defaults() -> None:
    defaults = module_defaults("fix_crl_host")
    assert [field.name for field in dataclasses.fields(FixCrlOptions)] == list(defaults)
    options = FixCrlOptions.from_args({})
    for name, default in defaults.items():
        assert getattr(options, name) == (tuple(default) if isinstance(default, list) else default), name
    # Options without a default stay "not set"; lists become tuples.
    assert (options.proxy, options.cert_subject, options.peers, options.peer_group) == (None, None, None, None)
    assert options.views == ("native", "wow6432")


def test_null_means_the_default_except_for_the_time_box() -> None:
    options = FixCrlOptions.from_args({"bypass": None, "max_peers": None, "audit_time_box_ms": None, "peers": []})
    assert (options.bypass, options.max_peers, options.audit_time_box_ms, options.peers) == ((), 3, None, ())


def test_documentation_returns_every_record_key() -> None:
    record_keys = {"schema", "host", "status", "reason", "check_mode", "desired", "before", "planned", "after",
                   "certificates", "flags", "endpoints", "checks", "rollback", "errors", "commands",
                   "counts_against_rollout", "evidence", "findings", "identities", "caller",
                   "chain_cache_resync"}
    assert set(RETURN) == record_keys


def _record(status: str, **changes: t.Any) -> HostRecord:
    """A record of ``status`` made the way the run makes one (only the fields the action reads set by hand)."""
    failed = HostRecord.failed(host="fe01", step="t", msg="why", check_mode=status == "would_change")
    return dataclasses.replace(failed, status=Status(status), reason="why", changed=status == "would_change",
                               planned={**failed.planned, "diff": {"before": "a", "after": "b"}}, **changes)


TASK_VARS = {"inventory_hostname": "fe01", "group_names": ["lync_servers"],
             "groups": {"lync_servers": ["fe01", "fe02"], "all": ["fe01", "fe02", "x"]},
             "hostvars": {"fe01": {"ansible_host": "127.0.1.1"}, "fe02": {}}}


@pytest.mark.parametrize(("status", "fail_host", "failed"), [
    ("rolled_back", True, True), ("failed", True, True), ("unreachable", True, True),
    ("failed", False, False), ("would_change", True, False), ("compliant", True, False)])
def test_the_task_fails_only_when_asked_and_the_record_is_the_result(monkeypatch, status, fail_host, failed) -> None:
    seen = {}

    def fake_run(connection, options, inventory, *, check_mode, task_action):
        seen.update(options=options, inventory=inventory, check_mode=check_mode)
        return _record(status)

    monkeypatch.setattr(fix_crl_host, "run_fix_crl_host", fake_run)
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": "proxy:3128", "fail_host": fail_host}, check_mode=True, diff=True)
    result = plugin.run(task_vars=TASK_VARS)
    assert result.get("unreachable", False) is (status == "unreachable")
    failed = failed and status != "unreachable"
    assert result.get("failed", False) is failed
    assert result["status"] == status and result["diff"] == {"before": "a", "after": "b"}
    assert result["changed"] is (status == "would_change")
    if failed:
        assert result["msg"] == f"fix_crl: {status}: why"
    assert seen["check_mode"] is True and seen["options"].proxy == "proxy:3128"
    assert dict(seen["inventory"].groups) == {"lync_servers": ["fe01", "fe02"]}  # only the peer groups
    assert seen["inventory"].ansible_host("fe01") == "127.0.1.1" and seen["inventory"].ansible_host("fe02") == "fe02"


def test_a_kept_change_that_fails_verification_is_a_change_for_ansible(monkeypatch) -> None:
    # Issue 17, item 1: the proxy was set and kept, verification still fails where it failed before. The recap, AWX
    # and callbacks must see the change: changed is true whatever the verdict (with fail_host false, as the playbook
    # runs the role, the task is "changed"; the last play fails the host).
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, DIRECT_B64), healthy_before=False, healthy_after=False)
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": PROXY, "bypass": BYPASS, "fail_host": False})
    result = plugin.run(task_vars=TASK_VARS)
    assert len(host.writes) == 1 and result["rollback"]["kept"] is True
    assert result["status"] == "failed" and result["changed"] is True and not result.get("failed")
    assert "and kept it" in result["reason"]
    failing = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {"proxy": PROXY, "bypass": BYPASS})
    result = failing.run(task_vars=TASK_VARS)
    assert result["failed"] is True and result["changed"] is True


def test_a_host_lost_after_its_change_is_changed_not_unreachable_for_ansible(monkeypatch) -> None:
    # Ansible never counts an unreachable result as changed: a host the run changed must say changed, and its
    # status (unreachable) fails it with the reason.
    FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False,
              fail={"audit2": AnsibleConnectionFailure("connection reset")})
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {"proxy": PROXY, "bypass": BYPASS})
    result = plugin.run(task_vars=TASK_VARS)
    assert result["status"] == "unreachable" and result["changed"] is True
    assert "unreachable" not in result and result["failed"] is True
    assert result["msg"].startswith("fix_crl: unreachable: verify after: the connection was lost while verifying")


def test_a_bad_option_is_a_failed_record_and_runs_nothing(monkeypatch) -> None:
    monkeypatch.setattr(_fix_crl_host, "run_host_audit", lambda *a, **k: pytest.fail("no command for bad input"))
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": "proxy:3128", "peer_address_from": "dns"})
    result = plugin.run(task_vars={"inventory_hostname": "fe01"})
    assert result["failed"] is True and re.search("peer_address_from.*dns", result["msg"])
    assert result["schema"] == 1 and result["host"] == "fe01" and result["status"] == "failed"
    assert re.match(r"arguments: .*peer_address_from.*dns", result["reason"]), result["reason"]
    assert result["errors"] == [{"step": "arguments", "msg": result["reason"].removeprefix("arguments: "),
                                 "unreachable": False}]
    assert result["counts_against_rollout"] is True and result["changed"] is False
    assert set(result) >= set(RETURN)  # every documented record key: the report reads it like any other record
    quiet = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                        {"proxy": "proxy:3128", "peer_address_from": "dns", "fail_host": False}, check_mode=True)
    result = quiet.run(task_vars={"inventory_hostname": "fe01"})
    assert not result.get("failed") and result["status"] == "failed" and result["check_mode"] is True
