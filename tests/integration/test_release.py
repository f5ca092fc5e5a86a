"""The release as `make release` makes it, checked in a throwaway copy (``scripts/release.sh --check``).

antsibull-changelog turns the fragments into changelogs/changelog.yaml and CHANGELOG.md for the version of
galaxy.yml, ansible-galaxy builds the tarball, and galaxy-importer (what Galaxy runs on an upload) accepts it
without a warning. The checkout itself is left as it was (docs/dev/release.md).
"""

from __future__ import annotations

import os
import subprocess

import yaml

from tests.conftest import REPO_ROOT


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_the_release_of_the_galaxy_version_is_clean_in_a_copy() -> None:
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
    before = _status()
    result = subprocess.run(["bash", "scripts/release.sh", "--check"], cwd=REPO_ROOT, env=dict(os.environ),
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"release: CHANGELOG.md has v{version}" in result.stdout
    assert f"release: galaxy-importer accepts crlfix-windows-{version}.tar.gz" in result.stdout
    assert _status() == before
