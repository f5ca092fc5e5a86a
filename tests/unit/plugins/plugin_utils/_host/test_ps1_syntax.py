"""Every host script parses as PowerShell (tree-sitter-powershell), alone and as the seam sends it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    PS1_DIR,
    SCRIPT_FRAGMENTS,
    SCRIPT_PREAMBLES,
    SCRIPT_SCHEMA,
    _read_ps1,
    build_host_script,
)

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
PS1_FILES = sorted(PS1_DIR.glob("*.ps1"))


def syntax_errors(source: str) -> list[str]:
    """Return 'line:col: text' for every ERROR or MISSING node in ``source``."""
    tree = _PARSER.parse(source.encode("utf-8"))
    found: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row, col = node.start_point
            snippet = source.encode("utf-8")[node.start_byte : node.end_byte][:60].decode("utf-8", "replace")
            found.append(f"{row + 1}:{col + 1}: {snippet!r}")
        stack.extend(node.children)
    return found


def test_the_checker_can_fail() -> None:
    assert syntax_errors("$x = @{ a = 1\nif ($x -eq { ") != []
    assert syntax_errors("$x = @{ a = 1 }; $x | ConvertTo-Json -Compress") == []


def test_every_known_script_has_a_file() -> None:
    missing = sorted(name for name in SCRIPT_SCHEMA if not (PS1_DIR / f"{name}.ps1").exists())
    assert missing == [], f"host scripts declared in SUPPORTED_SCHEMAS without a .ps1 file: {missing}"


@pytest.mark.parametrize("path", PS1_FILES, ids=lambda p: p.name)
def test_ps1_file_parses(path: Path) -> None:
    assert syntax_errors(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", sorted(SCRIPT_SCHEMA))
def test_built_script_parses_with_hostile_arguments(name: str) -> None:
    hostile = {"x": "'; Invoke-Crlfix0wned C:\\ -Recurse; '", "y": "\u2019$(calc)\u2018", "z": "`n\"&|"}
    script = build_host_script(name, hostile)
    assert syntax_errors(script) == []
    # The arguments stay inside the single literal of the $CrlfixArgs line (line 3, or after host_audit's floor check)
    # and nowhere else.
    lines = script.splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith("$CrlfixArgs = "))
    assert at == 2 + sum(len(_read_ps1(part).split("\n")) for part in SCRIPT_PREAMBLES.get(name, ()))
    assert "Invoke-Crlfix0wned" in lines[at]
    assert not any("Invoke-Crlfix0wned" in line for index, line in enumerate(lines) if index != at)


# Arguments that call for every fragment a script may carry (_script.FRAGMENT_NEEDS; which go without them:
# test_script_fragments.py).
FULL_ARGS = {"host_audit": {"winhttp": True, "identities": {"wpad": {}, "chain": {}}, "stores": ["My"], "crl": {},
                            "tls": {}, "evidence": {}},
             "cert_inventory": {"winhttp": True}}


@pytest.mark.parametrize("name", sorted(SCRIPT_SCHEMA))
def test_every_crlfix_function_a_built_script_calls_is_defined_in_it(name: str) -> None:
    # Shared pieces live in _ps1/_*.ps1 fragments (_host_script.SCRIPT_FRAGMENTS); a script whose fragment is
    # not included would only fail on Windows ("The term ... is not recognized"), which no test here runs.
    script = build_host_script(name, FULL_ARGS.get(name, {}))
    defined = set(re.findall(r"^function ([A-Za-z]+-Crlfix\w+)", script, re.MULTILINE))
    called = set(re.findall(r"\b([A-Z][a-z]+-Crlfix\w+)\b", script))
    assert called - defined == set()
    assert called, "the pattern must see the calls"


def test_host_audit_is_built_from_every_engine_before_its_body() -> None:
    script = build_host_script("host_audit", FULL_ARGS["host_audit"])
    for fragment in ("_winhttp", "_stores", "_der", "_pool", "_crl", "_tls"):
        assert (PS1_DIR / f"{fragment}.ps1").read_text(encoding="utf-8") in script
    # Each fragment is included once and before the body that uses it.
    assert script.count("function Start-CrlfixFetch") == 1
    assert script.index("function Start-CrlfixProbes") < script.index("$probes = Start-CrlfixProbes @probeParameters")


@pytest.mark.parametrize("name", sorted(SCRIPT_SCHEMA))
def test_every_fragment_a_script_carries_is_one_it_uses(name: str) -> None:
    # A fragment carried for nothing only costs bytes on the wire; one missing fails only on Windows.
    body = (PS1_DIR / f"{name}.ps1").read_text(encoding="utf-8")
    script = build_host_script(name, FULL_ARGS.get(name, {}))
    called = set(re.findall(r"\b([A-Z][a-z]+-Crlfix\w+)\b", script))
    for fragment in SCRIPT_FRAGMENTS[name]:
        defined = set(re.findall(r"^function ([A-Za-z]+-Crlfix\w+)", (PS1_DIR / f"{fragment}.ps1").read_text(),
                                 re.MULTILINE))
        assert defined & called, f"{name} carries {fragment} but calls none of its functions"
    assert body in script
