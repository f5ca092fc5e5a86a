"""The twin runs the collection's bootstrap as Windows would: the floor, the language mode, the payload on stdin."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from ansible.plugins.loader import shell_loader

from ansible_collections.crlfix.windows.plugins.module_utils._host_floor import below_floor_reason, parse_floor
from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _powershell as _seam
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._minify import minify
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    PS1_DIR,
    build_host_script,
    parse_host_document,
)
from tests.twin import bootstrap, executor, language_mode
from tests.twin.state import HostState, new_state, write_json_atomic

SHELL = shell_loader.get("powershell")


def encode(text: str) -> str:
    return SHELL._encode_script(text, as_list=False, strict_mode=False, preserve_rc=True)


def make_state(tmp_path: Path, build: int = 17763, **overrides: str) -> HostState:
    data = new_state("app01.lab.test", os_build=build, user="u", password="p")
    if overrides:
        data["os"]["overrides"] = overrides
    write_json_atomic(tmp_path / "host.json", data)
    return HostState.load(tmp_path / "host.json")


def send(state: HostState, command_script: str, stdin: bytes | None) -> executor.Outcome:
    """What the seam sends (Ansible's -EncodedCommand of ``command_script``, ``stdin``), run by the twin."""
    argv = SHELL._encode_script(command_script, as_list=True, strict_mode=False, preserve_rc=True)
    return executor.run(state, executor.parse(argv[0], argv[1:]), stdin or b"")


def send_script(state: HostState, name: str, args: dict | None = None) -> executor.Outcome:
    wire = _seam.wire_command(build_host_script(name, args or {}), encode)
    assert wire.stdin is not None  # every host script is past cmd.exe's limit now
    return send(state, wire.script, wire.stdin)


def payload(text: str) -> bytes:
    return base64.b64encode(_seam.compress(text))


def test_the_twin_holds_the_collections_loader_and_floor_as_they_go_on_the_wire() -> None:
    assert bootstrap.LOADER == _seam.LOADER
    assert bootstrap.floor_lines() == minify((PS1_DIR / "_host_floor.ps1").read_text(encoding="ascii")).splitlines()


@pytest.mark.parametrize("name", ["winhttp_state", "cert_inventory", "host_audit"])
def test_a_host_script_over_stdin_runs_to_its_document(tmp_path, name) -> None:
    out = send_script(make_state(tmp_path), name)
    assert out.rc == 0, out.stderr
    document = parse_host_document(name, out.rc, out.stdout, "")
    assert document["script"] == name
    if name == "host_audit":
        assert document["floor"]["missing"] == []


def test_a_constrained_language_host_answers_host_audit_with_the_floor_document(tmp_path) -> None:
    out = send_script(make_state(tmp_path, language_mode="ConstrainedLanguage"), "host_audit")
    assert (out.rc, out.stderr) == (0, "")
    assert out.stdout == ('{"script":"host_audit","schema":1,"floor":{"powershell":"5.1","dotnet_release":461814,'
                          '"language_mode":"ConstrainedLanguage","os_build":17763,"missing":["language_mode"]}}\r\n')
    floor = parse_floor(parse_host_document("host_audit", 0, out.stdout, "")["floor"])
    assert "FullLanguage (found ConstrainedLanguage" in below_floor_reason(floor)


def test_a_windows_powershell_20_host_answers_with_the_floor_before_anything_newer_is_parsed(tmp_path) -> None:
    out = send_script(make_state(tmp_path, build=7601), "host_audit")
    floor = json.loads(out.stdout)["floor"]
    assert (out.rc, floor["powershell"], floor["missing"]) == (0, "2.0", ["powershell", "dotnet"])


def test_a_constrained_language_host_refuses_the_other_scripts_in_the_loader(tmp_path) -> None:
    out = send_script(make_state(tmp_path, language_mode="ConstrainedLanguage"), "winhttp_state")
    assert out.rc == 1 and out.stdout == ""
    assert b"FullLanguage required: Windows PowerShell runs in ConstrainedLanguage mode on this host" in out.stderr


def test_a_constrained_language_host_refuses_a_script_on_the_command_line_in_common(tmp_path) -> None:
    state = make_state(tmp_path, language_mode="ConstrainedLanguage")
    script = "# crlfix-script: winhttp_state\n# crlfix-schema: 1\n$CrlfixArgs = ConvertFrom-Json -InputObject '{}'\n"
    out = send(state, script, None)
    assert out.rc == 1 and b"(AppLocker or Windows Defender Application Control)" in out.stderr


@pytest.mark.parametrize(("stdin", "text"), [
    (b"not base64!", b"The input is not a valid Base-64 string"),
    (base64.b64encode(b"\xff\xfe not deflate"), b"Found invalid data while decoding."),
])
def test_stdin_the_loader_cannot_read_fails_with_the_dotnet_text(tmp_path, stdin, text) -> None:
    out = send(make_state(tmp_path), _seam.LOADER, stdin)
    assert out.rc == 1 and text in out.stderr


def test_an_empty_stdin_runs_an_empty_script(tmp_path) -> None:
    assert (send(make_state(tmp_path), _seam.LOADER, b"").rc, send(make_state(tmp_path), _seam.LOADER, b"").stdout) \
        == (0, "")


def test_host_audit_without_its_floor_check_fails_as_its_last_line_would(tmp_path) -> None:
    # The body reads $CrlfixFloorJson: a payload sent without the floor on the command line cannot end well.
    lines = minify(build_host_script("host_audit", {})).splitlines()
    _preamble, rest = _seam.split_preamble(lines)
    out = send(make_state(tmp_path), _seam.LOADER, payload("\n".join(rest)))
    assert out.rc == 1 and b"Cannot bind argument to parameter 'InputObject' because it is null." in out.stderr


def test_an_unknown_schema_over_stdin_is_still_refused(tmp_path) -> None:
    script = "# crlfix-script: winhttp_state\n# crlfix-schema: 99\n$CrlfixArgs = ConvertFrom-Json -InputObject '{}'\n"
    out = send(make_state(tmp_path), _seam.LOADER, payload(script))
    assert out.rc == 1 and b"schema 99 is not supported" in out.stderr


def test_a_bootstrap_the_twin_does_not_know_is_not_run(tmp_path) -> None:
    state = make_state(tmp_path)
    other_preamble = "Write-Output 'hello'\n" + _seam.LOADER
    out = send(state, other_preamble, payload(build_host_script("winhttp_state", {})))
    assert out.rc == 1 and b"the twin runs no other PowerShell" in out.stderr
    # One character off the loader: not the bootstrap, so not a host script either.
    out = send(state, _seam.LOADER.replace("'Stop'", "'Continue'"), payload(build_host_script("winhttp_state", {})))
    assert out.rc == 1 and b"is not recognized" in out.stderr


def test_a_floor_check_with_a_dotnet_call_is_refused_on_a_constrained_language_host(tmp_path, monkeypatch) -> None:
    # The twin reads the floor against what Constrained Language refuses: [Environment] is no core type.
    lines = [*bootstrap.floor_lines()[:-1], "$CrlfixFloorRoot = [Environment]::GetEnvironmentVariable('windir')", "}"]
    monkeypatch.setattr(bootstrap, "floor_lines", lambda: lines)
    state = make_state(tmp_path, language_mode="ConstrainedLanguage")
    out = send(state, "\n".join([*lines, _seam.LOADER]), payload(build_host_script("host_audit", {})))
    assert out.rc == 1
    assert b"Method invocation is supported only on core types in this language mode." in out.stderr


@pytest.mark.parametrize(("source", "error_id"), [
    ("$client = New-Object System.Net.WebClient", "CannotCreateTypeConstrainedLanguage"),
    ("$client = New-Object -TypeName 'System.Net.WebClient'", "CannotCreateTypeConstrainedLanguage"),
    ("$path = [System.IO.Path]::Combine('a', 'b')", "MethodInvocationNotSupportedInConstrainedLanguage"),
    ("Add-Type -TypeDefinition 'public class X {}'", "CannotDefineNewType"),
    ("$stream = [System.IO.MemoryStream]$bytes", "ConversionSupportedOnlyToCoreTypes"),
])
def test_what_constrained_language_refuses(source, error_id) -> None:
    refusal = language_mode.first_refusal("$fine = [int]'1' + [string]2\n" + source)
    assert refusal is not None and refusal.error_id.startswith(error_id)


def test_the_floor_and_the_loaders_check_are_constrained_language_safe_and_the_rest_of_the_loader_is_not() -> None:
    assert language_mode.first_refusal("\n".join(bootstrap.floor_lines())) is None
    assert language_mode.first_refusal(bootstrap.LOADER_CHECK) is None
    # Without its language check the loader would be refused at its first New-Object: why the check comes first.
    refused = language_mode.first_refusal(bootstrap.LOADER[len(bootstrap.LOADER_CHECK):])
    assert refused is not None and refused.error_id.startswith("CannotCreateTypeConstrainedLanguage")
