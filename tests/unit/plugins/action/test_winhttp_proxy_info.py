"""The winhttp_proxy_info action plugin end to end, with run_powershell replaced by a replaying fake host."""

from __future__ import annotations

import typing as t

import pytest
import yaml
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.action import winhttp_proxy_info
from ansible_collections.crlfix.windows.plugins.modules import winhttp_proxy_info as module_doc
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.host import FakeHost

RETURN = yaml.safe_load(module_doc.RETURN)
VIEW_KEYS = {"present", "mode", "proxy", "bypass", "raw_b64", "version", "counter", "flags", "error"}


def make_plugin(args: dict[str, t.Any], *, check_mode: bool = False) -> winhttp_proxy_info.ActionModule:
    return make_action(winhttp_proxy_info.ActionModule, "crlfix.windows.winhttp_proxy_info", args,
                       check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
def test_one_remote_command_and_documented_keys(winhttp_host, check_mode: bool) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_native_only.json"])
    result = make_plugin({}, check_mode=check_mode).run(task_vars={})
    assert replay.names == ["winhttp_state"]
    assert not result.get("failed"), result
    assert set(RETURN) <= set(result)
    assert result["changed"] is False
    assert (result["computer_name"], result["os_build"], result["is_64bit"]) == ("LYNC-FE01", 17763, True)
    assert set(result["views"]["native"]) == VIEW_KEYS
    native = result["views"]["native"]
    assert (native["mode"], native["proxy"], native["bypass"]) == ("proxy", "proxy.contoso.com:8080",
                                                                   ["<local>", "*.contoso.com"])
    assert (native["version"], native["counter"], native["flags"]) == (24, 3, 3)
    assert result["views"]["wow6432"]["present"] is False
    assert result["views_disagree"] is True


def test_server_2022_reports_advproxy(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_2022_advproxy.json"])
    result = make_plugin({}).run(task_vars={})
    assert result["os_build"] == 20348
    assert result["advproxy"]["proxy"] == "localhost:8080"
    assert set(result["advproxy"]) >= set(RETURN["advproxy"]["contains"])


def test_32bit_host(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_32bit.json"])
    result = make_plugin({}).run(task_vars={})
    assert result["views"]["wow6432"] is None and result["views_disagree"] is False


def test_truncated_value_is_reported_per_view(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_truncated_native.json"])
    result = make_plugin({}).run(task_vars={})
    assert not result.get("failed")
    assert result["views"]["native"]["mode"] is None
    assert "truncated" in result["views"]["native"]["error"]
    assert result["views_disagree"] is True


def test_script_failure_is_a_failed_task(winhttp_host) -> None:
    winhttp_host(winhttp_state=[(1, "", "Get-CimInstance : Access denied")])
    result = make_plugin({}).run(task_vars={})
    assert result["failed"] is True
    assert "Access denied" in result["msg"] and result["rc"] == 1


def test_unknown_schema_is_refused(winhttp_host) -> None:
    winhttp_host(winhttp_state=[(0, '{"script": "winhttp_state", "schema": 99}\r\n', "")])
    result = make_plugin({}).run(task_vars={})
    assert result["failed"] is True and "schema 99" in result["msg"]


def test_transport_failure_is_unreachable(monkeypatch) -> None:
    FakeHost(monkeypatch, reply=AnsibleConnectionFailure("winrm: connection refused"))
    result = make_plugin({}).run(task_vars={})
    assert result["unreachable"] is True and "connection refused" in result["msg"]


def test_unknown_option_is_refused() -> None:
    with pytest.raises(AnsibleActionFail, match="proxy"):
        make_plugin({"proxy": "p:1"}).run(task_vars={})
