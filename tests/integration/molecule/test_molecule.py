"""`molecule test -s default`: the whole scenario (molecule/default), as a contributor runs it.

About 3 minutes on 2 cores: destroy, create (a 4-twin lab with its CRL server and squid), prepare (vars/breakage.yml),
check, converge, idempotence, verify, destroy. The lab's listeners are chosen free (lab_helper.py slot), so it
runs beside pytest's own labs and a `make lab-up` lab.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
STEPS = ("destroy", "create", "prepare", "check", "converge", "idempotence", "verify")


def test_molecule_default_scenario_passes_every_step() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1", ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        [str(VENV_BIN / "molecule"), "test", "-s", "default"], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=900, check=False,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output[-15000:]
    for step in STEPS:
        assert re.search(rf"default (?:➜|>) {step}: Executed: Successful", output), f"{step}:\n{output[-8000:]}"
    # destroy stopped the lab and removed its directory.
    assert not list((REPO_ROOT / "build").glob("molecule.*-lab")), "the molecule lab was left behind"
