# PRIVATE to the crlfix.windows collection; may change without notice.
"""Quote values as PowerShell literals so that no value can execute anything on the host."""

from __future__ import annotations

# PowerShell treats the typographic single quotes (U+2018 to U+201B) as quote characters too
# (about_Quoting_Rules), so each must be doubled like the ASCII one, or a value
# such as "x<U+2018>; Remove-Item ..." would close the literal.
_SINGLE_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def quote_pwsh_literal(value: str) -> str:
    """Return ``value`` as a single-quoted PowerShell string literal.

    Single-quoted strings are verbatim in PowerShell: no variable expansion,
    no subexpressions, no escape characters. The only special characters are
    the single quotes themselves, which are escaped by doubling.
    """
    if not isinstance(value, str):
        raise TypeError(f"quote_pwsh_literal expects str, got {type(value).__name__}")
    quoted = value
    for quote in _SINGLE_QUOTES:
        quoted = quoted.replace(quote, quote * 2)
    return f"'{quoted}'"


__all__ = ["quote_pwsh_literal"]
