"""The collection's metadata says what the README and issues promise."""

from __future__ import annotations

import yaml

from tests.conftest import REPO_ROOT


def test_galaxy_identity() -> None:
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("crlfix", "windows")


def test_requires_ansible_covers_2_18_to_2_21() -> None:
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == ">=2.18.0,<2.22.0"


def test_ci_runs_only_make_test() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == "make test"


def test_the_version_is_named_the_same_everywhere() -> None:
    """galaxy.yml's version is the README's tarball, and no plugin or role is newer than the collection."""
    version = str(yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"])
    assert f"crlfix-windows-{version}.tar.gz" in (REPO_ROOT / "README.md").read_text()
    added = [yaml.safe_load((REPO_ROOT / "roles" / "fix_crl" / "meta" / "argument_specs.yml").read_text())
             ["argument_specs"]["main"]["version_added"]]
    added += [yaml.safe_load(path.read_text())["DOCUMENTATION"]["version_added"]
              for path in (REPO_ROOT / "plugins" / "filter").glob("*.yml")]
    as_tuple = [tuple(int(part) for part in str(value).split(".")) for value in added]
    assert all(value <= tuple(int(part) for part in version.split(".")) for value in as_tuple), added
