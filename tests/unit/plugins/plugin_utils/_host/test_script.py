"""Host script building and the checks on the document a host answers with."""

from __future__ import annotations

import json

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _script as _host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    HostScriptError,
    build_host_script,
    parse_host_document,
    run_host_script,
)
from tests.unit.plugins.fixtures.host import FakeHost, unquote


@pytest.fixture
def fake_ps1(tmp_path, monkeypatch):
    (tmp_path / "_common.ps1").write_text("$ErrorActionPreference = 'Stop'\n")
    (tmp_path / "_winhttp.ps1").write_text("# the winhttp_state fragment\n")
    (tmp_path / "winhttp_state.ps1").write_text("@{script='winhttp_state'; schema=1} | ConvertTo-Json\n")
    monkeypatch.setattr(_host_script, "PS1_DIR", tmp_path)
    return tmp_path


def test_header_carries_name_schema_and_args_as_one_literal(fake_ps1) -> None:
    args = {"proxy": "p'1:8080", "list": ["<local>", "*.contoso.com"]}
    lines = build_host_script("winhttp_state", args).splitlines()
    assert lines[0] == "# crlfix-script: winhttp_state"
    assert lines[1] == "# crlfix-schema: 1"
    prefix = "$CrlfixArgs = ConvertFrom-Json -InputObject "
    assert lines[2].startswith(prefix)
    assert json.loads(unquote(lines[2][len(prefix):])) == args
    assert lines[3] == "$ErrorActionPreference = 'Stop'"


def test_unknown_script_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown host script 'nope'"):
        build_host_script("nope", {})


GOOD = '{"script": "winhttp_state", "schema": 1, "views": {}}'


def test_parse_takes_last_line() -> None:
    doc = parse_host_document("winhttp_state", 0, "WARNING: something\r\n" + GOOD + "\r\n", "")
    assert doc["views"] == {}


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "message"),
    [
        (1, "", "Access is denied.", "failed with rc 1: Access is denied."),
        (0, "", "", "did not print a JSON document"),
        (0, "not json", "", "did not print a JSON document"),
        (0, "[1, 2]", "", "printed list, not an object"),
        (0, '{"script": "cert_inventory", "schema": 1}', "", "got script='cert_inventory'"),
        (0, '{"script": "winhttp_state", "schema": 99}', "", "answered with schema 99"),
        (0, '{"script": "winhttp_state"}', "", "answered with schema None"),
    ],
)
def test_bad_documents_are_refused(rc, stdout, stderr, message) -> None:
    with pytest.raises(HostScriptError, match=message) as info:
        parse_host_document("winhttp_state", rc, stdout, stderr)
    assert info.value.fields == {"rc": rc, "stdout": stdout, "stderr": stderr}


def test_run_host_script_goes_through_the_seam(fake_ps1, monkeypatch) -> None:
    host = FakeHost(monkeypatch, GOOD)
    doc = run_host_script("conn", "winhttp_state", {}, task_action="crlfix.windows.winhttp_proxy_info")
    assert doc["script"] == "winhttp_state"
    assert host.connections == ["conn"]
    assert host.scripts[0].startswith("# crlfix-script: winhttp_state")
