"""quote_pwsh_literal keeps any value inside one verbatim PowerShell string."""

from __future__ import annotations

import pytest
import tree_sitter
import tree_sitter_powershell

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import quote_pwsh_literal
from tests.unit.plugins.fixtures.host import unquote

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


HOSTILE = [
    "plain",
    "",
    "it's",
    "'; Remove-Item -Recurse C:\\; '",
    "\u2019; calc; \u2018",
    "\u201a\u201b",
    "$(Stop-Computer)",
    "`$env:COMPUTERNAME",
    "a\nb\r\nc",
    '"double" & | ; < >',
    "''''",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_literal_is_one_string_node_and_round_trips(value: str) -> None:
    literal = quote_pwsh_literal(value)
    source = f"$v = {literal}".encode()
    tree = _PARSER.parse(source)
    assert not tree.root_node.has_error
    strings = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "string_literal":
            strings.append(source[node.start_byte : node.end_byte].decode())
            continue
        stack.extend(node.children)
    assert strings == [literal]
    assert unquote(literal) == value


def test_non_string_is_refused() -> None:
    with pytest.raises(TypeError, match="expects str"):
        quote_pwsh_literal(5)  # type: ignore[arg-type]
