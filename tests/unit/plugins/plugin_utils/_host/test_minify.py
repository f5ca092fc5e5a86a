"""The minifier: every host script, minified, parses to the same tree as the readable one (tree-sitter-powershell)."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._minify import minify, scan
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    PS1_DIR,
    SCRIPT_SCHEMA,
    build_host_script,
)
from tests import pslint


def parses(source: str) -> bool:
    return not pslint.parse(source).root_node.has_error


def tree(source: str) -> list[tuple[int, str, str]]:
    """The parse tree without comments and blanks: (depth, node type, text of a leaf) in source order."""
    out: list[tuple[int, str, str]] = []

    def visit(node, depth: int) -> None:
        if node.type == "comment":
            return
        if node.child_count == 0:
            text = pslint.text(node)
            if text.strip():
                out.append((depth, node.type, text))
            return
        out.append((depth, node.type, ""))
        for child in node.children:
            visit(child, depth + 1)

    root = pslint.parse(source).root_node
    assert not root.has_error, source[:200]
    visit(root, 0)
    return out


def comments(source: str) -> list[str]:
    return [pslint.text(node) for node in pslint.walk(pslint.parse(source).root_node) if node.type == "comment"]


# Arguments with the characters the quoting and the minifier must leave alone.
ARGS = {"urls": ["http://crl.example.test/a#b.crl"], "note": "it's <# not #> a `comment' \u2019"}


@pytest.mark.parametrize("name", sorted(SCRIPT_SCHEMA))
def test_every_host_script_minified_parses_to_the_same_tree(name) -> None:
    readable = build_host_script(name, ARGS)
    sent = minify(readable)
    assert tree(sent) == tree(readable)
    assert comments(sent) == [f"# crlfix-script: {name}", f"# crlfix-schema: {SCRIPT_SCHEMA[name]}"]
    assert len(sent) < 0.75 * len(readable)


@pytest.mark.parametrize("path", sorted(PS1_DIR.glob("*.ps1")), ids=lambda path: path.name)
def test_every_fragment_minified_parses_to_the_same_tree_without_layout(path) -> None:
    readable = path.read_text(encoding="ascii")
    sent = minify(readable)
    assert tree(sent) == tree(readable)
    assert comments(sent) == []
    lines = sent.splitlines()
    assert all(line.strip() for line in lines)  # no empty line
    # No indentation and no trailing blank, except inside a string that spans lines (none in these scripts) and the
    # one blank that goes on a statement after a line continuation (a backtick ending the line before).
    laid_out = [line for before, line in zip(["", *lines[:-1]], lines, strict=True)
                if line != line.strip() and not (before.endswith("`") and line == " " + line.lstrip(" ")
                                                 and not line.lstrip(" ").startswith(" "))]
    assert laid_out == []


@pytest.mark.parametrize(("readable", "sent"), [
    # a comment after code, and one on its own line
    ("$a = 1  # one\n    # alone\n$b = 2\n", "$a = 1\n$b = 2\n"),
    # '#' inside a word or a string is not a comment; '<#' in a string is not one either
    ("Write-Output a#b '# no' \"<# no #>\"\n", "Write-Output a#b '# no' \"<# no #>\"\n"),
    # a block comment between two tokens still separates them
    ("Write-Output <# c #>x\n", "Write-Output x\n"),
    ("<#\n block\n#>\n  $a = 1\n", "$a = 1\n"),
    # doubled quotes, typographic quotes, a backtick-escaped quote
    ("$a = 'it''s # x'   ;  $b = \"say \"\"#\"\" `\" # y\"\n", "$a = 'it''s # x' ; $b = \"say \"\"#\"\" `\" # y\"\n"),
    ("$a = \u2018it\u2019\u2019s #\u2019 # c\n", "$a = \u2018it\u2019\u2019s #\u2019\n"),
    # a subexpression in a string holds code with its own strings and parentheses
    ("$a = \"x $( ('#' + \")\") ) y\" # c\n", "$a = \"x $( ('#' + \")\") ) y\"\n"),
    # a string that spans lines keeps its layout
    ("$a = 'one\n    two  # not a comment\n'\n", "$a = 'one\n    two  # not a comment\n'\n"),
    # here-strings travel byte for byte
    ("$a = @'\n  # kept\n  'x'\n'@\n  $b = @\"\n $( 1 ) # kept\n\"@ # gone\n",
     "$a = @'\n  # kept\n  'x'\n'@\n$b = @\"\n $( 1 ) # kept\n\"@\n"),
    # a line continuation goes on; a backtick-blank at a line's end is not one and stays
    ("Write-Output a `\n    -NoEnumerate\n", "Write-Output a `\n -NoEnumerate\n"),
    ("Write-Output a` \n$b = 1\n", "Write-Output a` \n$b = 1\n"),
    # an escaped '#' is not a comment
    ("Write-Output `#x # y\n", "Write-Output `#x\n"),
    # the header and #requires stay; other comments go
    ("# crlfix-script: x\n# crlfix-schema: 1\n#Requires -Version 5.1\n# about\n$a = 1\n",
     "# crlfix-script: x\n# crlfix-schema: 1\n#Requires -Version 5.1\n$a = 1\n"),
    ("\r\n  $a = 1\t\t# c\r\n\r\n", "$a = 1\n"),
    ("", ""),
])
def test_what_the_minifier_takes_out_and_what_it_leaves(readable, sent) -> None:
    assert minify(readable) == sent
    # tree-sitter-powershell parses most of these (not "" in a double-quoted string, nor `# in a bare word).
    if readable.strip() and parses(readable):
        assert tree(sent) == tree(readable)


@pytest.mark.parametrize("text", ["$a = 'open", "$a = \"open", "$a = @'\nno end", "<# open", "$a = \"$( 1\""])
def test_an_unterminated_construct_is_refused(text) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        minify(text)


def test_the_scan_loses_nothing() -> None:
    readable = build_host_script("host_audit", ARGS)
    assert "".join(piece for _kind, piece in scan(readable)) == readable


@pytest.mark.parametrize("name", sorted(SCRIPT_SCHEMA))
def test_a_built_script_minified_part_by_part_is_the_whole_script_minified(name) -> None:
    # build_host_script minifies each part once per process and joins them; the wire sends that.
    for args in ({}, ARGS, {"stores": ["My"], "crl": {}, "tls": {}, "identities": {"wpad": {}, "chain": {}}}):
        script = build_host_script(name, args)
        assert script.minified == minify(script)
