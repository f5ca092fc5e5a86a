# PRIVATE to the crlfix.windows collection; may change without notice.
"""The one seam through which the collection runs anything on a Windows host, and what it puts on the wire.

Unit tests monkeypatch :func:`run_powershell` and replay output recorded from Windows. At ``-vvvvv`` every command
is logged here with the name of its host script, its exit code and what it printed (as ansible.windows logs its raw
commands and results); the host scripts carry no credentials, so nothing secret reaches the log.

A host script as built (``_script.build_host_script``) is written to be read. On the wire it is what PowerShell needs
(docs/dev/host-scripts.md, "How a script reaches the host"):

1. :func:`_minify.minify` takes out comments, indentation and empty lines;
2. if that fits cmd.exe's command line as Ansible's ``-EncodedCommand``, it goes there, whole;
3. else the command line carries a **bootstrap**: the script's preamble (host_audit's floor check, which must run
   in any language mode and on Windows PowerShell 2.0) and then :data:`LOADER`; stdin carries the rest (the two
   header lines, the ``$CrlfixArgs`` line, ``_common.ps1``, the fragments and the body), raw DEFLATE (RFC 1951,
   ``System.IO.Compression.DeflateStream``, .NET Framework 2.0 and later) in base64.

:data:`LOADER` refuses a Constrained Language session before it touches a .NET type ("FullLanguage required",
about_Language_Modes: ``New-Object`` and method calls work only on the core types there), then reads stdin
(``$input``: cmd + powershell.exe over winrm and ssh, pipeline input over psrp), inflates it and runs it as one script
block. The twin keeps its own copy of the loader (``tests/twin/bootstrap.py``) and runs only this exact text.

The way back is lean too: a document longer than 1,024 characters comes as ``{"script": ..., "schema": ...,
"deflated": "<base64 of raw DEFLATE>"}`` (``_common.ps1``'s ``Write-CrlfixDocument``), and :func:`inflate_document`
gives the caller the document itself, so everything past this seam (and every fixture recorded from Windows) reads
plain JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
import typing as t
import zlib
from dataclasses import dataclass

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._minify import minify

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

display = Display()

# cmd.exe, which WinRS uses to start the command, refuses longer command lines ("The command line is too long.").
CMD_LINE_LIMIT = 8191
LOADER = (
    "$ErrorActionPreference = 'Stop'; $m = $ExecutionContext.SessionState.LanguageMode; "
    "if ($m -ne 'FullLanguage') { throw \"FullLanguage required: Windows PowerShell runs in $m mode on this host\" }; "
    "$z = New-Object IO.Compression.DeflateStream((New-Object IO.MemoryStream(,[Convert]::FromBase64String("
    "@($input) -join ''))), 'Decompress'); & ([ScriptBlock]::Create((New-Object IO.StreamReader($z)).ReadToEnd()))"
)
_HEADER = re.compile(r"# crlfix-(?:script|schema): ")
_ARGS_LINE = "$CrlfixArgs = "


@dataclass(frozen=True)
class WireCommand:
    """One host script as it is sent: ``command`` (``script`` as ``-EncodedCommand``), then ``stdin`` (None: none)."""

    command: str
    script: str
    stdin: bytes | None
    written_chars: int  # the script as built, comments and all
    sent_chars: int  # as PowerShell runs it (minified): bootstrap + payload, or the whole script

    @property
    def command_chars(self) -> int:
        return len(self.command)

    @property
    def via(self) -> str:
        return "stdin" if self.stdin is not None else "argv"


def split_preamble(lines: list[str]) -> tuple[list[str], list[str]]:
    """(the preamble, the rest) of a minified host script: the preamble is what stands between the two header lines
    and the ``$CrlfixArgs`` line (``_script.SCRIPT_PREAMBLES``); a script without that shape has none."""
    if len(lines) < 2 or not all(_HEADER.match(line) for line in lines[:2]):
        return [], lines
    index = next((i for i, line in enumerate(lines) if line.startswith(_ARGS_LINE)), None)
    if index is None:
        return [], lines
    return lines[2:index], lines[:2] + lines[index:]


def compress(text: str) -> bytes:
    """``text`` as UTF-8 in raw DEFLATE (no zlib or gzip framing: DeflateStream reads exactly this)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return packer.compress(text.encode("utf-8")) + packer.flush()


def wire_command(script: str, encode: t.Callable[[str], str], limit: int = CMD_LINE_LIMIT) -> WireCommand:
    """How ``script`` goes to the host; ``encode`` is the connection shell's ``-EncodedCommand`` encoder.

    Raises:
        ValueError: the bootstrap itself does not fit the command line (a preamble grew too long).
    """
    sent = getattr(script, "minified", None)  # _script.HostScript: minified from the parts minified once
    if sent is None:
        sent = minify(script)
    # UTF-16-LE in base64 is at least 8/3 characters per character: a longer script cannot fit, so it is not encoded.
    if len(sent) * 8 <= limit * 3:
        command = encode(sent)
        if len(command) <= limit:
            return WireCommand(command, sent, None, len(script), len(sent))
    preamble, rest = split_preamble(sent.splitlines())
    bootstrap = "\n".join([*preamble, LOADER])
    command = encode(bootstrap)
    if len(command) > limit:
        raise ValueError(f"the bootstrap of this script is {len(command)} characters on the command line, over "
                         f"cmd.exe's {limit}: its preamble must be shorter")
    payload = "\n".join(rest) + "\n"
    stdin = base64.b64encode(compress(payload))
    return WireCommand(command, bootstrap, stdin, len(script), len(bootstrap) + len(payload))


# A deflated document as Write-CrlfixDocument prints it; what it holds inflates to at most _INFLATED_LIMIT bytes.
_DEFLATED = re.compile(r'\{"script":"(?P<name>[A-Za-z0-9_]+)","schema":[0-9]+,"deflated":"(?P<data>[A-Za-z0-9+/=]*)"\}')
_INFLATED_LIMIT = 128 * 1024 * 1024  # a document of 64 MiB of bodies in base64 (MAX_BYTES_LIMIT) and its rest


def inflate_document(stdout: str) -> str:
    """``stdout`` with its last line, when it is a deflated document, replaced by the document it holds.

    Raises:
        HostScriptError: the deflated document is not base64 of raw DEFLATE, or holds more than 128 MiB.
    """
    head, newline, last = stdout.rstrip().rpartition("\n")
    match = _DEFLATED.fullmatch(last.strip())
    if match is None:
        return stdout
    inflater = zlib.decompressobj(-15)
    try:
        text = inflater.decompress(base64.b64decode(match["data"], validate=True), _INFLATED_LIMIT).decode("ascii")
    except (binascii.Error, zlib.error, UnicodeDecodeError) as exc:
        raise HostScriptError(f"host script {match['name']} printed a deflated document that does not inflate: {exc}",
                              stdout=stdout) from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise HostScriptError(f"host script {match['name']} printed a deflated document that is cut or over "
                              f"{_INFLATED_LIMIT} bytes inflated", stdout=stdout)
    return f"{head}{newline}{text}\r\n"


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
    wire = wire_command(
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
    out = inflate_document(out)
    display.vvvvv(f"{task_action}: host script {name} returned rc {rc}\nstdout: {out}\nstderr: {err}", host=host)
    return rc, out, err


__all__ = ["CMD_LINE_LIMIT", "LOADER", "WireCommand", "compress", "inflate_document", "run_powershell", "script_name",
           "split_preamble", "wire_command"]
