"""The fix_crl_host action plugin: the role's one task, its options, the record as the result."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.crlfix.windows.plugins.action import fix_crl_host
from ansible_collections.crlfix.windows.plugins.modules import fix_crl_host as module_doc
from ansible_collections.crlfix.windows.plugins.plugin_utils._argspec import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _run as _fix_crl_host
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions
from tests.conftest import REPO_ROOT
from tests.unit.plugins.action_factory import make_action

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
                   "counts_against_rollout"}
    assert set(RETURN) == record_keys


@pytest.mark.parametrize(("status", "fail_host", "failed"), [
    ("rolled_back", True, True), ("failed", True, True), ("unreachable", True, True),
    ("failed", False, False), ("would_change", True, False), ("compliant", True, False)])
def test_the_task_fails_only_when_asked_and_the_record_is_the_result(monkeypatch, status, fail_host, failed) -> None:
    record = {"status": status, "reason": "why", "planned": {"diff": {"before": "a", "after": "b"}}, "rollback": None}
    seen = {}

    def fake_run(connection, options, inventory, *, check_mode, task_action):
        seen.update(options=options, inventory=inventory, check_mode=check_mode)
        return dict(record)

    monkeypatch.setattr(fix_crl_host, "run_fix_crl_host", fake_run)
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": "proxy:3128", "fail_host": fail_host}, check_mode=True, diff=True)
    task_vars = {"inventory_hostname": "fe01", "group_names": ["lync_servers"],
                 "groups": {"lync_servers": ["fe01", "fe02"], "all": ["fe01", "fe02", "x"]},
                 "hostvars": {"fe01": {"ansible_host": "127.0.1.1"}, "fe02": {}}}
    result = plugin.run(task_vars=task_vars)
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


def test_a_bad_option_is_a_clear_failure(monkeypatch) -> None:
    monkeypatch.setattr(_fix_crl_host, "run_host_audit", lambda *a, **k: pytest.fail("no command for bad input"))
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": "proxy:3128", "peer_address_from": "dns"})
    with pytest.raises(AnsibleActionFail, match="peer_address_from.*dns"):
        plugin.run(task_vars={})
