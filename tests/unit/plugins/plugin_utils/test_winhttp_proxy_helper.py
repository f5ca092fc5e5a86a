"""plugin_utils/_winhttp_proxy.py: decode host state, plan per view, check mode, apply, verify, restore."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import ProxyValueError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _script as _host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import build_host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import (
    desired_from_args,
    gather_winhttp_proxy_info,
    manage_winhttp_proxy,
    restore_from_args,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import (
    ViewValue,
    decode_advproxy,
    parse_state,
)
from tests.unit.plugins.fixtures.host import script_args
from tests.unit.plugins.fixtures.hostile import HOSTILE_PROXIES
from tests.unit.plugins.fixtures.winhttp.replay import read_fixture
from tests.unit.plugins.fixtures.winhttp.values import DIRECT_B64, PROXY_B64, WANT


def state_of(name: str):
    return parse_state(json.loads(read_fixture(name)))


def run(args, *, check_mode=False, diff=False):
    return manage_winhttp_proxy(object(), args, check_mode=check_mode, diff=diff, task_action="crlfix.windows.t")


# --- decoding the state document -------------------------------------------------------------------------------

def test_parse_state_direct_both() -> None:
    state = state_of("state_direct_both.json")
    assert (state.computer_name, state.os_build, state.is_64bit) == ("LYNC-FE01", 17763, True)
    assert state.views["native"].summary() == {"present": True, "mode": "direct", "proxy": "", "bypass": [],
                                               "raw_b64": DIRECT_B64}
    assert not state.views_disagree


def test_absent_counts_as_direct_and_disagreement_is_detected() -> None:
    assert not state_of("state_absent_both.json").views_disagree
    assert state_of("state_absent_both.json").views["native"].summary()["mode"] == "direct"
    state = state_of("state_proxy_native_only.json")
    assert state.views_disagree
    assert state.views["native"].info()["counter"] == 3


def test_32bit_host_has_no_wow6432_view() -> None:
    state = state_of("state_32bit.json")
    assert state.views["wow6432"] is None
    assert not state.is_64bit and not state.views_disagree


def test_undecodable_view_reports_error_not_mode() -> None:
    info = state_of("state_truncated_native.json").views["native"].info()
    assert info["mode"] is None and info["proxy"] is None
    assert "offset 12" in info["error"]
    assert info["raw_b64"] == base64.b64encode(base64.b64decode(DIRECT_B64)[:14]).decode()


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"views": None}, "'views' must hold a 'native' object"),
        ({"views": {"native": {"present": "yes"}}}, "views.native must be an object with a boolean 'present'"),
        ({"views": {"native": {"present": True, "value_b64": "%%%"}}}, "views.native.value_b64"),
        ({"views": {"native": {"present": True, "value_b64": None}}}, "expected base64 text"),
    ],
)
def test_parse_state_refuses_malformed_documents(document: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_state(document)
    assert fragment in str(info.value)


def test_advproxy_is_parsed_or_reports_why_not() -> None:
    assert decode_advproxy(None) is None
    parsed = decode_advproxy(state_of("state_2022_advproxy.json").advproxy)
    assert (parsed["proxy"], parsed["proxy_bypass"], parsed["error"], parsed["rc"]) == ("localhost:8080", "*", None, 0)
    broken = decode_advproxy({"rc": 1, "output": "The following command was not found: winhttp show advproxy."})
    assert broken["proxy"] is None and broken["raw"] is None and "no JSON object" in broken["error"]


# --- option validation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"state": "present", "bypass": []}, "proxy is required"),
        ({"state": "absent", "proxy": "p:1"}, "cannot be used with state=absent"),
        ({"state": "absent", "bypass": ["<local>"]}, "cannot be used with state=absent"),
        ({"state": "present", "proxy": ""}, "proxy is required"),
        ({"proxy": "", "bypass": ["abc"]}, "missing parameter(s) required by 'bypass': proxy"),
        ({"bypass": ["abc"]}, "missing parameter(s) required by 'bypass': proxy"),
        ({"proxy": {"fail": "x"}}, "Invalid keys found in proxy: fail."),
        ({"proxy": 8080}, "expected a string like"),
    ],
)
def test_desired_from_args_errors(args: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        desired_from_args(args)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("restore", "fragment"),
    [
        ({}, "restore must map"),
        ("GAAA", "restore must map"),
        ({"both": None}, "unknown view 'both'"),
        ({"native": "%%"}, "restore.native"),
        ({"native": "GAAAAAAAAAAB"}, "refusing to write a malformed value"),
    ],
)
def test_restore_from_args_errors(restore: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        restore_from_args(restore)
    assert fragment in str(info.value)


# --- info ----------------------------------------------------------------------------------------------------

def test_info_is_one_read(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_native_only.json"])
    result = gather_winhttp_proxy_info(object(), task_action="t")
    assert replay.names == ["winhttp_state"]
    assert replay.args_of("winhttp_state") == [{}]
    assert result["views"]["native"]["proxy"] == "proxy.contoso.com:8080"
    assert result["views"]["wow6432"]["present"] is False
    assert result["views_disagree"] is True
    assert result["advproxy"] is None


# --- winhttp_proxy -------------------------------------------------------------------------------------------

def test_present_and_equal_makes_no_apply_call(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_both.json"])
    # Same setting spelled differently: case, bypass order, duplicates.
    result = run({**WANT, "proxy": "PROXY.contoso.com:8080", "bypass": ["*.CONTOSO.com", "<local>", "<local>"]})
    assert replay.names == ["winhttp_state"]
    assert result["changed"] is False and result["operations"] == []
    assert result["before"] == result["after"]
    assert result["previous_raw"] == {"native": PROXY_B64, "wow6432": PROXY_B64}


def test_set_only_the_view_that_differs(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_native_only.json"], winhttp_apply=["apply_set_both.json"])
    result = run(WANT)
    assert replay.names == ["winhttp_state", "winhttp_apply"]
    assert replay.args_of("winhttp_apply") == [{"operations": [
        {"view": "wow6432", "action": "set", "proxy": "proxy.contoso.com:8080", "bypass": "<local>;*.contoso.com",
         "expect_b64": None}]}]
    assert result["changed"] is True
    assert result["previous_raw"] == {"native": PROXY_B64, "wow6432": None}
    assert result["after"]["wow6432"]["mode"] == "proxy"
    assert result["views_disagree"] is False
    op = result["operations"][0]
    assert op["rc"] == 0 and "Proxy Server(s)" in op["output"]
    assert op["command"] == ('%windir%\\SysWOW64\\netsh.exe winhttp set proxy proxy-server="proxy.contoso.com:8080"'
                             ' bypass-list="<local>;*.contoso.com"')


def test_check_mode_predicts_and_runs_nothing_that_writes(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_direct_both.json"])
    result = run(WANT, check_mode=True, diff=True)
    assert replay.names == ["winhttp_state"]
    assert result["changed"] is True
    assert [op["view"] for op in result["operations"]] == ["native", "wow6432"]
    assert all("rc" not in op for op in result["operations"])
    after = result["after"]["native"]
    assert (after["mode"], after["proxy"], after["bypass"], after["raw_b64"]) == (
        "proxy", "proxy.contoso.com:8080", ["<local>", "*.contoso.com"], None)
    assert "native: direct" in result["diff"]["before"]
    assert "native: proxy proxy.contoso.com:8080 bypass=<local>;*.contoso.com" in result["diff"]["after"]


def test_only_the_views_asked_for(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_direct_both.json"])
    result = run({**WANT, "views": ["wow6432"]}, check_mode=True)
    assert [op["view"] for op in result["operations"]] == ["wow6432"]
    assert list(result["previous_raw"]) == ["wow6432"]
    assert result["views_disagree"] is True
    assert replay.names == ["winhttp_state"]


def test_absent_on_direct_or_missing_values_is_unchanged(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_absent_both.json", "state_direct_both.json"])
    for _fixture in ("state_absent_both.json", "state_direct_both.json"):
        result = run({"state": "absent", "bypass": [], "views": ["native", "wow6432"]})
        assert result["changed"] is False and result["operations"] == []


def test_absent_resets_proxy_views(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_proxy_native_only.json"])
    result = run({"state": "absent", "bypass": [], "views": ["native", "wow6432"]}, check_mode=True)
    assert result["operations"] == [{"view": "native", "action": "reset",
                                     "command": "%windir%\\System32\\netsh.exe winhttp reset proxy"}]
    assert result["after"]["native"]["mode"] == "direct"
    assert replay.names == ["winhttp_state"]


def test_32bit_host_skips_wow6432(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_32bit.json"])
    result = run(WANT, check_mode=True)
    assert [op["view"] for op in result["operations"]] == ["native"]
    assert result["previous_raw"] == {"native": DIRECT_B64}
    assert result["before"]["wow6432"] is None


def test_failed_netsh_fails_with_full_result(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_direct_both.json"], winhttp_apply=["apply_set_denied.json"])
    with pytest.raises(ExpectedFailure) as info:
        run(WANT)
    assert "set on view native failed (rc 1): Error writing proxy settings. (5) Access is denied." in str(info.value)
    result = info.value.fields
    assert result["changed"] is False
    assert result["previous_raw"] == {"native": DIRECT_B64, "wow6432": DIRECT_B64}
    assert "rc" not in result["operations"][1]


def test_success_without_effect_is_reported(winhttp_host) -> None:
    # netsh said rc 0 but the read-back still shows direct access (for example a GPO rewrote it).
    stale = json.loads(read_fixture("apply_set_both.json"))
    stale["views"] = json.loads(read_fixture("state_direct_both.json"))["views"]
    winhttp_host(winhttp_state=["state_direct_both.json"], winhttp_apply=[(0, json.dumps(stale), "")])
    with pytest.raises(ExpectedFailure, match="does not hold the requested setting"):
        run(WANT)


def apply_answer(state_fixture: str, results: list[dict]) -> tuple[int, str, str]:
    """A winhttp_apply answer: the given results plus the views of a recorded state."""
    document = json.loads(read_fixture(state_fixture))
    document.update(script="winhttp_apply", results=results)
    return 0, json.dumps(document) + "\r\n", ""


def test_restore_writes_exact_bytes_only_where_they_differ(winhttp_host) -> None:
    after = json.loads(read_fixture("state_proxy_both.json"))
    after["views"]["native"]["value_b64"] = DIRECT_B64
    replay = winhttp_host(winhttp_state=["state_proxy_both.json"], winhttp_apply=[(0, json.dumps(
        {**after, "script": "winhttp_apply", "results": [{"view": "native", "action": "restore", "rc": 0,
                                                          "output": ""}]}), "")])
    result = run({"restore": {"native": DIRECT_B64, "wow6432": PROXY_B64}})
    assert replay.args_of("winhttp_apply") == [{"operations": [
        {"view": "native", "action": "restore", "value_b64": DIRECT_B64, "expect_b64": PROXY_B64}]}]
    assert result["changed"] is True
    assert result["after"]["native"]["raw_b64"] == DIRECT_B64
    assert result["previous_raw"] == {"native": PROXY_B64, "wow6432": PROXY_B64}


def test_apply_answer_without_results_fails(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_direct_both.json"], winhttp_apply=[apply_answer("state_proxy_both.json", [])])
    with pytest.raises(ExpectedFailure, match="not run"):
        run(WANT)


def test_restore_round_trip_from_previous_raw(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_proxy_native_only.json"])
    result = run(WANT, check_mode=True)
    replay = winhttp_host(winhttp_state=["state_proxy_both.json"])
    restored = run({"restore": result["previous_raw"]}, check_mode=True)
    assert restored["operations"] == [{"view": "wow6432", "action": "restore", "value_b64": None,
                                       "command": "delete HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\"
                                                  "CurrentVersion\\Internet Settings\\Connections\\WinHttpSettings"}]
    assert restored["after"]["wow6432"] == {"present": False, "mode": "direct", "proxy": "", "bypass": [],
                                            "raw_b64": None}
    assert replay.names == ["winhttp_state"]


def test_restore_of_wow6432_on_32bit_is_refused(winhttp_host) -> None:
    winhttp_host(winhttp_state=["state_32bit.json"])
    with pytest.raises(ValueError, match="32-bit"):
        run({"restore": {"wow6432": None}})


@pytest.mark.parametrize("hostile", HOSTILE_PROXIES)
def test_hostile_proxy_is_refused_before_any_remote_command(winhttp_host, hostile: str) -> None:
    replay = winhttp_host()
    with pytest.raises(ProxyValueError):
        run({**WANT, "proxy": hostile})
    with pytest.raises(ProxyValueError):
        run({**WANT, "bypass": ["<local>", hostile]})
    assert replay.scripts == []


@pytest.mark.parametrize("hostile", HOSTILE_PROXIES)
def test_hostile_text_stays_inside_the_one_literal(hostile: str) -> None:
    # Defence in depth: even a value that slipped past validation only travels as data.
    operations = [{"view": "native", "action": "set", "proxy": hostile, "bypass": hostile}]
    script = build_host_script("winhttp_apply", {"operations": operations})
    assert script_args(script) == {"operations": operations}
    body = "\n".join(script.splitlines()[3:])
    assert json.dumps(hostile)[1:-1] not in body or hostile.isalnum()


def test_view_value_equality_is_behavioural() -> None:
    direct = ViewValue.from_raw(base64.b64decode(DIRECT_B64))
    assert direct.effective() == ViewValue.from_raw(None).effective()
    assert direct.effective() != ViewValue.from_raw(base64.b64decode(PROXY_B64)).effective()


@pytest.mark.parametrize("views", [["native"], ["native", "wow6432"]])
def test_typical_apply_is_one_command(views: list[str]) -> None:
    # cmd.exe refuses command lines over 8191 characters: an apply travels on stdin (docs/dev/host-scripts.md),
    # still one remote command, plus one WinRS Send.
    from ansible.plugins.loader import shell_loader

    from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _powershell as _pwsh_exec

    class Connection:
        _shell = shell_loader.get("powershell")

        def __init__(self) -> None:
            self.calls: list[tuple[str, bytes | None]] = []

        def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True):
            self.calls.append((cmd, in_data))
            return 0, b"", b""

    operations = [{"view": view, "action": "set", "proxy": "proxy.contoso.com:8080",
                   "bypass": "<local>;*.contoso.com", "expect_b64": DIRECT_B64} for view in views]
    script = build_host_script("winhttp_apply", {"operations": operations})
    connection = Connection()
    _pwsh_exec.run_powershell(connection, script, task_action="t")
    ((command, in_data),) = connection.calls
    assert len(command) <= _pwsh_exec.CMD_LINE_LIMIT
    # One command: the script on the command line, or its bootstrap there and the script on stdin (the seam).
    assert in_data is None or zlib.decompress(base64.b64decode(in_data), -15).decode("utf-8").startswith(
        "# crlfix-script: winhttp_apply\n")


@pytest.mark.parametrize("name", ["_common", "winhttp_state", "winhttp_apply"])
def test_scripts_never_evaluate_text_as_code(name: str) -> None:
    # Arguments reach netsh as separate argv entries; nothing builds code from $CrlfixArgs.
    text = (_host_script.PS1_DIR / f"{name}.ps1").read_text(encoding="utf-8").lower()
    for forbidden in ("invoke-expression", "iex ", "start-process", "cmd /c", "cmd.exe", "[scriptblock]::create",
                      "@'", '@"'):
        assert forbidden not in text, f"{name}.ps1 uses {forbidden!r}"
