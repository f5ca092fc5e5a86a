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

from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _wire

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

display = Display()

# How a script goes on the wire (minified; past cmd.exe's limit a bootstrap on the command line and the rest, deflated,
# on stdin) is _wire.py's: the names stay importable from here, where callers looked for them.
CMD_LINE_LIMIT = _wire.CMD_LINE_LIMIT
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
    wire = _wire.wire_command(
        script, lambda text: shell._encode_script(text, as_list=False, strict_mode=False, preserve_rc=True))
    name, host = script_name(script), _host_of(connection)
    stdin = f" + {len(wire.stdin)} bytes on stdin" if wire.stdin is not None else ""
    display.vvvv(f"{task_action}: running host script {name} ({wire.written_chars} chars as written, "
                 f"{wire.sent_chars} as sent; {wire.command_chars} chars on the command line{stdin})", host=host)
    try:
        rc, stdout, stderr = connection.exec_command(wire.command, in_data=wire.stdin, sudoable=False)
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


__all__ = ["CMD_LINE_LIMIT", "run_powershell", "script_name"]
