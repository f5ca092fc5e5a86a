"""Command-line tokenising and the PowerShell error texts the twin prints.

Not a PowerShell parser: the twin only splits a line into words (double and single quotes group, as both
cmd.exe and PowerShell do for the simple command lines it models) and recognises executables by name.
"""

from __future__ import annotations

import re
import textwrap
from xml.sax.saxutils import escape

# Executable spellings that reach the same binary; the value says which registry view a netsh writes.
_WINDIR_PREFIXES = (r"c:\windows", r"$env:windir", r"%windir%", r"${env:windir}", r"%systemroot%", r"$env:systemroot")


def tokenize(line: str) -> list[str]:
    """Split on blanks; "..." and '...' group and lose their quotes; ``key="a b"`` stays one word ``key=a b``."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote = ""
    for char in line:
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
            continue
        if char in "\"'":
            quote = char
            in_word = True
        elif char in " \t":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def executable(word: str) -> tuple[str, str | None]:
    """(``name`` without ``.exe`` in lower case, ``directory`` kind: "system32", "syswow64", "other" or None)."""
    lowered = word.lower().replace("/", "\\")
    if "\\" not in lowered:
        return (lowered.removesuffix(".exe"), None)
    directory, name = lowered.rsplit("\\", 1)
    name = name.removesuffix(".exe")
    for prefix in _WINDIR_PREFIXES:
        if directory.startswith(prefix):
            rest = directory[len(prefix) :]
            if rest == r"\system32":
                return (name, "system32")
            if rest == r"\syswow64":
                return (name, "syswow64")
            if rest in (r"\system32\windowspowershell\v1.0", r"\syswow64\windowspowershell\v1.0"):
                return (name, "system32" if "system32" in rest else "syswow64")
    return (name, "other")


def not_recognized_lines(term: str, line: str, line_no: int) -> list[str]:
    """Windows PowerShell 5.1's CommandNotFoundException text, wrapped at the 120-column host width.

    Source: recorded Windows PowerShell 5.1 output (e.g. ``mvn : The term 'mvn' is not recognized as the name
    of a cmdlet, function, script file, or operable program. Check`` / ``the spelling ...`` / ``At line:1
    char:1`` / ``+ mvn clean package`` / ``+ ~~~`` / ``    + CategoryInfo          : ObjectNotFound:
    (mvn:String) [], CommandNotFoundException`` / ``    + FullyQualifiedErrorId : CommandNotFoundException``).
    """
    message = (
        f"{term} : The term '{term}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct and "
        "try again."
    )
    lines = _wrap(message, 120)
    lines += [
        f"At line:{line_no} char:1",
        f"+ {line}",
        "+ " + "~" * len(term),
        f"    + CategoryInfo          : ObjectNotFound: ({term}:String) [], CommandNotFoundException",
        "    + FullyQualifiedErrorId : CommandNotFoundException",
        " ",
    ]
    return lines


def error_record_lines(message: str, line: str, line_no: int, category: str, error_id: str) -> list[str]:
    """A generic PowerShell error record in the same layout as ``not_recognized_lines``."""
    lines = _wrap(message, 120)
    lines += [
        f"At line:{line_no} char:1",
        f"+ {line}",
        "+ " + "~" * max(1, len(line)),
        f"    + CategoryInfo          : {category}",
        f"    + FullyQualifiedErrorId : {error_id}",
        " ",
    ]
    return lines


def _wrap(text: str, width: int) -> list[str]:
    # PowerShell breaks at the host width and keeps the trailing blank on the broken line.
    wrapped = textwrap.wrap(text, width=width - 1, break_long_words=False, drop_whitespace=True)
    return [part + " " for part in wrapped[:-1]] + wrapped[-1:]


def clixml_errors(lines: list[str]) -> bytes:
    """Error lines as Windows PowerShell writes them to a redirected stderr under -EncodedCommand.

    Source: ``#< CLIXML`` + ``<Objs Version="1.1.0.1" ...><S S="Error">...</S>`` as parsed by pywinrm
    ``Session._clean_error_msg`` and ansible-core ``plugins/shell/powershell.py:_parse_clixml`` (CRLF is
    serialised as ``_x000D__x000A_``).
    """
    body = "".join(f'<S S="Error">{_clixml_escape(line)}_x000D__x000A_</S>' for line in lines)
    doc = f'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{body}</Objs>'
    return b"#< CLIXML\r\n" + doc.encode("utf-8")


def _clixml_escape(text: str) -> str:
    # PowerShell serialises '_x' sequences and control characters as _xHHHH_.
    text = re.sub(r"_(x[0-9A-Fa-f]{4}_)", r"_x005F_\1", text)
    text = re.sub(r"[\x00-\x1f]", lambda m: f"_x{ord(m.group()):04X}_", text)
    return escape(text)


def crlf(text: str) -> str:
    """Windows console programs end lines with CRLF."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")
