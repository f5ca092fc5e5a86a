"""pslint: a Windows PowerShell 5.1 compatibility and readability check for the collection's ``.ps1`` files.

Nothing here runs PowerShell (the machine has none); every rule reads the tree-sitter-powershell parse the tests
already use. ``python -m tests.pslint [PATH ...]`` (``make pslint``) checks every ``.ps1`` of the collection, or the
given files, and exits 1 on any finding. docs/dev/host-scripts.md ("pslint") lists the rules and why each exists.

The tree API (``parse``, ``walk``, ``commands``, ``command_name``, ``top_level_statements``, ``functions``) is also
what the structural tests over the host scripts query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tree_sitter
import tree_sitter_powershell

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# Windows PowerShell 5.1's built-in aliases (System.Management.Automation InitialSessionState.BuiltInAliases) and the
# aliases its default modules export (Microsoft.PowerShell.Utility, .Management, CimCmdlets).
ALIASES = frozenset("""
% ? ac asnp cat cd chdir clc clear clhy cli clp cls clv cnsn compare copy cp cpi cpp curl cvpa dbp del diff dir dnsn
ebp echo epal epcsv epsn erase etsn exsn fc fhx fl foreach ft fw gal gbp gc gcb gci gcim gcls gcm gcms gcs gdr ghy gi
gin gjb gl gm gmo gp gps gpv group gsn gsnp gsv gtz gu gv gwmi h history icim icm iex ihy ii ipal ipcsv ipmo ipsn irm
ise iwmi iwr kill lp ls man md measure mi mount move mp mv nal ncim ncms ncso ndr ni nmo npssc nsn nv ogv oh popd ps
pushd pwd r rbp rcie rcim rcjb rcms rcsn rd rdr ren ri rjb rm rmdir rmo rni rnp rp rsn rsnp rujb rv rvpa rwmi sajb sal
saps sasv sbp sc scb select set shcm si sl sleep sls sort sp spjb spps spsv start stz sujb sv swmi tee trcm type wget
where wjb write
""".split())

# Rule ids and one line each (the docs table says why).
RULES = {
    "PS01": "non-ASCII byte",
    "PS02": "syntax error",
    "PS03": "syntax newer than Windows PowerShell 5.1",
    "PS04": "alias instead of the command's name",
    "PS05": "here-string (Ansible's encoder strips every line)",
    "PS06": "host script does not end in a known state",
    "PS07": "positional argument to a crlfix function",
    "PS08": "parameters declared after the function name",
    "PS09": "name shorter than 3 characters",
}
# Variables that are PowerShell's own, whatever their length.
_AUTOMATIC = {"_", "?", "^", "$", "args", "input", "this", "true", "false", "null", "error", "host"}
_CRLFIX_FUNCTION = re.compile(r"^[A-Za-z]+-Crlfix\w*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    column: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.rule} {self.message}"


# --- the tree ------------------------------------------------------------------------------------------------------

def parse(source: str | bytes) -> tree_sitter.Tree:
    return _PARSER.parse(source.encode("utf-8") if isinstance(source, str) else source)


def text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def code(node: tree_sitter.Node) -> str:
    """The text of ``node`` without its comments: what PowerShell runs, for checks that must not read a comment."""
    data = node.text or b""
    for comment in sorted((c for c in walk(node) if c.type == "comment"), key=lambda c: -c.start_byte):
        start, end = comment.start_byte - node.start_byte, comment.end_byte - node.start_byte
        data = data[:start] + data[end:]
    return data.decode("utf-8", "replace")


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under ``node`` (itself included), in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def command_name(command: tree_sitter.Node) -> str | None:
    """The name a ``command`` node calls (``None`` for ``& $program``)."""
    name = next((child for child in command.children if child.type == "command_name"), None)
    return text(name).strip() if name is not None else None


def command_arguments(command: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The parameters and values after a command's name, in order (separators left out)."""
    elements = next((child for child in command.children if child.type == "command_elements"), None)
    if elements is None:
        return []
    return [child for child in elements.named_children if child.type != "command_argument_sep"]


def commands(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    return (current for current in walk(node) if current.type == "command")


def top_level_statements(root: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The statements of a file (or of a function's body, given its ``script_block``), in order."""
    statements = next((child for child in walk(root) if child.type == "statement_list"), None)
    return list(statements.named_children) if statements is not None else []


def functions(root: tree_sitter.Node) -> dict[str, tree_sitter.Node]:
    """Name (as written) -> ``function_statement`` node."""
    found = {}
    for node in walk(root):
        if node.type == "function_statement":
            name = next((child for child in node.children if child.type == "function_name"), None)
            if name is not None:
                found[text(name)] = node
    return found


def statement_command_name(statement: tree_sitter.Node) -> str | None:
    """The command a statement consists of, when it is one command alone (``Exit-CrlfixScript``)."""
    if statement.type != "pipeline" or len(statement.named_children) != 1:
        return None
    chain = statement.named_children[0]
    if chain.type != "pipeline_chain" or len(chain.named_children) != 1 or chain.named_children[0].type != "command":
        return None
    return command_name(chain.named_children[0])


def member_reads(root: tree_sitter.Node, variable: str) -> set[str]:
    """The members read directly off ``$<variable>`` (``$CrlfixArgs.stores`` -> ``stores``)."""
    found = set()
    for node in walk(root):
        if node.type == "member_access" and node.named_children:
            owner, member = node.named_children[0], node.named_children[-1]
            if owner.type == "variable" and text(owner).lower() == f"${variable.lower()}":
                found.add(text(member))
    return found


def option_tables(root: tree_sitter.Node) -> dict[str, list[str]]:
    """``$<Table> = [ordered]@{ <Parameter> = @{ Name = '<name>'; Default = ... } }``: ``$table`` -> the names."""
    tables: dict[str, list[str]] = {}
    for node in walk(root):
        if node.type != "assignment_expression" or not node.named_children:
            continue
        names = [text(entry.named_children[1]).strip().strip("'\"") for entry in walk(node)
                 if entry.type == "hash_entry" and len(entry.named_children) == 2
                 and text(entry.named_children[0]).strip() == "Name"]
        if names:
            tables[text(node.named_children[0]).strip().lower()] = names
    return tables


def defaulted_reads(root: tree_sitter.Node, variable: str) -> set[str]:
    """The names read with a default: ``Get-CrlfixArgument -Arguments $<variable> -Name '<name>' -Default ...``,
    or every name of the option table in ``Get-CrlfixOptions -Arguments $<variable> -Options $<Table>``."""
    found = set()
    tables: dict[str, list[str]] | None = None
    for command in commands(root):
        name = (command_name(command) or "").lower()
        if name not in ("get-crlfixargument", "get-crlfixoptions"):
            continue
        arguments = [text(argument) for argument in command_arguments(command)]
        pairs = dict(zip(arguments[::2], arguments[1::2], strict=False))
        if pairs.get("-Arguments", "").lower() != f"${variable.lower()}":
            continue
        if name == "get-crlfixargument" and "-Name" in pairs:
            found.add(pairs["-Name"].strip("'\""))
        elif name == "get-crlfixoptions" and "-Options" in pairs:
            tables = option_tables(root) if tables is None else tables
            found.update(tables.get(pairs["-Options"].lower(), ()))
    return found


# --- the rules -----------------------------------------------------------------------------------------------------

def _at(path: str, node: tree_sitter.Node, rule: str, message: str) -> Finding:
    row, column = node.start_point
    return Finding(path, row + 1, column + 1, rule, message)


def _non_ascii(path: str, data: bytes) -> list[Finding]:
    found = []
    for line_number, line in enumerate(data.split(b"\n"), 1):
        for column, byte in enumerate(line, 1):
            if byte > 0x7F:
                message = f"byte 0x{byte:02X}: the scripts are ASCII only"
                found.append(Finding(path, line_number, column, "PS01", message))
                break
    return found


def _newer_syntax(source: bytes, node: tree_sitter.Node) -> str | None:
    """What PowerShell 7 syntax an ERROR node holds, judged from its text and what follows it."""
    around = source[node.start_byte : node.end_byte + 3].decode("utf-8", "replace")
    inside = text(node)
    if "??" in around:
        return "the null-coalescing operator ?? / ??= (PowerShell 7.0)"
    if re.search(r"\?\s*[.\[]", around) and not re.search(r"\?\s*\.\.", around):
        return "null-conditional member access ?. / ?[] (PowerShell 7.0)"
    if "?" in inside and ":" in around:
        return "the ternary operator a ? b : c (PowerShell 7.0)"
    if any(child.type in ("simple_name", "command_name") and text(child).strip().lower() == "clean"
           for child in node.children):
        return "a clean block (PowerShell 7.3)"
    return None


def _syntax(path: str, source: bytes, root: tree_sitter.Node) -> list[Finding]:
    found: list[Finding] = []
    reported_until = -1  # the end of the last ERROR node reported: its inner ERROR nodes are the same mistake
    for node in walk(root):
        if (node.is_error or node.is_missing) and node.start_byte < reported_until:
            continue
        if node.type == "pipeline_chain_tail":
            found.append(_at(path, node, "PS03", f"the pipeline chain operator {text(node).strip()} (PowerShell 7.0)"))
        elif node.type == "command" and (command_name(node) or "").lower() in ("foreach-object", "foreach", "%"):
            for argument in command_arguments(node):
                name = text(argument).lstrip("-").rstrip(":").lower()
                if argument.type == "command_parameter" and len(name) >= 2 and "parallel".startswith(name):
                    found.append(_at(path, argument, "PS03", "ForEach-Object -Parallel (PowerShell 7.0)"))
        elif node.type == "command" and (command_name(node) or "").lower() == "clean":
            found.append(_at(path, node, "PS03", "a clean block (PowerShell 7.3)"))
        elif node.is_error or node.is_missing:
            reported_until = max(reported_until, node.end_byte)
            newer = _newer_syntax(source, node) if node.is_error else None
            if newer:
                found.append(_at(path, node, "PS03", newer))
            else:
                snippet = text(node)[:40] or node.type
                found.append(_at(path, node, "PS02", f"tree-sitter-powershell cannot parse {snippet!r}"))
    return found


def _aliases(path: str, root: tree_sitter.Node) -> list[Finding]:
    found = []
    for command in commands(root):
        name = command_name(command)
        if name is not None and name.lower() in ALIASES:
            found.append(_at(path, command, "PS04", f"{name!r} is an alias: write the command's own name"))
    return found


def _here_strings(path: str, root: tree_sitter.Node) -> list[Finding]:
    return [_at(path, node, "PS05", "here-string: Ansible's encoder strips each line and drops empty ones")
            for node in walk(root) if "here_string" in node.type]


def _known_end(path: str, root: tree_sitter.Node) -> list[Finding]:
    statements = top_level_statements(root)
    names = [statement_command_name(statement) for statement in statements[-2:]]
    if [name.lower() if name else None for name in names] == ["write-crlfixdocument", "exit-crlfixscript"]:
        return []
    where = statements[-1] if statements else root
    return [_at(path, where, "PS06", "the last two statements must be Write-CrlfixDocument and Exit-CrlfixScript "
                                     "(docs/dev/host-scripts.md, 'How a script ends')")]


def _positional_arguments(path: str, root: tree_sitter.Node) -> list[Finding]:
    found = []
    for command in commands(root):
        name = command_name(command)
        if name is None or not _CRLFIX_FUNCTION.match(name):
            continue
        expects_value = False
        for argument in command_arguments(command):
            if argument.type == "command_parameter":
                expects_value = not text(argument).endswith(":")
            elif expects_value or text(argument).startswith("@"):
                expects_value = False  # a parameter's value, or a splatted hashtable
            else:
                found.append(_at(path, argument, "PS07", f"{name} gets {text(argument)[:30]!r} by position: name it"))
    return found


def _inline_parameters(path: str, root: tree_sitter.Node) -> list[Finding]:
    found = []
    for name, function in functions(root).items():
        if any(child.type == "function_parameter_declaration" for child in function.children):
            message = f"function {name}(...): declare its parameters in a param() block"
            found.append(_at(path, function, "PS08", message))
    return found


def _short_names(path: str, root: tree_sitter.Node) -> list[Finding]:
    found, reported = [], set()
    for node in walk(root):
        if node.type != "variable":
            continue
        name = text(node).lstrip("$@").split(":")[-1].strip("{}")
        if len(name) < 3 and name.lower() not in _AUTOMATIC and name.lower() not in reported:
            reported.add(name.lower())
            found.append(_at(path, node, "PS09", f"${name}: give the variable a name that says what it holds"))
    return found


def check_source(source: str | bytes, *, path: str = "<string>", host_script: bool = False) -> list[Finding]:
    """Every finding in one PowerShell text; ``host_script``: also PS06 (a script the seam sends, not a fragment)."""
    data = source.encode("utf-8") if isinstance(source, str) else source
    root = parse(data).root_node
    found = _non_ascii(path, data) + _syntax(path, data, root)
    for rule in (_aliases, _here_strings, _positional_arguments, _inline_parameters, _short_names):
        found += rule(path, root)
    if host_script:
        found += _known_end(path, root)
    # A line already explained (newer syntax, a non-ASCII byte) needs no second, vaguer syntax finding.
    explained = {finding.line for finding in found if finding.rule in ("PS01", "PS03")}
    return sorted(finding for finding in found if finding.rule != "PS02" or finding.line not in explained)


def is_host_script(path: Path) -> bool:
    """A host script the seam sends (``_ps1/<name>.ps1``); ``_<name>.ps1`` files are fragments."""
    return not path.name.startswith("_")


def check_file(path: Path, *, display: str | None = None) -> list[Finding]:
    return check_source(path.read_bytes(), path=display or str(path), host_script=is_host_script(path))


__all__ = ["ALIASES", "RULES", "Finding", "check_file", "check_source", "code", "command_arguments", "command_name",
           "commands", "defaulted_reads", "functions", "is_host_script", "member_reads", "option_tables", "parse",
           "statement_command_name", "text", "top_level_statements", "walk"]
