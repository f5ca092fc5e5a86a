# PRIVATE to the crlfix.windows collection; may change without notice.
"""The one seam through which the collection runs anything on a Windows host.

Unit tests monkeypatch :func:`run_powershell` and replay output recorded from Windows. At ``-vvvvv`` every command
is logged here with the name of its host script, its exit code and what it printed (as ansible.windows logs its raw
commands and results); the host scripts carry no credentials, so nothing secret reaches the log.
"""

from __future__ import annotations

import re
import typing as t

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

display = Display()

# cmd.exe, which WinRS uses to start the command, refuses longer command lines
# ("The command line is too long."); past this the script goes over stdin.
CMD_LINE_LIMIT = 8191

# Reads the script from stdin and runs it. `$input` works for the winrm (cmd +
# powershell.exe), psrp (pipeline input) and ssh connections alike. The language mode is checked first, with the
# property Microsoft Learn's about_Language_Modes names for it, so that a host in Constrained Language Mode answers
# "FullLanguage required" (as _common.ps1 does) before anything it may block, [ScriptBlock]::Create included.
# The twin keeps a copy (tests/twin/executor.py BOOTSTRAP) and recognises this text exactly.
STDIN_BOOTSTRAP = (
    "$ErrorActionPreference = 'Stop'; $m = $ExecutionContext.SessionState.LanguageMode; "
    "if ($m -ne 'FullLanguage') { throw \"FullLanguage required: Windows PowerShell runs in $m mode on this host\" }; "
    "$s = @($input) -join [Environment]::NewLine; & ([ScriptBlock]::Create($s))"
)
# The first line of every host script (_script.build_host_script): what the log calls the command.
_SCRIPT_HEADER = re.compile(r"\A# crlfix-script: (?P<name>\S+)")


def script_name(script: str) -> str:
    """The host script's name from its ``# crlfix-script:`` header, or ``unnamed script``."""
    match = _SCRIPT_HEADER.match(script)
    return match.group("name") if match else "unnamed script"


def _host_of(connection: ConnectionBase) -> str | None:
    address = getattr(getattr(connection, "_play_context", None), "remote_addr", None)
    return address if isinstance(address, str) else None


def run_powershell(connection: ConnectionBase, script: str, *, task_action: str) -> tuple[int, str, str]:
    """Run ``script`` with Windows PowerShell on the host and return ``(rc, stdout, stderr)``.

    The script is sent as ``-EncodedCommand`` (UTF-16-LE base64) through the
    connection's PowerShell shell plugin, so it works over winrm, psrp and ssh.
    The exit code is preserved (``$LASTEXITCODE`` of the last native command,
    or 1 when the last statement failed).

    Raises:
        AnsibleConnectionFailure: the transport failed (host down, auth refused,
            HTTP error); the task is reported unreachable, not failed.
    """
    shell = connection._shell
    command = shell._encode_script(script, as_list=False, strict_mode=False, preserve_rc=True)
    in_data: bytes | None = None
    if len(command) > CMD_LINE_LIMIT:
        command = shell._encode_script(STDIN_BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=True)
        in_data = script.encode("utf-8")
    name, host = script_name(script), _host_of(connection)
    via = "stdin" if in_data else "argv"
    display.vvvv(f"{task_action}: running host script {name} ({len(script)} chars, via {via})", host=host)
    try:
        rc, stdout, stderr = connection.exec_command(command, in_data=in_data, sudoable=False)
    except AnsibleConnectionFailure:
        raise
    except AnsibleError as exc:
        # The winrm plugin raises plain AnsibleError for HTTP/WS-Man failures
        # (e.g. "winrm send_input failed", 500 responses); they are transport faults.
        raise AnsibleConnectionFailure(f"{task_action}: remote command failed on the transport: {exc}") from exc
    except Exception as exc:  # requests/urllib3/socket errors escaping the plugin
        raise AnsibleConnectionFailure(f"{task_action}: connection error: {exc}") from exc
    out, err = to_text(stdout, errors="surrogate_or_strict"), to_text(stderr, errors="surrogate_or_strict")
    display.vvvvv(f"{task_action}: host script {name} returned rc {rc}\nstdout: {out}\nstderr: {err}", host=host)
    return rc, out, err


__all__ = ["CMD_LINE_LIMIT", "STDIN_BOOTSTRAP", "run_powershell", "script_name"]
