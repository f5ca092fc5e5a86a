"""The winhttp_proxy action plugin end to end, with run_powershell replaced by a replaying fake host."""

from __future__ import annotations

import base64
import json
import typing as t

import pytest
import yaml

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
    # A failed result, not an exception: failed_when must be able to judge it, as for any module.
    result = make_plugin(args).run(task_vars={})
    assert result["failed"] is True and fragment in result["msg"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"state": "present"}, "proxy is required"),
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


# --- ansible.windows.win_http_proxy's forms (tests/integration/targets/winhttp_proxy_parity replays its suite) ------

def _state_with_ie(fixture: str, ie_proxy: dict[str, t.Any] | None) -> tuple[int, str, str]:
    document = json.loads(read_fixture(fixture))
    document["ie_proxy"] = ie_proxy
    return (0, json.dumps(document), "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"bypass": ["abc"]}, "missing parameter(s) required by 'bypass': proxy"),
        ({"proxy": "", "bypass": ["abc"]}, "missing parameter(s) required by 'bypass': proxy"),
        ({"proxy": {"fail1": "fail", "fail2": "fail"}},
         "Invalid keys found in proxy: fail1, fail2. Valid keys are http, https, ftp, socks."),
    ],
)
def test_win_http_proxy_argument_errors_word_for_word(winhttp_host, args: dict, message: str) -> None:
    replay = winhttp_host()
    result = make_plugin(args).run(task_vars={})
    assert (result["failed"], result["msg"]) == (True, message)
    assert replay.scripts == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"proxy": "p:1", "source": "ie"}, "parameters are mutually exclusive: proxy|source"),
        ({"bypass": ["a"], "source": "ie"}, "parameters are mutually exclusive: bypass|source"),
        ({"current": {"native": None}, "source": "ie"}, "parameters are mutually exclusive: current|source"),
        ({"source": "edge"}, "value of source must be one of: ie"),
    ],
)
def test_source_combinations_refused_by_the_spec(args: dict, fragment: str) -> None:
    result = make_plugin(args).run(task_vars={})
    assert result["failed"] is True and fragment in result["msg"]


@pytest.mark.parametrize("args", [{}, {"proxy": ""}, {"proxy": None}, {"proxy": "", "bypass": []}])
def test_no_proxy_without_state_means_direct_access(winhttp_host, args: dict) -> None:
    winhttp_host(winhttp_state=["state_proxy_both.json"])
    result = make_plugin(args, check_mode=True).run(task_vars={})
    assert not result.get("failed"), result
    assert [(op["view"], op["action"]) for op in result["operations"]] == [("native", "reset"), ("wow6432", "reset")]


def test_proxy_dict_and_portless_proxy_are_set(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_direct_both.json"])
    result = make_plugin({"proxy": {"socks": "proxy:888", "http": "proxy:8080"}}, check_mode=True).run(task_vars={})
    assert {op["proxy"] for op in result["operations"]} == {"http=proxy:8080;socks=proxy:888"}
    winhttp_host(winhttp_state=["state_direct_both.json"])
    result = make_plugin({"proxy": "proxyhost"}, check_mode=True).run(task_vars={})
    assert result["changed"] is True and result["after"]["native"]["proxy"] == "proxyhost"


def test_source_ie_imports_with_netsh_and_predicts_the_ie_values(winhttp_host) -> None:
    ie = {"proxy_enable": 1, "proxy_server": "proxyhost:8080", "proxy_override": "abc;def;<local>"}
    replay = winhttp_host(winhttp_state=[_state_with_ie("state_direct_both.json", ie)])
    result = make_plugin({"source": "ie"}, check_mode=True).run(task_vars={})
    assert not result.get("failed"), result
    assert replay.args_of("winhttp_state") == [{"include_ie_proxy": True}]
    assert [op["command"] for op in result["operations"]] == [
        r"%windir%\System32\netsh.exe winhttp import proxy source=ie",
        r"%windir%\SysWOW64\netsh.exe winhttp import proxy source=ie",
    ]
    assert result["after"]["native"]["proxy"] == "proxyhost:8080"
    assert result["after"]["wow6432"]["bypass"] == ["abc", "def", "<local>"]


def test_source_ie_is_idempotent_when_the_views_hold_the_ie_values(winhttp_host) -> None:
    native = json.loads(read_fixture("state_proxy_both.json"))["views"]["native"]["value_b64"]
    settings = base64.b64decode(native)
    proxy_len = int.from_bytes(settings[12:16], "little")
    proxy = settings[16:16 + proxy_len].decode()
    bypass = settings[20 + proxy_len:].decode()
    ie = {"proxy_enable": 1, "proxy_server": proxy.upper(), "proxy_override": bypass}
    replay = winhttp_host(winhttp_state=[_state_with_ie("state_proxy_both.json", ie)])
    result = make_plugin({"source": "ie"}).run(task_vars={})
    assert result["changed"] is False and result["operations"] == []
    assert replay.names == ["winhttp_state"]


@pytest.mark.parametrize("ie", [None, {"proxy_enable": 0, "proxy_server": "proxyhost:8080", "proxy_override": None},
                                {"proxy_enable": None, "proxy_server": None, "proxy_override": None}])
def test_source_ie_without_an_enabled_ie_proxy_is_direct_access(winhttp_host, ie: dict | None) -> None:
    winhttp_host(winhttp_state=[_state_with_ie("state_proxy_both.json", ie)])
    result = make_plugin({"source": "ie"}, check_mode=True).run(task_vars={})
    assert [op["action"] for op in result["operations"]] == ["reset", "reset"]
