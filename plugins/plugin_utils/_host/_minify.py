# PRIVATE to the crlfix.windows collection; may change without notice.
"""What a host script needs on the wire: its PowerShell without comments, indentation and blank lines.

The scripts in ``_ps1/`` are written to be read; PowerShell needs none of their comments or layout. :func:`minify`
removes them and nothing else: it never joins lines, renames or reorders anything, and leaves every string as it is.
It reads the text the way PowerShell's tokenizer does for the parts that decide what is code (Microsoft Learn:
about_Comments, about_Quoting_Rules, about_Special_Characters, about_Parsing):

- ``'...'`` (``''`` inside is one quote) and ``"..."`` (a backtick escapes the next character, ``""`` is one quote,
  ``$( ... )`` holds code, strings and comments of its own); PowerShell also takes the typographic quotes
  U+2018-U+201B as single and U+201C-U+201E as double quotes;
- here-strings ``@'`` / ``@"`` up to a line that starts with ``'@`` / ``"@``: kept byte for byte;
- ``#`` to the end of the line and ``<# ... #>``, where a token starts (after a blank, a line break or ``;(){}|,``):
  a ``#`` inside a word (``a#b``) or a string is not a comment;
- a backtick in code escapes the next character: ``#``, a blank, or the line break of a line continuation.

Kept: the two header comments (``# crlfix-script:``, ``# crlfix-schema:``), which name the script to the log and
the twin, and ``#requires`` lines, which PowerShell reads. The unit tests parse every script before and after with
tree-sitter-powershell and compare the token streams.
"""

from __future__ import annotations

import re

_SINGLE = "'\u2018\u2019\u201a\u201b"
_DOUBLE = '"\u201c\u201d\u201e'
_BLANK = " \t\f\v\u00a0"
# Where a token may start, so that # or <# begins a comment.
_TOKEN_START = _BLANK + "\r\n;(){}|,"
_KEPT_COMMENT = re.compile(r"#\s*(?:crlfix-(?:script|schema):|requires\b)", re.IGNORECASE)

CODE, STRING, COMMENT, ESCAPE, NEWLINE = "code", "string", "comment", "escape", "newline"
# Runs of characters that decide nothing, skipped in one step (the scan runs per host, so it must be quick).
_PLAIN_CODE = re.compile("[^\n@`#<()" + _SINGLE + _DOUBLE + "]+")
_PLAIN_SINGLE = re.compile("[^" + _SINGLE + "]+")
_PLAIN_DOUBLE = re.compile("[^`$" + _DOUBLE + "]+")


class _Scanner:
    """Splits PowerShell text into (kind, text) pieces whose concatenation is the text itself."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.pieces: list[tuple[str, str]] = []

    def scan(self) -> list[tuple[str, str]]:
        self._code(stop_at_paren=False)
        return self.pieces

    def _emit(self, kind: str, start: int) -> None:
        if self.pos > start:
            self.pieces.append((kind, self.text[start:self.pos]))

    def _at_token_start(self) -> bool:
        return self.pos == 0 or self.text[self.pos - 1] in _TOKEN_START

    def _code(self, *, stop_at_paren: bool) -> None:
        """Code up to the end, or (inside ``$( )`` of a string) to its closing parenthesis, which is left unread."""
        text, depth, start = self.text, 0, self.pos
        while self.pos < len(text):
            plain = _PLAIN_CODE.match(text, self.pos)
            if plain is not None:
                self.pos = plain.end()
                continue
            char = text[self.pos]
            here_string = char == "@" and text[self.pos + 1:self.pos + 2] in ("'", '"') and self._here_string_opens()
            if char == "\n" or here_string or char == "`" or char in _SINGLE or char in _DOUBLE or (
                    self._at_token_start() and (char == "#" or text.startswith("<#", self.pos))):
                self._emit(CODE, start)
                if char == "\n":
                    self.pos += 1
                    self._emit(NEWLINE, self.pos - 1)
                elif here_string:
                    self._here_string()
                elif char == "`":
                    escape_start = self.pos
                    self.pos = min(self.pos + 2, len(text))
                    self._emit(ESCAPE, escape_start)
                elif char in _SINGLE:
                    self._single_quoted()
                elif char in _DOUBLE:
                    self._double_quoted()
                elif char == "#":
                    self._line_comment()
                else:
                    self._block_comment()
                start = self.pos
                continue
            if stop_at_paren:
                if char == "(":
                    depth += 1
                elif char == ")":
                    if depth == 0:
                        break
                    depth -= 1
            self.pos += 1
        self._emit(CODE, start)

    def _here_string_opens(self) -> bool:
        # @' or @" opens a here-string only when nothing but blanks follows it on its line.
        end = self.text.find("\n", self.pos + 2)
        rest = self.text[self.pos + 2:] if end < 0 else self.text[self.pos + 2:end]
        return rest.strip(_BLANK + "\r") == ""

    def _here_string(self) -> None:
        start, quote = self.pos, self.text[self.pos + 1]
        match = re.compile("^" + re.escape(quote) + "@", re.MULTILINE).search(self.text, self.text.find("\n", start))
        if match is None:
            raise ValueError(f"unterminated here-string at offset {start}")
        self.pos = match.end()
        self.pieces.append((STRING, self.text[start:self.pos]))

    def _single_quoted(self) -> None:
        start, text = self.pos, self.text
        self.pos += 1
        while True:
            plain = _PLAIN_SINGLE.match(text, self.pos)
            if plain is not None:
                self.pos = plain.end()
            if self.pos >= len(text):
                raise ValueError(f"unterminated string at offset {start}")
            if text[self.pos] in _SINGLE:
                if self.pos + 1 < len(text) and text[self.pos + 1] in _SINGLE:
                    self.pos += 2
                    continue
                self.pos += 1
                break
            self.pos += 1
        self.pieces.append((STRING, text[start:self.pos]))

    def _double_quoted(self) -> None:
        start, text = self.pos, self.text
        self.pos += 1
        while True:
            plain = _PLAIN_DOUBLE.match(text, self.pos)
            if plain is not None:
                self.pos = plain.end()
            if self.pos >= len(text):
                raise ValueError(f"unterminated string at offset {start}")
            char = text[self.pos]
            if char == "`":
                self.pos += 2
            elif char in _DOUBLE:
                if self.pos + 1 < len(text) and text[self.pos + 1] in _DOUBLE:
                    self.pos += 2
                    continue
                self.pos += 1
                break
            elif text.startswith("$(", self.pos):
                # A subexpression is code: its own strings and parentheses decide where it ends.
                self.pos += 2
                inner = _Scanner(text)
                inner.pos = self.pos
                inner._code(stop_at_paren=True)
                if inner.pos >= len(text):
                    raise ValueError(f"unterminated subexpression in the string at offset {start}")
                self.pos = inner.pos + 1
            else:
                self.pos += 1
        self.pieces.append((STRING, text[start:self.pos]))

    def _line_comment(self) -> None:
        start = self.pos
        end = self.text.find("\n", start)
        self.pos = len(self.text) if end < 0 else end
        if self.text[self.pos - 1:self.pos] == "\r":
            self.pos -= 1
        self._emit(COMMENT, start)

    def _block_comment(self) -> None:
        start = self.pos
        end = self.text.find("#>", start + 2)
        if end < 0:
            raise ValueError(f"unterminated block comment at offset {start}")
        self.pos = end + 2
        self._emit(COMMENT, start)


def scan(text: str) -> list[tuple[str, str]]:
    """``text`` as (kind, text) pieces: code, string (here-strings included), comment, escape, newline."""
    return _Scanner(text).scan()


def minify(text: str) -> str:
    """``text`` as PowerShell runs it, without comments, indentation, trailing blanks and empty lines.

    Raises:
        ValueError: an unterminated string, here-string, subexpression or block comment (the scripts are
            parse-checked, so this means the minifier met something it does not understand).
    """
    lines: list[str] = []
    line: list[tuple[str, str]] = []

    def empty() -> bool:
        return all(kind == CODE and not piece.strip(" ") for kind, piece in line)

    def end_line() -> None:
        # Trailing blanks go only where they are code: an escaped blank (backtick-blank) is not a line continuation
        # and must not become one.
        while line and line[-1][0] == CODE:
            kept = line[-1][1].rstrip(" ")
            if kept:
                line[-1] = (CODE, kept)
                break
            line.pop()
        if line:
            lines.append("".join(piece for _kind, piece in line))
        line.clear()

    for kind, piece in scan(text):
        if kind == NEWLINE:
            end_line()
            continue
        if kind == COMMENT:
            if _KEPT_COMMENT.match(piece) and empty():
                line[:] = [(STRING, piece.rstrip(_BLANK + "\r"))]
                continue
            if not piece.startswith("<#"):
                continue
            kind, piece = CODE, " "  # a block comment between two tokens still separates them
        if kind == CODE:
            if line and line[-1][0] == CODE:  # code on both sides of a dropped comment: one run of blanks
                piece = line.pop()[1] + piece
            piece = re.sub(f"[{_BLANK}\r]+", " ", piece)
        if empty():
            line.clear()
            piece = piece.lstrip(" ") if kind == CODE else piece
        # Strings and escapes travel exactly as written.
        line.append((kind, piece))
    end_line()
    return "\n".join(lines) + "\n" if lines else ""


__all__ = ["minify", "scan"]
