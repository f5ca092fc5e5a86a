# PRIVATE to the crlfix.windows collection; may change without notice.
"""What goes on the wire for one host script: the command line, and what travels on stdin.

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
"""

from __future__ import annotations

import base64
import re
import typing as t
import zlib
from dataclasses import dataclass

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._minify import minify

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


__all__ = ["CMD_LINE_LIMIT", "LOADER", "WireCommand", "compress", "split_preamble", "wire_command"]
