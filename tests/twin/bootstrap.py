"""What powershell.exe does with the collection's bootstrap: the floor check, the language mode, the payload on stdin.

A host script longer than cmd.exe's command line travels as a bootstrap (docs/dev/host-scripts.md, "How a script
reaches the host"): ``-EncodedCommand`` holds the script's preamble (host_audit's floor check, ``_host_floor.ps1``)
and then the loader; stdin holds the rest of the script, raw DEFLATE in base64. Windows runs the preamble, then the
loader: in a Constrained Language session it throws "FullLanguage required" before it touches a .NET type; otherwise
``[Convert]::FromBase64String``, a ``DeflateStream`` and a ``StreamReader`` give the script text, which runs as one
script block. The twin does the same, step for step, and runs nothing else:

- the loader must be exactly :data:`LOADER` (the twin's own copy of the collection's ``_powershell.LOADER``) and the
  preamble exactly the floor check as written in ``_host_floor.ps1`` (its lines without comments and indentation);
  any other bootstrap is PowerShell the twin does not model, and it says so instead of guessing;
- in a Constrained Language session the preamble and the loader's first statements are read with
  :mod:`tests.twin.language_mode` (what that mode refuses, from about_Language_Modes) before the floor is answered;
- stdin that is not base64, or not DEFLATE, fails with the .NET exception's text, as the loader's calls would.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any

from tests.twin import language_mode
from tests.twin.host_classes import FLOOR_SCRIPT, floor_report
from tests.twin.state import HostState

LOADER = (
    "$ErrorActionPreference = 'Stop'; $m = $ExecutionContext.SessionState.LanguageMode; "
    "if ($m -ne 'FullLanguage') { throw \"FullLanguage required: Windows PowerShell runs in $m mode on this host\" }; "
    "$z = New-Object IO.Compression.DeflateStream((New-Object IO.MemoryStream(,[Convert]::FromBase64String("
    "@($input) -join ''))), 'Decompress'); & ([ScriptBlock]::Create((New-Object IO.StreamReader($z)).ReadToEnd()))"
)
# The loader's statements that run before its language check has thrown (or passed).
LOADER_CHECK = LOADER[:LOADER.index("$z = ")]
# host_audit's body reads the floor's $CrlfixFloorJson: it must have run, on the command line or in the script.
READS_FLOOR = frozenset({"host_audit"})


def floor_lines() -> list[str]:
    """The floor check as it goes on the wire: the lines of ``_host_floor.ps1``, stripped, without comments."""
    lines = (line.strip() for line in FLOOR_SCRIPT.read_text(encoding="ascii").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@dataclass
class Failure:
    """What PowerShell prints for an error that ends the command (stderr as an error record, exit code 1)."""

    message: str
    category: str
    error_id: str
    statement: str
    line_no: int = 1


@dataclass
class Unwrapped:
    """The bootstrap's own answer (``document``: the floor's, exit 0; ``failure``), or the ``script`` it runs."""

    document: dict[str, Any] | None = None
    failure: Failure | None = None
    script: str | None = None
    floor_ran: bool = False


def recognise(lines: list[str]) -> list[str] | None:
    """The preamble lines of a bootstrap (``lines``: the command's lines, Ansible's wrapper left out), or None when
    the command is not one (its last line is not the loader)."""
    if not lines or lines[-1] != LOADER:
        return None
    return lines[:-1]


def floor_answer(state: HostState, mode: str, preamble: str, line_no: int = 1) -> Unwrapped:
    """Run the floor check: its document when the host is below the floor, else nothing (``floor_ran``)."""
    if mode == language_mode.CONSTRAINED:
        refusal = language_mode.first_refusal(preamble)
        if refusal is not None:
            return Unwrapped(failure=Failure(refusal.message, refusal.category, refusal.error_id, refusal.statement,
                                             line_no))
    floor = floor_report(state.host_class, state.os_build)
    if floor["missing"]:
        return Unwrapped(document={"script": "host_audit", "schema": 1, "floor": floor})
    return Unwrapped(floor_ran=True)


def unwrap(state: HostState, preamble: list[str], stdin_text: str) -> Unwrapped:
    """What the bootstrap with ``preamble`` does on this host with ``stdin_text`` (stdin as the console decoded it)."""
    mode = state.host_class.language_mode
    if mode not in language_mode.MODELLED:
        return Unwrapped(failure=Failure(f"twin: PowerShell in {mode} mode is not modelled (only "
                                         f"{' and '.join(language_mode.MODELLED)})", "NotImplemented: (:) [], "
                                         "RuntimeException", "TwinNotModelled", "", 1))
    floor_ran = False
    if preamble:
        if preamble != floor_lines():
            return Unwrapped(failure=Failure("twin: this bootstrap's preamble is not the collection's floor check; the "
                                             "twin runs no other PowerShell", "NotImplemented: (:) [], "
                                             "RuntimeException", "TwinNotModelled", preamble[0], 1))
        answer = floor_answer(state, mode, "\n".join(preamble))
        if answer.document is not None or answer.failure is not None:
            return answer
        floor_ran = True
    line_no = len(preamble) + 1
    if mode == language_mode.CONSTRAINED:
        refusal = language_mode.first_refusal(LOADER_CHECK)
        if refusal is not None:  # the loader's own first statements are all allowed (a unit test holds them to it)
            return Unwrapped(failure=Failure(refusal.message, refusal.category, refusal.error_id, refusal.statement,
                                             line_no))
        message = f"FullLanguage required: Windows PowerShell runs in {mode} mode on this host"
        return Unwrapped(failure=Failure(message, f"OperationStopped: ({ellipsize(message)}:String) [], "
                                         "RuntimeException", message, LOADER, line_no))
    decoded = decode_payload(stdin_text, line_no)
    if isinstance(decoded, Failure):
        return Unwrapped(failure=decoded)
    return Unwrapped(script=decoded, floor_ran=floor_ran)


def decode_payload(stdin_text: str, line_no: int = 1) -> str | Failure:
    """The script the loader reads from stdin (base64 of raw DEFLATE of UTF-8), or the failure .NET would throw."""
    try:
        packed = base64.b64decode("".join(stdin_text.split()), validate=True)
    except (binascii.Error, ValueError):
        # [Convert]::FromBase64String's FormatException (.NET Framework's text).
        return Failure('Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 '
                       "string as it contains a non-base 64 character, more than two padding characters, or an "
                       'illegal character among the padding characters. "',
                       "NotSpecified: (:) [], MethodInvocationException", "FormatException", LOADER, line_no)
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(packed) + inflater.flush()
    except zlib.error:
        data = None
    if data is None or (packed and not inflater.eof):
        # DeflateStream's InvalidDataException (.NET's GenericInvalidData text; the twin's choice among its texts).
        return Failure('Exception calling "ReadToEnd" with "0" argument(s): "Found invalid data while decoding."',
                       "NotSpecified: (:) [], MethodInvocationException", "InvalidDataException", LOADER, line_no)
    # StreamReader's default encoding is UTF-8, an invalid byte read as U+FFFD.
    return data.decode("utf-8", "replace")


def ellipsize(text: str) -> str:
    """How an error record's category names a long target (ErrorCategoryInfo.Ellipsize: 15 characters, ..., 15)."""
    return text if len(text) <= 40 else f"{text[:15]}...{text[-15:]}"


__all__ = ["LOADER", "LOADER_CHECK", "READS_FLOOR", "Failure", "Unwrapped", "decode_payload", "ellipsize",
           "floor_answer", "floor_lines", "recognise", "unwrap"]
