"""What a twin does with a WinRS command line: decode PowerShell, run modelled tools or host scripts.

Flow: WinRS ``Command`` (+ ``Arguments``) is what cmd.exe would run. ``powershell … -EncodedCommand <b64>``
(UTF-16-LE, as Ansible's PowerShell shell plugin and pywinrm ``run_ps`` send) is decoded; Ansible's wrapper
lines are dropped; the collection's bootstrap (floor check + loader, ``bootstrap.py``) reads the rest of the script
from stdin; then the script is either one of the collection's host scripts (``# crlfix-script:`` header,
docs/dev/host-scripts.md) or a list of simple command lines run one by one. Anything the twin does not model fails
with PowerShell's (or cmd.exe's) own "not recognized" error: never a silent success.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from dataclasses import dataclass, field

from tests.twin import bootstrap, language_mode, native_tools, netsh
from tests.twin.cmdline import (
    clixml_errors,
    crlf,
    error_record_lines,
    executable,
    not_recognized_lines,
    tokenize,
)
from tests.twin.scripts import ScriptContext, ScriptError, registry
from tests.twin.state import HostState

# _common.ps1's answer in a Constrained Language session, before anything that mode blocks (host-scripts.md).
COMMON_CLM_TEXT = ("FullLanguage required: Windows PowerShell runs in {mode} mode on this host (AppLocker or Windows "
                   "Defender Application Control), which blocks the COM objects, runspaces and SslStream the crlfix "
                   "host scripts use")
# ansible-core plugins/shell/powershell.py _encode_script: strict_mode / preserve_rc wrapper lines.
STRICT_MODE_LINE = "set-strictmode -version latest"
PRESERVE_RC_RE = re.compile(
    r"^if \(-not \$\?\) \{ if \(get-variable lastexitcode .*exit \$lastexitcode.*\}\s*\}$", re.I
)
ARGS_RE = re.compile(r"^\$CrlfixArgs\s*=\s*ConvertFrom-Json\s+-InputObject\s+'(?P<json>.*)'\s*$", re.S)
# PowerShell treats ' and the typographic quotes as single quotes; inside '...' each is doubled.
_SQ = "'\u2018\u2019\u201a\u201b"
_DOUBLED_SQ_RE = re.compile(f"([{_SQ}])[{_SQ}]")
_ENCODED_FLAGS = ("-e", "-ec", "-en", "-enc", "-encodedcommand")
_COMMAND_FLAGS = ("-c", "-command")
# cmd.exe's own text for an unknown program (WinRS starts commands through cmd.exe).
CMD_NOT_RECOGNIZED = "'{0}' is not recognized as an internal or external command,\noperable program or batch file.\n"
NATIVE = ("netsh", "reg", "certutil", "hostname")


@dataclass
class Invocation:
    """A parsed WinRS command line."""

    kind: str  # "powershell" or "native"
    argv: list[str] = field(default_factory=list)
    script: str | None = None  # decoded PowerShell; None means "read the script from stdin"
    reads_stdin: bool = False
    error: str | None = None  # cmd.exe-level failure text


@dataclass
class Outcome:
    stdout: str
    stderr: str | bytes  # bytes = already serialised (CLIXML)
    rc: int
    script: str | None = None  # the crlfix host script that ran to its end (the lab's fault hooks key on it)
    # host_audit's document, bytes of compact JSON per part (DOCUMENT_PARTS) and as printed: the lab's metrics.
    parts: dict[str, int] | None = None


# The parts of host_audit's document the lab's metrics count (counters doc_<part>; "other": the rest of the keys).
DOCUMENT_PARTS = ("winhttp", "certificates", "crl", "tls", "identities", "evidence", "floor", "other")
# ... and the counters of a document's sizes: its parts, then the line as printed (deflated when long).
DOCUMENT_SIZES = (*DOCUMENT_PARTS, "printed")


def document_parts(document: dict) -> dict[str, int]:
    """Bytes of each part of a host_audit document as compact JSON (the keys' own bytes go to ``other``)."""
    sizes = dict.fromkeys(DOCUMENT_PARTS, 0)
    for key, value in document.items():
        size = len(json.dumps(value, separators=(",", ":")))
        if key in sizes and key != "other":
            sizes[key] += size
        else:
            sizes["other"] += size
    sizes["other"] += len(json.dumps(document, separators=(",", ":"))) - sum(sizes.values())
    return sizes


# _common.ps1's $CrlfixDeflateAbove: a longer document is printed deflated (Write-CrlfixDocument).
DEFLATE_ABOVE = 1024


def printed_document(document: dict) -> str:
    """The line Write-CrlfixDocument prints for ``document``: compact ASCII JSON, or, when that is longer than
    ``DEFLATE_ABOVE`` characters, ``{"script", "schema", "deflated"}`` with the JSON as raw DEFLATE in base64.
    DeflateStream is zlib's since .NET Framework 4.5 (default level, 15-bit window, no header): so is this."""
    text = json.dumps(document, separators=(",", ":"))
    if len(text) <= DEFLATE_ABOVE:
        return text
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = base64.b64encode(packer.compress(text.encode("ascii")) + packer.flush()).decode("ascii")
    return f'{{"script":"{document["script"]}","schema":{document["schema"]},"deflated":"{data}"}}'


def parse(command: str, arguments: list[str]) -> Invocation:
    """Split ``command`` + ``arguments`` the way cmd.exe would hand them to the program."""
    argv = tokenize(command) + [w for a in arguments for w in tokenize(a)]
    if not argv:
        return Invocation("native", argv, error="")
    name = executable(argv[0])[0]
    if name != "powershell":
        return Invocation("native", argv)
    rest = argv[1:]
    for i, word in enumerate(rest):
        flag = word.lower()
        if flag in _ENCODED_FLAGS and i + 1 < len(rest):
            try:
                script = base64.b64decode(rest[i + 1], validate=True).decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return Invocation(
                    "powershell",
                    argv,
                    error="Cannot process the command because the value "
                    "specified with -EncodedCommand is not properly encoded. The value must be "
                    "Base64 encoded.\n",
                )
            reads = _bootstrap_preamble(script) is not None or "$input" in script.lower()
            return Invocation("powershell", argv, script=script, reads_stdin=reads)
        if flag in _COMMAND_FLAGS and i + 1 < len(rest):
            text = " ".join(rest[i + 1 :])
            if text == "-":
                return Invocation("powershell", argv, script=None, reads_stdin=True)
            return Invocation("powershell", argv, script=text)
    return Invocation(
        "powershell",
        argv,
        error="The twin models powershell.exe only with -EncodedCommand or -Command; got: " + " ".join(argv[1:]) + "\n",
    )


def run(state: HostState, inv: Invocation, stdin: bytes, codepage: int = 65001) -> Outcome:
    """Run one command; ``codepage`` is the shell's ``WINRS_CODEPAGE`` (the console's, which stdin is read with)."""
    if inv.error is not None:
        if inv.kind == "native":
            return Outcome("", "The syntax of the command is incorrect.\r\n", 1)
        return Outcome("", crlf(inv.error), 1)
    if inv.kind == "native":
        res = _run_native(state, inv.argv)
        if res is None:
            return Outcome("", crlf(CMD_NOT_RECOGNIZED.format(inv.argv[0])), 1)
        return Outcome(crlf(res.stdout), crlf(res.stderr), res.rc)
    script = inv.script
    stdin_text = _decode_stdin(stdin, codepage)
    if script is None:
        return run_powershell(state, stdin_text)
    preamble = _bootstrap_preamble(script)
    if preamble is None:
        return run_powershell(state, script)
    unwrapped = bootstrap.unwrap(state, preamble, stdin_text)
    if unwrapped.document is not None:
        return Outcome(json.dumps(unwrapped.document, separators=(",", ":")) + "\r\n", "", 0, script="host_audit",
                       parts=document_parts(unwrapped.document))
    if unwrapped.failure is not None:
        return _failed(unwrapped.failure)
    return run_powershell(state, unwrapped.script or "", floor_ran=unwrapped.floor_ran)


def is_blocking(inv: Invocation, stdin: bytes, codepage: int = 65001) -> bool:
    """True for a host script that declares ``BLOCKING`` (it waits on the network; run it off the event loop)."""
    if inv.error is not None or inv.kind != "powershell":
        return False
    script = inv.script
    if script is None:
        script = _decode_stdin(stdin, codepage)
    elif _bootstrap_preamble(script) is not None:
        decoded = bootstrap.decode_payload(_decode_stdin(stdin, codepage))
        script = decoded if isinstance(decoded, str) else ""
    first = next((line.strip() for line in script.splitlines() if line.strip()), "")
    if not first.lower().startswith("# crlfix-script:"):
        return False
    module = registry().get(first.split(":", 1)[1].strip())
    return bool(getattr(module, "BLOCKING", False))


def _bootstrap_preamble(script: str) -> list[str] | None:
    """The preamble of the collection's stdin bootstrap (``bootstrap.py``), with Ansible's wrapper lines around it
    left out; None when ``script`` is not the bootstrap."""
    lines = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and line.strip().lower() != STRICT_MODE_LINE and not PRESERVE_RC_RE.match(line.strip())
    ]
    return bootstrap.recognise(lines)


def _failed(failure: bootstrap.Failure) -> Outcome:
    """An error that ends the command: its record on stderr, exit code 1."""
    lines = error_record_lines(failure.message, failure.statement, failure.line_no, failure.category,
                               failure.error_id)
    return Outcome("", clixml_errors(lines), 1)


# The code pages the twin decodes (tests/twin/README.md); another one reads as 437, the OEM code page of en-US.
CODECS = {65001: "utf-8", 437: "cp437", 850: "cp850", 1252: "cp1252"}


def codec(codepage: int) -> str:
    return CODECS.get(codepage, "cp437")


def _decode_stdin(data: bytes, codepage: int) -> str:
    """stdin as powershell.exe reads it: with ``[Console]::InputEncoding``, the console's input code page, which
    WinRS sets from the shell option ``WINRS_CODEPAGE`` (MS-WSMV; ansible-core's winrm plugin opens its shells with
    65001, pywinrm's ``open_shell`` with 437). Bytes the code page cannot decode become U+FFFD, as .NET's decoders
    do by default (``DecoderReplacementFallback``); a UTF-8 BOM is dropped."""
    if codepage == 65001 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode(codec(codepage), "replace")


def _run_native(state: HostState, argv: list[str]) -> native_tools.ToolResult | None:
    name, where = executable(argv[0])
    if name not in NATIVE or where == "other" or (where == "syswow64" and not state.has_wow64):
        return None  # a host without WoW64 has no SysWOW64 folder: the program is not there
    wow = where == "syswow64" and state.is_64bit
    if name == "netsh":
        res = netsh.run(state, argv[1:], "wow6432" if wow else "native")
        return native_tools.ToolResult(res.stdout, "", res.rc)
    if name == "reg":
        return native_tools.reg(state, argv[1:], wow)
    if name == "certutil":
        return native_tools.certutil(state, argv[1:])
    return native_tools.hostname(state, argv[1:])


def run_powershell(state: HostState, script: str, *, floor_ran: bool = False) -> Outcome:
    """Run ``script``; ``floor_ran``: the bootstrap already ran host_audit's floor check (and the host passed it)."""
    lines = [line.strip() for line in script.replace("\r\n", "\n").split("\n")]
    first = next((line for line in lines if line), "")
    if first.lower().startswith("# crlfix-script:"):
        return _run_host_script(state, lines, floor_ran=floor_ran)
    stdout: list[str] = []
    errors: list[str] = []
    last_ok, last_exit, preserve_rc = True, None, False
    for line_no, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if line.lower() == STRICT_MODE_LINE:
            continue
        if PRESERVE_RC_RE.match(line):
            preserve_rc = True
            continue
        argv = tokenize(line)
        if argv and argv[0] == "&":
            argv = argv[1:]
        res = _run_native(state, argv) if argv else None
        if res is None:
            # The twin stops at the first line it cannot interpret: it cannot know what the rest would do.
            errors += not_recognized_lines(argv[0] if argv else line, line, line_no)
            last_ok = False
            break
        stdout.append(res.stdout)
        if res.stderr:
            errors += _native_error_lines(argv[0], res.stderr, line, line_no)
        last_ok, last_exit = res.rc == 0, res.rc
    if last_ok:
        rc = 0
    elif preserve_rc and last_exit is not None:
        rc = last_exit
    else:
        rc = 1
    return Outcome(crlf("".join(stdout)), clixml_errors(errors) if errors else "", rc)


def _native_error_lines(program: str, stderr: str, line: str, line_no: int) -> list[str]:
    """How Windows PowerShell 5.1 wraps a native program's stderr (NativeCommandError, RemoteException)."""
    text = stderr.rstrip("\n").split("\n")
    first = text[0]
    target = first if len(first) <= 30 else f"{first[:15]}...{first[-11:]}"
    lines = error_record_lines(
        f"{program} : {first}",
        line,
        line_no,
        f"NotSpecified: ({target}:String) [], RemoteException",
        "NativeCommandError",
    )
    return lines[:-1] + text[1:] + [" "] if len(text) > 1 else lines


def _run_host_script(state: HostState, lines: list[str], *, floor_ran: bool = False) -> Outcome:
    code = [line for line in lines if line]
    header = code[:2]
    # The $CrlfixArgs line follows the two header lines, after the preamble a script has (host_audit's floor check,
    # _script.SCRIPT_PREAMBLES) when it travels whole; over stdin the preamble ran in the bootstrap.
    args_at = next((index for index, line in enumerate(code) if index >= 2 and ARGS_RE.match(line)), None)
    header.append(code[args_at] if args_at is not None else "")
    preamble = [line for line in code[2:args_at or 2] if not line.startswith("#")]
    name = header[0].split(":", 1)[1].strip()
    mode = state.host_class.language_mode
    try:
        schema_line = header[1] if len(header) > 1 else ""
        if not schema_line.lower().startswith("# crlfix-schema:"):
            raise ScriptError(f"script '{name}': second line must be '# crlfix-schema: <int>', got {schema_line!r}")
        schema_text = schema_line.split(":", 1)[1].strip()
        if not schema_text.isdigit():
            raise ScriptError(f"script '{name}': schema {schema_text!r} is not an integer")
        schema = int(schema_text)
        if mode not in language_mode.MODELLED:
            raise ScriptError(f"twin: PowerShell in {mode} mode is not modelled")
        if preamble:
            if preamble != bootstrap.floor_lines():
                raise ScriptError(f"twin: the preamble of '{name}' is not the collection's floor check; the twin runs "
                                  "no other PowerShell")
            answer = bootstrap.floor_answer(state, mode, "\n".join(preamble), line_no=3)
            if answer.document is not None:
                return Outcome(json.dumps(answer.document, separators=(",", ":")) + "\r\n", "", 0, script=name,
                               parts=document_parts(answer.document))
            if answer.failure is not None:
                return _failed(answer.failure)
            floor_ran = True
        match = ARGS_RE.match(header[2]) if len(header) > 2 else None
        if match is None:
            raise ScriptError(f"script '{name}': no $CrlfixArgs line after the header")
        args_json = _DOUBLED_SQ_RE.sub(r"\1", match.group("json"))
        try:
            args = json.loads(args_json)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"script '{name}': $CrlfixArgs is not valid JSON: {exc}") from None
        if not isinstance(args, dict):
            raise ScriptError(f"script '{name}': $CrlfixArgs must be a JSON object, got {args!r}")
        if mode != language_mode.FULL:
            # _common.ps1 refuses the session before anything that mode blocks.
            message = COMMON_CLM_TEXT.format(mode=mode)
            return _failed(bootstrap.Failure(message, f"OperationStopped: ({bootstrap.ellipsize(message)}:String) [], "
                                             "RuntimeException", message, "throw", len(code)))
        module = registry().get(name)
        if module is None:
            raise ScriptError(f"crlfix host script '{name}' is not implemented by this host (twin)")
        if schema not in module.SCHEMAS:
            raise ScriptError(
                f"crlfix host script '{name}': schema {schema} is not supported (supported: {sorted(module.SCHEMAS)})"
            )
        if name in bootstrap.READS_FLOOR and not floor_ran:
            # host_audit.ps1 ends with ConvertFrom-Json -InputObject $CrlfixFloorJson: without the floor check, null.
            raise ScriptError("Cannot bind argument to parameter 'InputObject' because it is null.")
        doc = {"script": name, "schema": schema, **module.run(ScriptContext(state, schema), args)}
    except ScriptError as exc:
        errors = error_record_lines(
            str(exc), "throw", 1, "OperationStopped: (:) [], RuntimeException", "CrlfixScriptError"
        )
        return Outcome("", clixml_errors(errors), 1)
    printed = printed_document(doc)
    parts = {**document_parts(doc), "printed": len(printed)} if name == "host_audit" else None
    return Outcome(printed + "\r\n", "", 0, script=name, parts=parts)
