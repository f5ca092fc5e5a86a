"""The remote seam: -EncodedCommand, stdin fallback, and transport errors as AnsibleConnectionFailure."""

from __future__ import annotations

import base64
import typing as t

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.loader import shell_loader

from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _powershell as _pwsh_exec


class FakeConnection:
    """Stands in for the winrm connection: records exec_command calls, replies as told."""

    def __init__(self, reply: t.Any = (0, b"out", b"")) -> None:
        self._shell = shell_loader.get("powershell")
        self.reply = reply
        self.calls: list[tuple[str, bytes | None]] = []

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        self.calls.append((cmd, in_data))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


def decode_command(cmd: str) -> str:
    parts = cmd.split(" ")
    assert parts[0].lower() == "powershell"
    assert parts[-2] == "-EncodedCommand"
    return base64.b64decode(parts[-1]).decode("utf-16-le")


def test_small_script_goes_as_encoded_command() -> None:
    conn = FakeConnection((0, b"{\"a\": 1}\r\n", b""))
    rc, out, err = _pwsh_exec.run_powershell(conn, "Write-Output 'x'", task_action="t")
    assert (rc, out, err) == (0, '{"a": 1}\r\n', "")
    (cmd, in_data), = conn.calls
    assert in_data is None
    decoded = decode_command(cmd)
    assert decoded.startswith("Write-Output 'x'")
    assert "exit $LASTEXITCODE" in decoded  # rc of the last native command is preserved


def test_long_script_goes_over_stdin() -> None:
    conn = FakeConnection()
    script = "# " + "x" * 5000
    _pwsh_exec.run_powershell(conn, script, task_action="t")
    (cmd, in_data), = conn.calls
    assert len(cmd) <= _pwsh_exec.CMD_LINE_LIMIT
    assert decode_command(cmd).startswith(_pwsh_exec.STDIN_BOOTSTRAP)
    assert in_data == script.encode("utf-8")


def test_the_stdin_bootstrap_checks_the_language_mode_before_it_creates_the_script_block() -> None:
    # Over stdin a Constrained Language host must answer "FullLanguage required" too.
    bootstrap = _pwsh_exec.STDIN_BOOTSTRAP
    check = bootstrap.index("$ExecutionContext.SessionState.LanguageMode")
    assert check < bootstrap.index("FullLanguage required") < bootstrap.index("[ScriptBlock]::Create")
    assert check < bootstrap.index("$input")
    assert len(bootstrap) < 300  # it rides on the command line, UTF-16-LE base64


def test_limit_boundary_is_the_cmd_exe_limit() -> None:
    assert _pwsh_exec.CMD_LINE_LIMIT == 8191


@pytest.mark.parametrize(
    "error",
    [AnsibleError("winrm send_input failed"), ConnectionResetError("reset by peer"), OSError("no route")],
)
def test_transport_errors_become_connection_failures(error: BaseException) -> None:
    conn = FakeConnection(error)
    with pytest.raises(AnsibleConnectionFailure, match="mytask"):
        _pwsh_exec.run_powershell(conn, "hostname", task_action="mytask")


def test_connection_failure_passes_through_unchanged() -> None:
    original = AnsibleConnectionFailure("ntlm: auth failed")
    conn = FakeConnection(original)
    with pytest.raises(AnsibleConnectionFailure) as info:
        _pwsh_exec.run_powershell(conn, "hostname", task_action="t")
    assert info.value is original


def test_output_is_decoded_strictly() -> None:
    conn = FakeConnection((3, "é".encode(), b"boom"))
    assert _pwsh_exec.run_powershell(conn, "x", task_action="t") == (3, "é", "boom")


@pytest.fixture
def log(monkeypatch) -> list[tuple[str, str | None]]:
    """What the seam printed through Ansible's Display at -vvvvv (a real Display, its output captured)."""
    shown: list[tuple[str, str | None]] = []
    monkeypatch.setattr(_pwsh_exec.display, "verbosity", 5)
    monkeypatch.setattr(_pwsh_exec.display, "display",
                        lambda msg, *a, **k: shown.append((msg, k.get("color"))))
    return shown


def test_every_command_is_logged_at_vvvvv_with_its_script_name_rc_and_output(log) -> None:
    conn = FakeConnection((1, b'{"script": "crl_fetch"}', b"Access is denied."))
    script = "# crlfix-script: crl_fetch\n# crlfix-schema: 1\n$CrlfixArgs = ConvertFrom-Json -InputObject '{}'\n"
    _pwsh_exec.run_powershell(conn, script, task_action="crlfix.windows.crl_retrieval_check")
    text = "\n".join(msg for msg, _color in log)
    assert "crlfix.windows.crl_retrieval_check: host script crl_fetch returned rc 1" in text
    assert 'stdout: {"script": "crl_fetch"}' in text and "stderr: Access is denied." in text
    assert "ConvertFrom-Json" not in text  # the script and its arguments stay out of the log


def test_nothing_is_logged_below_vvvvv(log, monkeypatch) -> None:
    monkeypatch.setattr(_pwsh_exec.display, "verbosity", 4)
    _pwsh_exec.run_powershell(FakeConnection((0, b"secretless output", b"")), "hostname", task_action="t")
    assert not any("secretless output" in msg for msg, _color in log)
    assert any("running host script unnamed script" in msg for msg, _color in log)
