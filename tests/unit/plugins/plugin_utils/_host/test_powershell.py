"""The remote seam: -EncodedCommand, stdin fallback, and transport errors as AnsibleConnectionFailure."""

from __future__ import annotations

import base64
import json
import re
import typing as t
import zlib

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.loader import shell_loader

from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _powershell as _pwsh_exec
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._minify import minify
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import PS1_DIR, build_host_script


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
    rc, out, err = _pwsh_exec.run_powershell(conn, "Write-Output 'x'  # what PowerShell does not need", task_action="t")
    assert (rc, out, err) == (0, '{"a": 1}\r\n', "")
    (cmd, in_data), = conn.calls
    assert in_data is None
    decoded = decode_command(cmd)
    assert decoded.startswith("Write-Output 'x'\n")  # minified: the comment stays home
    assert "exit $LASTEXITCODE" in decoded  # rc of the last native command is preserved


def test_long_script_goes_over_stdin_deflated_behind_the_loader() -> None:
    conn = FakeConnection()
    script = build_host_script("crl_fetch", {"urls": ["http://crl.example.test/x.crl"]})
    _pwsh_exec.run_powershell(conn, script, task_action="t")
    (cmd, in_data), = conn.calls
    assert len(cmd) <= _pwsh_exec.CMD_LINE_LIMIT
    assert decode_command(cmd).startswith(_pwsh_exec.LOADER)  # crl_fetch has no preamble
    payload = zlib.decompress(base64.b64decode(in_data), -15).decode("utf-8")
    assert payload == "\n".join(minify(script).splitlines()) + "\n"
    assert payload.startswith("# crlfix-script: crl_fetch\n# crlfix-schema: 1\n$CrlfixArgs = ")


def test_host_audits_floor_check_rides_on_the_command_line_before_the_loader() -> None:
    # A Constrained Language host cannot inflate the payload: the floor must answer from the command line.
    conn = FakeConnection()
    _pwsh_exec.run_powershell(conn, build_host_script("host_audit", {}), task_action="t")
    (cmd, in_data), = conn.calls
    bootstrap = decode_command(cmd)
    floor = minify((PS1_DIR / "_host_floor.ps1").read_text(encoding="ascii"))
    assert bootstrap.startswith(floor + _pwsh_exec.LOADER)
    assert "$CrlfixFloorPowerShellMajor" not in zlib.decompress(base64.b64decode(in_data), -15).decode("utf-8")


def test_the_loader_checks_the_language_mode_before_it_touches_a_dotnet_type() -> None:
    # about_Language_Modes: New-Object and method calls work only on the core types in ConstrainedLanguage.
    loader = _pwsh_exec.LOADER
    check = loader.index("$ExecutionContext.SessionState.LanguageMode")
    assert check < loader.index("FullLanguage required") < loader.index("New-Object") < loader.index("$input")
    assert loader.index("FullLanguage required") < loader.index("[Convert]::")


def test_a_bootstrap_that_outgrows_the_command_line_is_refused_here() -> None:
    script = build_host_script("host_audit", {})
    with pytest.raises(ValueError, match="bootstrap of this script is [0-9]+ characters"):
        _pwsh_exec.wire_command(script, lambda text: text, limit=len(_pwsh_exec.LOADER) + 10)


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


def deflated_line(document: str, level: int = 6) -> str:
    """What Write-CrlfixDocument prints for a long document: DeflateStream (zlib's raw DEFLATE) in base64."""
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    data = base64.b64encode(packer.compress(document.encode("ascii")) + packer.flush()).decode("ascii")
    return f'{{"script":"host_audit","schema":2,"deflated":"{data}"}}'


def test_a_deflated_document_reaches_the_caller_inflated_and_what_came_before_it_stays() -> None:
    urls = ",".join(f'{{"url":"http://crl.example.test/{i}.crl","status":200}}' for i in range(40))
    document = '{"script":"host_audit","schema":2,"crl":[' + urls + ']}'
    banner = "WARNING: a profile banner\r\n"
    conn = FakeConnection((0, (banner + deflated_line(document) + "\r\n").encode("ascii"), b""))
    rc, out, err = _pwsh_exec.run_powershell(conn, "Write-Output 'x'", task_action="t")
    assert (rc, err) == (0, "")
    assert out == banner + document + "\r\n"


def test_a_plain_document_and_a_look_alike_pass_untouched() -> None:
    plain = '{"script":"winhttp_state","schema":1,"views":[]}\r\n'
    assert _pwsh_exec.inflate_document(plain) == plain
    # a "deflated" key that is not the envelope's whole shape is somebody's data, not the wire form
    other = '{"script":"host_audit","schema":2,"deflated":"AAAA","more":1}\r\n'
    assert _pwsh_exec.inflate_document(other) == other


@pytest.mark.parametrize(("data", "says"), [
    ("not base64!", None),  # not the envelope's alphabet: untouched, then refused by the document parser
    ("AAAA", "cut"),  # a stored block that never ends
    ("//8=", "does not inflate"),  # block type 3, reserved
    (base64.b64encode(zlib.compress(b'{"a":1}')).decode(), "does not inflate"),  # zlib framing, not raw DEFLATE
    (base64.b64encode(zlib.compressobj(6, zlib.DEFLATED, -15).compress(b'{"a":1}')).decode(), "cut"),
])
def test_a_broken_deflated_document_is_a_host_script_error_naming_the_script(data: str, says: str | None) -> None:
    line = f'{{"script":"host_audit","schema":2,"deflated":"{data}"}}'
    if says is None:
        assert _pwsh_exec.inflate_document(line) == line
        return
    with pytest.raises(HostScriptError, match=f"host script host_audit printed a deflated document .*{says}"):
        _pwsh_exec.inflate_document(line)


def test_the_threshold_is_the_one_common_ps1_and_the_twin_use() -> None:
    from tests.twin.executor import DEFLATE_ABOVE, printed_document

    text = (PS1_DIR / "_common.ps1").read_text(encoding="utf-8")
    match = re.search(r"^\$CrlfixDeflateAbove = ([0-9]+)$", text, re.M)
    assert match is not None and int(match.group(1)) == DEFLATE_ABOVE
    assert "if ($json.Length -gt $CrlfixDeflateAbove)" in text
    small = {"script": "winhttp_state", "schema": 1, "views": []}
    assert printed_document(small) == '{"script":"winhttp_state","schema":1,"views":[]}'
    big = {"script": "host_audit", "schema": 2, "crl": [f"http://crl.example.test/{i}.crl" for i in range(60)]}
    assert printed_document(big).startswith('{"script":"host_audit","schema":2,"deflated":"')
    assert _pwsh_exec.inflate_document(printed_document(big)) == json.dumps(big, separators=(",", ":")) + "\r\n"
