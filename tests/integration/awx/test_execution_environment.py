"""execution-environment.yml and meta/execution-environment.yml, through ansible-builder itself.

``ansible-builder create`` writes the build context only (no container runtime here); ``ansible-builder
introspect`` is what the image build runs over the installed collections to collect their Python needs, so
running it over ``.collections`` checks the collection's own EE metadata the way a build would read it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILDER = REPO_ROOT / ".venv" / "bin" / "ansible-builder"
# What the collection's Python code imports beyond the standard library and ansible-core (see the test below).
EXPECTED = {"pywinrm", "cryptography"}


def _names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;#]", line.strip(), maxsplit=1)[0].lower() for line in lines
            if line.strip() and not line.strip().startswith("#")}


def test_builder_create_writes_a_context_with_exactly_the_collections_needs(tmp_path) -> None:
    context = tmp_path / "context"
    result = subprocess.run(
        [str(BUILDER), "create", "-f", "execution-environment.yml", "--context", str(context),
         "--output-filename", "Containerfile", "-v", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "introspect" in containerfile and "LABEL ansible-execution-environment=true" in containerfile
    requirements = (context / "_build" / "requirements.txt").read_text().splitlines()
    assert _names(requirements) == EXPECTED
    # The engine pins are the ones the collection is tested with.
    dev = (REPO_ROOT / "requirements" / "dev.txt").read_text()
    for pin in ("ansible-core==2.19.14", "ansible-runner==2.4.3"):
        assert pin in dev


def test_builder_introspection_reads_the_collections_ee_metadata() -> None:
    result = subprocess.run(
        [str(BUILDER), "introspect", "--sanitize", str(REPO_ROOT / ".collections")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(result.stdout.split("---", 1)[1])
    assert {line.split("#")[1].strip() for line in doc["python"]} == {"from collection crlfix.windows"}
    assert _names(doc["python"]) == EXPECTED
    assert doc["system"] == []
    meta = yaml.safe_load((REPO_ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta == {"version": 1, "dependencies": {"python": "meta/ee-requirements.txt"}}


def test_the_listed_needs_are_what_the_collection_imports() -> None:
    """Third-party imports of plugins/ (what the EE must provide beyond ansible-core) map onto EXPECTED."""
    provides = {"winrm": "pywinrm", "cryptography": "cryptography"}
    # jinja2 is a requirement of ansible-core itself, so every EE has it.
    stdlib_or_core = {"ansible", "ansible_collections", "__future__", "jinja2"}
    found = set()
    for path in (REPO_ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    third_party = {name for name in found - stdlib_or_core if name not in sys.stdlib_module_names}
    assert third_party <= set(provides), f"imports without an EE requirement: {third_party - set(provides)}"
    # pywinrm is imported by ansible-core's winrm connection plugin, not by our code; cryptography by ours.
    assert "cryptography" in third_party
    assert {provides[name] for name in third_party} | {"pywinrm"} == EXPECTED
