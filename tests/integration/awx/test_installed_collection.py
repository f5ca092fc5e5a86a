"""The collection as users install it: ``ansible-galaxy collection build``, then ``install``, then the playbook by
its name, ``ansible-playbook crlfix.windows.fix_crl`` (README.md, docs/fix-crl.md).

Collection playbook names must be identifiers, so ``playbooks/fix_crl.yml`` is the entry point by name; it
imports ``playbooks/fix-crl.yml`` from beside it, which a checkout runs by path. The run happens in a folder of
its own, with only the installed collection on the collections path and no ansible.cfg, as on an admin's
machine; its report lands in that folder's reports/, never inside the installed collection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.ee.definition import REPO_ROOT, VENV_BIN, collection_version

# Left out of the copy the build test starts from (what `make setup` and the tests make), then planted again
# below as debris that build_ignore must keep out.
NOT_IN_COPY = (".git", ".venv", ".collections", "build", "reports", ".ruff_cache", ".pytest_cache", "__pycache__")
DEBRIS = (".ruff_cache/0.17.6/cache", ".pytest_cache/v/cache/nodeids", ".mypy_cache/3.11/cache.json",
          ".ansible/tmp/x", ".venv/bin/python", "build/lab/inventory.yml", "reports/fix-crl-x.json",
          "tests/output/junit.xml", "plugins/module_utils/__pycache__/_x.cpython-311.pyc",
          "crlfix-windows-0.0.1.tar.gz")


def _galaxy_env(collections: Path) -> dict[str, str]:
    """No ansible.cfg and only ``collections`` on the path: what an admin's machine has, not this checkout."""
    env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
    return dict(env, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def _build(source: Path, dist: Path) -> Path:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(source)],
        env=_galaxy_env(dist / "none"), capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (tarball,) = dist.glob("crlfix-windows-*.tar.gz")
    assert tarball.name == f"crlfix-windows-{collection_version()}.tar.gz"
    return tarball


def test_the_built_tarball_leaves_out_caches_and_checkout_debris(tmp_path) -> None:
    source = tmp_path / "checkout"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_IN_COPY), symlinks=True)
    for name in DEBRIS:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("debris\n")
    with tarfile.open(_build(source, tmp_path / "dist")) as tar:
        members = set(tar.getnames())
    assert {"MANIFEST.json", "FILES.json", "playbooks/fix_crl.yml", "playbooks/fix-crl.yml",
            "roles/fix_crl/tasks/main.yml", "meta/runtime.yml"} <= members
    assert not members & set(DEBRIS)
    debris_dirs = {".ruff_cache", ".pytest_cache", ".mypy_cache", ".ansible", ".venv", "build", "reports"}
    leaked = sorted(member for member in members if member.split("/")[0] in debris_dirs
                    or "__pycache__" in member or member.startswith("tests/output"))
    assert leaked == []


def test_fix_crl_by_its_collection_name_from_the_installed_tarball(lab, tmp_path) -> None:
    for name in lab.hosts:
        lab.start_twin(name)
        lab.reset_state(name)
    collections = tmp_path / "collections"
    tarball = _build(REPO_ROOT, tmp_path / "dist")
    result = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarball)],
        env=_galaxy_env(collections), capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    installed = collections / "ansible_collections" / "crlfix" / "windows"
    assert (installed / "MANIFEST.json").is_file()

    work = tmp_path / "admin"
    work.mkdir()
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "crlfix.windows.fix_crl", "-i", str(lab.inventory_path),
         "-l", "lync_servers", "--check"],
        cwd=work, env=_galaxy_env(collections), capture_output=True, text=True, timeout=900, check=False,
    )
    assert result.returncode in (0, 2), result.stdout + result.stderr

    # The default report folder is the working directory's reports/, not the installed collection.
    (report_path,) = (work / "reports").glob("fix-crl-*.json")
    assert not (installed / "reports").exists() and not (installed.parent / "reports").exists()
    report = json.loads(report_path.read_text())
    lync = {name for name, host in lab.hosts.items() if host.group == "lync_servers"}
    assert lync and {host["host"] for host in report["hosts"]} == lync
    assert report["run"]["check_mode"] is True and report["run"]["limit"] == "lync_servers"
    assert report["run"]["playbook"] == str(installed / "playbooks" / "fix-crl.yml")
    assert report["totals"]["changed"] == 0 and report["totals"]["unreachable"] == 0
    assert report_path.with_suffix(".html").is_file()
    assert f"{len(lync)} hosts targeted" in result.stdout
