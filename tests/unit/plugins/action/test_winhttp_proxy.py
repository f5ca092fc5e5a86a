"""The winhttp_proxy action plugin end to end, with run_powershell replaced by a replaying fake host."""

from __future__ import annotations

import json
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.crlfix.windows.plugins.action import winhttp_proxy
from ansible_collections.crlfix.windows.plugins.modules import winhttp_proxy as module_doc
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.winhttp.replay import read_fixture

RETURN = yaml.safe_load(module_doc.RETURN)
ALWAYS = {key for key, value in RETURN.items() if value["returned"] == "always"}
SUMMARY_KEYS = {"present", "mode", "proxy", "bypass", "raw_b64"}
DIRECT_B64 = "GAAAAAAAAAABAAAAAAAAAAAAAAA="
WANT = {"proxy": "proxy.contoso.com:8080", "bypass": ["<local>", "*.contoso.com"]}


def make_plugin(args: dict[str, t.Any], *, check_mode: bool = False, diff: bool = False) -> winhttp_proxy.ActionModule:
    return make_action(winhttp_proxy.ActionModule, "crlfix.windows.winhttp_proxy", args,
                       check_mode=check_mode, diff=diff)


def test_apply_returns_documented_keys(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_native_only.json"], winhttp_apply=["apply_set_both.json"])
    result = make_plugin(WANT).run(task_vars={})
    assert not result.get("failed"), result
    assert ALWAYS <= set(result) and "diff" not in result
    assert replay.names == ["winhttp_state", "winhttp_apply"]
    assert result["changed"] is True
    assert set(result["before"]["native"]) == SUMMARY_KEYS == set(result["after"]["wow6432"])
    assert result["after"]["wow6432"]["proxy"] == "proxy.contoso.com:8080"
    assert result["previous_raw"]["wow6432"] is None
    assert result["views_disagree"] is False


def test_idempotent_second_run_makes_no_apply_call(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_both.json"])
    result = make_plugin(WANT).run(task_vars={})
    assert replay.names == ["winhttp_state"]
    assert result["changed"] is False and result["operations"] == []


def test_check_mode_runs_no_write_script(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_direct_both.json"])
    result = make_plugin(WANT, check_mode=True, diff=True).run(task_vars={})
    assert "winhttp_apply" not in replay.names
    assert result["changed"] is True
    assert [op["action"] for op in result["operations"]] == ["set", "set"]
    assert set(result["diff"]) >= {"before", "after"}


def test_diff_mode_in_a_real_run(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_proxy_native_only.json"], winhttp_apply=["apply_set_both.json"])
    result = make_plugin(WANT, diff=True).run(task_vars={})
    assert "wow6432: direct (no value)" in result["diff"]["before"]
    assert "wow6432: proxy proxy.contoso.com:8080" in result["diff"]["after"]


def test_restore_previous_raw(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_proxy_native_only.json"])
    restored = make_plugin({"restore": {"native": DIRECT_B64, "wow6432": None}}, check_mode=True).run(task_vars={})
    assert not restored.get("failed"), restored
    assert [(op["view"], op["action"]) for op in restored["operations"]] == [("native", "restore")]
    assert restored["after"]["native"]["raw_b64"] == DIRECT_B64


def test_failed_netsh_is_a_failed_task_with_the_full_result(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_direct_both.json"], winhttp_apply=["apply_set_denied.json"])
    result = make_plugin(WANT).run(task_vars={})
    assert result["failed"] is True
    assert "Access is denied" in result["msg"]
    assert ALWAYS <= set(result)
    assert result["previous_raw"] == {"native": DIRECT_B64, "wow6432": DIRECT_B64}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"restore": {"native": None}, "proxy": "p:1"}, "mutually exclusive"),
        ({"restore": {"native": None}, "state": "absent"}, "mutually exclusive"),
        ({"restore": {"native": None}, "views": ["native"]}, "mutually exclusive"),
        ({"proxy": "p:1", "views": ["both"]}, "views"),
        ({"proxy": "p:1", "state": "gone"}, "state"),
    ],
)
def test_option_combinations_refused_by_the_spec(args: dict, fragment: str) -> None:
    with pytest.raises(AnsibleActionFail, match=fragment):
        make_plugin(args).run(task_vars={})


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "proxy is required"),
        ({"state": "absent", "proxy": "p:1"}, "cannot be used with state=absent"),
        ({"proxy": "proxy:8080\"; calc; \""}, "proxy: 'proxy:8080\"; calc; \"' contains"),
        ({"proxy": "p:1", "bypass": ["$(calc)"]}, "bypass: entry '$(calc)' contains '$'"),
        ({"proxy": "p:1", "views": []}, "views must name at least one"),
        ({"restore": {"native": "bm90IGEgdmFsdWU="}}, "restore.native: refusing to write a malformed value"),
    ],
)
def test_bad_values_fail_before_any_remote_command(winhttp_host, args: dict, fragment: str) -> None:
    replay = winhttp_host()
    result = make_plugin(args).run(task_vars={})
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert replay.scripts == []


def test_wrong_script_answer_is_refused(winhttp_host) -> None:
    answer = read_fixture("state_direct_both.json").replace('"winhttp_state"', '"cert_inventory"')
    winhttp_host(winhttp_state=[(0, answer, "")])
    result = make_plugin(WANT).run(task_vars={})
    assert result["failed"] is True and "cert_inventory" in result["msg"]


def test_apply_arguments_are_exactly_the_contract(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_direct_both.json"], winhttp_apply=["apply_set_both.json"])
    make_plugin({"proxy": "http=a.contoso.com:80;https=b.contoso.com:443"}).run(task_vars={})
    (args,) = replay.args_of("winhttp_apply")
    assert args == {"operations": [
        {"view": view, "action": "set", "proxy": "http=a.contoso.com:80;https=b.contoso.com:443", "bypass": "",
         "expect_b64": DIRECT_B64} for view in ("native", "wow6432")]}
    assert json.dumps(args)  # plain JSON, nothing else travels
