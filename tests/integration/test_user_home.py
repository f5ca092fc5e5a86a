"""The suite's installing steps, each run with ``HOME`` an empty folder: no collection or role lands in it.

README.md ("Install") promises that `make setup`, `make test`, `make demo`, `make bench` and `make ee` install no
collection or role under ``~/.ansible``. The tools they run that can install one are run here as those targets
run them:

- molecule, whose prerun (before any subcommand) would build the checkout and install it into
  ``~/.ansible/collections``; ``prerun: false`` in both scenarios stops it. ``molecule syntax`` goes through the
  same prerun as ``molecule test`` (tests/integration/molecule runs the whole scenario);
- ansible-lint, as `make lint` runs it (``make ansible-lint``); online it would install the checkout and
  collections/requirements.yml, so .ansible-lint says ``offline: true``;
- ansible-builder's build context (`make ee`: ``tests/ee/build.sh``); the image build itself runs in podman;
- ``ansible-galaxy collection build`` and ``install -p`` of the installed-collection test
  (tests/integration/awx/test_installed_collection.py).

What may be left is what the README names: Ansible's local tmp and molecule's scenario state
(``~/.ansible/tmp``), ansible-galaxy's server cache (``~/.ansible/galaxy_cache``) and the two empty folders
ansible-compat (molecule's and ansible-lint's runtime) makes, ``~/.ansible/collections`` and ``~/.ansible/roles``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.ee.definition import REPO_ROOT, VENV_BIN

# Folders that may hold anything (Ansible's local tmp, molecule's ephemeral directories; galaxy's API cache).
CACHES = (".ansible/tmp", ".ansible/galaxy_cache")
# Folders that may exist, but empty.
EMPTY = (".ansible", ".ansible/collections", ".ansible/roles")


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without Ansible's and molecule's variables (what a contributor's shell has)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANSIBLE_", "MOLECULE_", "CRLFIX_", "MAKE", "MFLAGS"))}
    return {**env, "HOME": str(home), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1",
            "ANSIBLE_NOCOLOR": "1", **extra}


def _run(command: list[str], home: Path, **extra: str) -> str:
    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(home, **extra), capture_output=True, text=True,
                            timeout=600, check=False)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}\n{output[-8000:]}"
    return output


def _molecule(home: Path, tmp_path: Path) -> None:
    _run([str(VENV_BIN / "molecule"), "syntax", "-s", "default"], home)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    srv01.contoso.com:\n")
    _run([str(VENV_BIN / "molecule"), "syntax", "-s", "real_windows"], home, CRLFIX_INVENTORY=str(inventory),
         CRLFIX_HOST="srv01.contoso.com")


def _ansible_lint(home: Path, tmp_path: Path) -> None:
    _run(["make", "--no-print-directory", "ansible-lint"], home)


def _builder_context(home: Path, tmp_path: Path) -> None:
    _run([str(VENV_BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c",
          str(tmp_path / "context")], home)
    assert (tmp_path / "context" / "Containerfile").is_file()


def _galaxy_install(home: Path, tmp_path: Path) -> None:
    # As test_installed_collection.py does it: no ansible.cfg, only the target folder on the collections path.
    collections = tmp_path / "collections"
    _run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "dist"), "."],
         home, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "none"))
    (tarball,) = (tmp_path / "dist").glob("crlfix-windows-*.tar.gz")
    _run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarball)], home,
         ANSIBLE_COLLECTIONS_PATH=str(collections))
    assert (collections / "ansible_collections" / "crlfix" / "windows" / "MANIFEST.json").is_file()


def left_in(home: Path) -> list[str]:
    """What ``home`` holds beyond the README's list (paths relative to it); a collection or role is always listed."""
    found = []
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home).as_posix()
        if path.name in ("ansible_collections", "MANIFEST.json", "galaxy.yml") or any(
                relative.startswith(f"{folder}/") for folder in EMPTY[1:]):
            found.append(relative)
        elif relative not in EMPTY and not any(relative == c or relative.startswith(f"{c}/") for c in CACHES):
            found.append(relative)
    return found


@pytest.mark.parametrize("step", [_molecule, _ansible_lint, _builder_context, _galaxy_install],
                         ids=["molecule", "ansible-lint", "ansible-builder", "galaxy-install"])
def test_no_collection_or_role_lands_in_home(step, tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    step(home, tmp_path)
    assert left_in(home) == []


def test_a_collection_or_role_in_home_is_seen(tmp_path) -> None:
    """The check itself: what molecule's prerun used to leave, and a role, are reported; the caches are not."""
    home = tmp_path / "home"
    (home / ".ansible" / "collections" / "ansible_collections" / "crlfix" / "windows").mkdir(parents=True)
    (home / ".ansible" / "roles" / "crlfix.fix_crl" / "tasks").mkdir(parents=True)
    (home / ".ansible" / "tmp" / "molecule.x.default").mkdir(parents=True)
    (home / ".ansible" / "galaxy_cache").mkdir()
    (home / ".ansible" / "galaxy_cache" / "api.json").write_text("{}")
    assert left_in(home) == [
        ".ansible/collections/ansible_collections", ".ansible/collections/ansible_collections/crlfix",
        ".ansible/collections/ansible_collections/crlfix/windows", ".ansible/roles/crlfix.fix_crl",
        ".ansible/roles/crlfix.fix_crl/tasks",
    ]
