"""The fix_crl_host action plugin: its options agree with the module docs and with the role's argument spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.crlfix.windows.plugins.action import fix_crl_host
from ansible_collections.crlfix.windows.plugins.modules import fix_crl_host as module_doc
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _run as _fix_crl_host
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.docs import resolved_documentation

DOCUMENTATION = yaml.safe_load(module_doc.DOCUMENTATION)
RETURN = yaml.safe_load(module_doc.RETURN)
ROLE = Path(__file__).resolve().parents[4] / "roles" / "fix_crl"
ROLE_SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
ROLE_TASK = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
ROLE_DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
_SPEC_KEYS = ("type", "elements", "default", "required", "choices")


def _spec(option: dict) -> dict:
    return {key: value for key, value in option.items() if key in _SPEC_KEYS}


def test_argument_spec_matches_documentation() -> None:
    documented = {name: _spec(option) for name, option in DOCUMENTATION["options"].items()}
    assert documented == fix_crl_host.ActionModule.ARGUMENT_SPEC


def test_every_role_variable_is_an_option_of_the_one_task_with_the_same_type_and_choices() -> None:
    options = fix_crl_host.ActionModule.ARGUMENT_SPEC
    assert {f"fix_crl_{name}" for name in options} == set(ROLE_SPEC)
    for name, option in options.items():
        role = ROLE_SPEC[f"fix_crl_{name}"]
        assert {k: role.get(k) for k in ("type", "elements", "choices")} == {
            k: option.get(k) for k in ("type", "elements", "choices")}, name
    task_args = ROLE_TASK[0]["crlfix.windows.fix_crl_host"]
    assert set(task_args) == set(options)
    assert ROLE_TASK[0]["register"] == "fix_crl_record"


def test_the_options_dataclass_has_the_module_defaults() -> None:
    # FixCrlOptions' own defaults serve direct callers and tests; they must not drift from the task's.
    import dataclasses

    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions
    for field in dataclasses.fields(FixCrlOptions):
        default = fix_crl_host.ActionModule.ARGUMENT_SPEC[field.name].get("default")
        assert field.default == (tuple(default) if isinstance(default, list) else default), field.name


def test_role_defaults_are_the_module_defaults() -> None:
    for name, value in ROLE_DEFAULTS.items():
        assert fix_crl_host.ActionModule.ARGUMENT_SPEC[name.removeprefix("fix_crl_")].get("default") == value, name


def test_documentation_declares_the_attributes_and_every_record_key() -> None:
    resolved = resolved_documentation(module_doc.DOCUMENTATION)
    assert resolved["attributes"]["check_mode"]["support"] == "full"
    assert resolved["attributes"]["platform"]["platforms"] == "windows"
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
