"""Helpers of the execution-environment tests (unit and integration): the pins, the image build, podman as
`make ee` runs it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
# What the image must carry at the versions the collection is tested with (requirements/dev.txt).
ENGINE = ("ansible-core", "ansible-runner")
CONNECTION = ("pywinrm", "requests-ntlm", "pypsrp", "pyspnego", "cryptography")


def dev_pins() -> dict[str, str]:
    """``name == version`` lines of requirements/dev.txt, by lower-case name."""
    pins = {}
    for line in (REPO_ROOT / "requirements" / "dev.txt").read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#]+)\s*(#.*)?", line.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def ee_definition() -> dict:
    return yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text())


def collection_version() -> str:
    return str(yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"])


def podman_env() -> dict[str, str]:
    """The environment `make ee` gives podman (tests/ee/podman-env.sh writes the file)."""
    return dict(os.environ, CONTAINERS_CONF=str(REPO_ROOT / "build" / "ee" / "containers.conf"))


def build_image() -> str:
    """`make ee`'s build (cached layers make a second one take seconds); returns the image name."""
    result = subprocess.run(["bash", "tests/ee/build.sh"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=1800, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def podman(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
