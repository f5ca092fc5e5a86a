"""execution-environment.yml and meta/execution-environment.yml, through ansible-builder itself.

``ansible-builder create`` writes the build context only (tests/integration/awx/test_ee_image.py builds and runs
the image); ``ansible-builder introspect`` is what the image build runs over the installed collections to collect
their Python needs, so running it over ``.collections`` checks the collection's own EE metadata the way a build
would read it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import yaml
from packaging.requirements import Requirement

from tests.ee.definition import CONNECTION, ENGINE, REPO_ROOT, collection_version, dev_pins, ee_definition

BUILDER = REPO_ROOT / ".venv" / "bin" / "ansible-builder"
# What the collection's Python code imports beyond the standard library and ansible-core (see the test below).
EXPECTED = {"pywinrm", "cryptography"}


def _names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;#]", line.strip(), maxsplit=1)[0].lower() for line in lines
            if line.strip() and not line.strip().startswith("#")}


def test_builder_create_writes_a_context_with_the_pinned_engine_and_connection_packages(tmp_path) -> None:
    context = tmp_path / "context"
    result = subprocess.run(
        [str(BUILDER), "create", "-f", "execution-environment.yml", "--context", str(context),
         "--output-filename", "Containerfile", "-v", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    pins = dev_pins()
    engine = " ".join(f"{name}=={pins[name]}" for name in ENGINE)
    assert f'ARG ANSIBLE_INSTALL_REFS="{engine}"' in containerfile
    # The public defaults; `make ee` overrides exactly these three for its Debian base (tests/ee/build.sh).
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PKGMGR="/usr/bin/dnf"' in containerfile and 'ARG PYPKG="python3.11 python3.11-pip"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    # pip comes from the distribution: Debian's Python refuses ensurepip.
    assert "pip_install" not in containerfile
    assert "introspect" in containerfile and "LABEL ansible-execution-environment=true" in containerfile
    requirements = (context / "_build" / "requirements.txt").read_text().splitlines()
    assert _names(requirements) == EXPECTED | {"pypsrp", "pyspnego", "requests-ntlm"}
    assert sorted(requirements) == sorted(f"{name}=={pins[name]}" for name in CONNECTION)


def test_the_images_pins_satisfy_the_collections_own_ranges() -> None:
    """The EE pins what meta/ee-requirements.txt (read by ansible-builder from an installed collection) allows."""
    pins = dev_pins()
    for line in (REPO_ROOT / "meta" / "ee-requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            assert requirement.specifier.contains(pins[requirement.name.lower()]), (line, pins[requirement.name])
    tag = ee_definition()["options"]["tags"]
    assert tag == [f"localhost/crlfix-ee:{collection_version()}"]


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
