"""Every documented example of the collection, as text the examples test can run (private to the tests).

Sources (``documented()``): each module's ``EXAMPLES`` (plugins/modules/*.py), each filter's ``EXAMPLES``
(plugins/filter/*.yml), and the fenced ``yaml`` and ``bash`` blocks of README.md, docs/*.md and
roles/fix_crl/README.md. A fence without a language (a run's output, a folder tree) or in another language
(``toml``) is text, not an example.

A snippet that cannot run in the lab says so where it is written, with a one-line reason:

- in Markdown, an HTML comment on the line before the fence: ``<!-- example: not run in the lab: reason -->``;
- in an ``EXAMPLES`` block, a comment on the line(s) before a task: ``# example: not run in the lab: reason``
  (only that task is left out).

A marker with an empty reason is an error (``SnippetError``), and so is a marker that precedes nothing.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
MARKER = "example: not run in the lab:"
_MD_MARKER = re.compile(r"^\s*<!--\s*example:\s*not run in the lab:(?P<reason>.*?)-->\s*$")
_YAML_MARKER = re.compile(r"^\s*#\s*example:\s*not run in the lab:(?P<reason>.*)$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
LANGUAGES = {"yaml": "yaml", "yml": "yaml", "bash": "shell", "sh": "shell", "shell": "shell"}


class SnippetError(ValueError):
    """A documented example the test cannot account for: a bad marker, an unterminated fence, bad YAML."""


@dataclass
class Snippet:
    """One example: ``where`` is ``path:line`` of its first line; ``skip`` the reason it is not run, if marked."""

    where: str
    kind: str  # yaml | shell
    text: str
    skip: str | None = None
    tasks_skipped: list[str] = field(default_factory=list)  # "name: reason" of tasks left out of a YAML block

    @property
    def page(self) -> str:
        return self.where.rsplit(":", 1)[0]


def _reason(match: re.Match[str], where: str) -> str:
    reason = match["reason"].strip()
    if not reason:
        raise SnippetError(f"{where}: '{MARKER}' needs a reason after the colon")
    return reason


def markdown_snippets(path: Path) -> list[Snippet]:
    """The ``yaml``/``bash`` fences of a Markdown file, with the marker of each (if any)."""
    rel = path.relative_to(REPO_ROOT).as_posix()
    lines = path.read_text().splitlines()
    snippets: list[Snippet] = []
    pending: tuple[int, str] | None = None
    i = 0
    while i < len(lines):
        marker = _MD_MARKER.match(lines[i])
        if marker:
            pending = (i + 1, _reason(marker, f"{rel}:{i + 1}"))
            i += 1
            continue
        fence = _FENCE.match(lines[i])
        if not fence:
            if pending and lines[i].strip():
                raise SnippetError(f"{rel}:{pending[0]}: the marker must be the line right before a fence")
            i += 1
            continue
        start, indent, lang = i + 1, fence["indent"], fence["lang"].lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if i == len(lines):
            raise SnippetError(f"{rel}:{start}: fence never closed")
        i += 1
        if lang in LANGUAGES:
            skip = pending[1] if pending else None
            snippets.append(Snippet(f"{rel}:{start + 1}", LANGUAGES[lang], "\n".join(body) + "\n", skip))
        elif pending:
            raise SnippetError(f"{rel}:{pending[0]}: marker before a '{lang or 'text'}' fence, which is never run")
        pending = None
    if pending:
        raise SnippetError(f"{rel}:{pending[0]}: the marker precedes no fence")
    return snippets


def drop_marked_tasks(text: str, where: str) -> tuple[str, list[str]]:
    """An EXAMPLES task list without its marked tasks; returns (text, ["task: reason", ...]).

    A task is a line starting with ``- `` at column 0 and what follows it; the comment lines right above it at
    column 0 belong to it, and a marker among them leaves the whole task out.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("- ")]
    heads = []
    for start in starts:
        head = start
        while head > 0 and lines[head - 1].startswith("#"):
            head -= 1
        heads.append(head)
    for i, line in enumerate(lines):
        if _YAML_MARKER.match(line) and not any(h <= i < s for h, s in zip(heads, starts, strict=True)):
            raise SnippetError(f"{where}:{i + 1}: the marker must be in the comment lines right before a task")
    dropped: set[int] = set()
    skipped: list[str] = []
    for k, (head, start) in enumerate(zip(heads, starts, strict=True)):
        reasons = [_reason(m, f"{where}:{i + 1}") for i in range(head, start) if (m := _YAML_MARKER.match(lines[i]))]
        if reasons:
            end = heads[k + 1] if k + 1 < len(heads) else len(lines)
            dropped.update(range(head, end))
            skipped.append(f"{lines[start][2:].strip()}: {reasons[0]}")
    return "\n".join(line for i, line in enumerate(lines) if i not in dropped) + "\n", skipped


def module_examples(path: Path) -> Snippet:
    rel = path.relative_to(REPO_ROOT).as_posix()
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            text, skipped = drop_marked_tasks(node.value.value, f"{rel} EXAMPLES")
            return Snippet(f"{rel}:{node.lineno}", "yaml", text, None, skipped)
    raise SnippetError(f"{rel}: no EXAMPLES")


def filter_examples(path: Path) -> Snippet:
    rel = path.relative_to(REPO_ROOT).as_posix()
    doc = yaml.safe_load(path.read_text())
    if not doc.get("EXAMPLES"):
        raise SnippetError(f"{rel}: no EXAMPLES")
    text, skipped = drop_marked_tasks(doc["EXAMPLES"], f"{rel} EXAMPLES")
    return Snippet(f"{rel}:EXAMPLES", "yaml", text, None, skipped)


def doc_pages() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "roles/fix_crl/README.md",
            REPO_ROOT / "inventory.example/README.md"]


def modules() -> list[Path]:
    return sorted((REPO_ROOT / "plugins" / "modules").glob("*.py"))


def filters() -> list[Path]:
    return sorted((REPO_ROOT / "plugins" / "filter").glob("*.yml"))


def substitute(text: str, substitutions: dict[str, str]) -> str:
    """Replace each key of ``substitutions`` by its value, longest key first (so a URL wins over its host)."""
    for old in sorted(substitutions, key=len, reverse=True):
        text = text.replace(old, substitutions[old])
    return text


def reader_checkout(where: Path, lab_dir: Path | None = None) -> Path:
    """A checkout as a reader has it after `make setup` (links to this one), without ``inventory/`` and
    ``reports/``; its ``build/lab`` is ``lab_dir`` when given (ansible.cfg's inventory), else there is no lab."""
    clone = where / "checkout"
    clone.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name not in ("build", "reports", "inventory", ".git"):
            (clone / entry.name).symlink_to(entry)
    if lab_dir is not None:
        (clone / "build").mkdir()
        (clone / "build" / "lab").symlink_to(lab_dir)
    return clone


def reader_env(**extra: str) -> dict[str, str]:
    """This process's environment without Ansible's variables or the venv: what a reader's shell has."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not Path(p).resolve().as_posix().endswith("/.venv/bin"))
    return {**env, "ANSIBLE_NOCOLOR": "1", **extra}


def yaml_shape(snippet: Snippet) -> str:
    """``play`` (a list of plays), ``tasks`` (a list of tasks) or ``data`` (anything else: an inventory, vars)."""
    try:
        doc = yaml.safe_load(snippet.text)
    except yaml.YAMLError as exc:
        raise SnippetError(f"{snippet.where}: not YAML: {exc}") from exc
    if isinstance(doc, list) and doc and all(isinstance(item, dict) for item in doc):
        return "play" if all("hosts" in item for item in doc) else "tasks"
    return "data"
