"""winhttp_proxy with ``current`` (no re-read) and the schema-2 compare and swap, at the remote seam.

Values: ``DIRECT_B64`` is Microsoft Learn's direct-access value and ``PROXY_B64`` a proxy value in the layout
of plugins/module_utils/_winhttp_settings.py; see fixtures/winhttp/SOURCES.md.
"""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.crlfix.windows.plugins.action import winhttp_proxy
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import (
    gather_winhttp_proxy_info,
    manage_winhttp_proxy,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import current_from_args, state_from_raw
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.winhttp.replay import read_fixture
from tests.unit.plugins.fixtures.winhttp.values import DIRECT_B64, PROXY_B64, WANT


def run(args, *, check_mode=False, current=None):
    return manage_winhttp_proxy(object(), args, check_mode=check_mode, diff=True, task_action="t", current=current)


def apply_answer(state_fixture: str, results: list[dict], conflicts: list[dict] | None = None) -> tuple:
    """A schema-2 winhttp_apply answer: results, conflicts and the views of a recorded state."""
    document = json.loads(read_fixture(state_fixture))
    document.update(script="winhttp_apply", schema=2, results=results, conflicts=conflicts or [])
    return 0, json.dumps(document) + "\r\n", ""


SET_OK = [{"view": view, "action": "set", "rc": 0, "output": ""} for view in ("native", "wow6432")]


# --- state_from_raw / current_from_args ----------------------------------------------------------------------

def test_state_from_raw_takes_bytes_text_and_none() -> None:
    state = state_from_raw({"native": base64.b64decode(PROXY_B64), "wow6432": None})
    assert state.views["native"].summary()["proxy"] == "proxy.contoso.com:8080"
    assert state.views["wow6432"].present is False
    assert state.is_64bit and state.views_disagree
    assert state_from_raw({"native": DIRECT_B64, "wow6432": DIRECT_B64}).views["native"].raw == \
        base64.b64decode(DIRECT_B64)


def test_omitted_wow6432_is_a_32bit_host() -> None:
    state = state_from_raw({"native": DIRECT_B64})
    assert state.views["wow6432"] is None and not state.is_64bit


@pytest.mark.parametrize(
    ("current", "fragment"),
    [
        ({"native": "%%%"}, "current.native: '%%%' is not valid base64"),
        ({"native": DIRECT_B64, "wow64": None}, "current: unknown view 'wow64'"),
        ({"wow6432": DIRECT_B64}, "the native view is required"),
        ({"native": 18}, "current.native: expected base64 text or null, got 18"),
        ({}, "current must map native"),
        ("GAAA", "current must map native"),
        ({"native": {"present": True, "raw_b64": DIRECT_B64}, "wow6432": DIRECT_B64}, "do not mix objects"),
        ({"native": {"present": True, "raw_b64": None}}, "a check-mode prediction is not a value that was read"),
        ({"native": {"present": True, "value_b64": "!!"}}, "current.native: '!!' is not valid base64"),
    ],
)
def test_bad_current_names_the_field_and_value(current: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        current_from_args(current)
    assert fragment in str(info.value)


def test_current_accepts_what_the_info_modules_return(winhttp_host) -> None:
    # winhttp_proxy_info's views (raw_b64) and cert_revocation_info's winhttp.views (value_b64, the
    # winhttp_state document) give the same state as the plain base64 map.
    winhttp_host(winhttp_state=["state_proxy_native_only.json"])
    info_views = gather_winhttp_proxy_info(object(), task_action="t")["views"]
    document_views = json.loads(read_fixture("state_proxy_native_only.json"))["views"]
    plain = {"native": PROXY_B64, "wow6432": None}
    expected = state_from_raw(plain).views
    assert current_from_args(info_views).views == expected
    assert current_from_args(document_views).views == expected
    assert current_from_args(plain).views == expected


def test_views_form_null_means_no_such_view() -> None:
    views = json.loads(read_fixture("state_32bit.json"))["views"]
    assert views["wow6432"] is None
    assert current_from_args(views).views["wow6432"] is None


# --- no re-read -----------------------------------------------------------------------------------------------

def test_check_mode_with_current_runs_no_remote_command(winhttp_host) -> None:
    replay = winhttp_host()
    result = run(WANT, check_mode=True, current=state_from_raw({"native": DIRECT_B64, "wow6432": None}))
    assert replay.scripts == []
    assert result["changed"] is True
    assert [op["view"] for op in result["operations"]] == ["native", "wow6432"]
    assert result["previous_raw"] == {"native": DIRECT_B64, "wow6432": None}
    assert result["after"]["wow6432"]["proxy"] == "proxy.contoso.com:8080"


def test_apply_with_current_is_exactly_one_command_carrying_expect_b64(winhttp_host) -> None:
    replay = winhttp_host(winhttp_apply=[apply_answer("state_proxy_both.json", SET_OK)])
    result = run(WANT, current=state_from_raw({"native": DIRECT_B64, "wow6432": None}))
    assert replay.names == ["winhttp_apply"]
    assert replay.args_of("winhttp_apply") == [{"operations": [
        {"view": "native", "action": "set", "proxy": "proxy.contoso.com:8080", "bypass": "<local>;*.contoso.com",
         "expect_b64": DIRECT_B64},
        {"view": "wow6432", "action": "set", "proxy": "proxy.contoso.com:8080", "bypass": "<local>;*.contoso.com",
         "expect_b64": None}]}]
    assert replay.scripts[0].splitlines()[1] == "# crlfix-schema: 2"
    assert result["changed"] is True and "conflicts" not in result
    assert result["after"]["native"]["raw_b64"] == PROXY_B64


def test_equal_current_makes_no_remote_command(winhttp_host) -> None:
    replay = winhttp_host()
    result = run(WANT, current=state_from_raw({"native": PROXY_B64, "wow6432": PROXY_B64}))
    assert replay.scripts == [] and result["changed"] is False


def test_restore_with_current(winhttp_host) -> None:
    current = state_from_raw({"native": PROXY_B64, "wow6432": PROXY_B64})
    replay = winhttp_host()
    checked = run({"restore": {"native": DIRECT_B64, "wow6432": None}}, check_mode=True, current=current)
    assert replay.scripts == []
    assert [op["view"] for op in checked["operations"]] == ["native", "wow6432"]
    after = json.loads(read_fixture("state_proxy_both.json"))
    after["views"]["native"]["value_b64"] = DIRECT_B64
    after["views"]["wow6432"].update(present=False, value_b64=None)
    after.update(script="winhttp_apply", schema=2, conflicts=[],
                 results=[{"view": v, "action": "restore", "rc": 0, "output": ""} for v in ("native", "wow6432")])
    replay = winhttp_host(winhttp_apply=[(0, json.dumps(after), "")])
    result = run({"restore": {"native": DIRECT_B64, "wow6432": None}}, current=current)
    assert replay.names == ["winhttp_apply"]
    assert [op["expect_b64"] for op in replay.args_of("winhttp_apply")[0]["operations"]] == [PROXY_B64, PROXY_B64]
    assert result["changed"] is True


def test_restore_of_wow6432_left_out_of_current_is_refused(winhttp_host) -> None:
    replay = winhttp_host()
    with pytest.raises(ValueError, match="current leaves it out"):
        run({"restore": {"wow6432": None}}, current=state_from_raw({"native": DIRECT_B64}))
    assert replay.scripts == []


def test_without_current_the_expectations_come_from_the_read(winhttp_host) -> None:
    replay = winhttp_host(winhttp_state=["state_direct_both.json"],
                          winhttp_apply=[apply_answer("state_proxy_both.json", SET_OK)])
    run(WANT)
    assert replay.names == ["winhttp_state", "winhttp_apply"]
    assert [op["expect_b64"] for op in replay.args_of("winhttp_apply")[0]["operations"]] == [DIRECT_B64] * 2


# --- compare and swap ----------------------------------------------------------------------------------------

def test_changed_since_read_is_an_expected_failure_and_nothing_is_written(winhttp_host) -> None:
    # The host (say a GPO refresh) put a proxy into the native view after the caller read direct access.
    conflicts = [{"view": "native", "expected_b64": DIRECT_B64, "found_b64": PROXY_B64}]
    winhttp_host(winhttp_apply=[apply_answer("state_proxy_native_only.json", [], conflicts)])
    with pytest.raises(ExpectedFailure) as info:
        run({**WANT, "proxy": "other.contoso.com:3128"}, current=state_from_raw({"native": DIRECT_B64,
                                                                                 "wow6432": None}))
    assert str(info.value) == (f"WinHttpSettings in view native changed since it was read (expected {DIRECT_B64}, "
                               f"found {PROXY_B64}); nothing was written")
    result = info.value.fields
    assert result["changed"] is False and result["conflicts"] == conflicts
    assert all("rc" not in op for op in result["operations"])
    assert result["after"]["native"]["raw_b64"] == PROXY_B64  # what the host holds now, read back


def test_conflict_on_a_value_that_disappeared_says_no_value(winhttp_host) -> None:
    conflicts = [{"view": "wow6432", "expected_b64": DIRECT_B64, "found_b64": None}]
    winhttp_host(winhttp_apply=[apply_answer("state_proxy_native_only.json", [], conflicts)])
    with pytest.raises(ExpectedFailure, match=r"view wow6432 changed since it was read \(expected GAAA.*, found no "
                                              r"value\); nothing was written"):
        run(WANT, current=state_from_raw({"native": PROXY_B64, "wow6432": DIRECT_B64}))


# --- through the action plugin --------------------------------------------------------------------------------

def test_action_option_current_check_mode_is_free(winhttp_host) -> None:
    replay = winhttp_host()
    plugin = make_action(winhttp_proxy.ActionModule, "crlfix.windows.winhttp_proxy",
                         {"proxy": "proxy.contoso.com:8080", "current": {"native": DIRECT_B64, "wow6432": None}},
                         check_mode=True)
    result = plugin.run(task_vars={})
    assert not result.get("failed"), result
    assert replay.scripts == [] and result["changed"] is True


def test_action_bad_current_fails_before_any_remote_command(winhttp_host) -> None:
    replay = winhttp_host()
    plugin = make_action(winhttp_proxy.ActionModule, "crlfix.windows.winhttp_proxy",
                         {"proxy": "proxy.contoso.com:8080", "current": {"native": "not base64!"}})
    result = plugin.run(task_vars={})
    assert result["failed"] is True
    assert result["msg"] == "crlfix.windows.winhttp_proxy: current.native: 'not base64!' is not valid base64"
    assert replay.scripts == []
