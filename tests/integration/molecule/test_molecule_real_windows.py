"""`molecule test -s real_windows` against a lab twin given by inventory, as a user gives a real host.

The scenario runs the role's audit (check), fix (converge), idempotence and verify on the one host CRLFIX_HOST names
in the inventory CRLFIX_INVENTORY; here the inventory is the pytest lab's (plus, as a user's own inventory would
carry, ``fix_crl_peers: []``: the TLS peers of the lab's groups are other twins the test does not fix) and the host a
twin whose WinHTTP proxy is unset, so the audit must plan the change, the fix make and prove it and the second run
change nothing.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.plugins._adhoc import http_profile_hosts, set_proxy

pytestmark = pytest.mark.lab

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
STEPS = ("check", "converge", "idempotence", "verify")


def _inventory(lab, directory: Path) -> Path:
    document = yaml.safe_load(lab.inventory_path.read_text())
    document["all"].setdefault("vars", {})["fix_crl_peers"] = []
    path = directory / "inventory.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def _molecule(lab, inventory: Path, host: str | None, *command: str) -> tuple[int, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_", "CRLFIX_"))}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1", ANSIBLE_NOCOLOR="1",
               CRLFIX_INVENTORY=str(inventory))
    if host is not None:
        env["CRLFIX_HOST"] = host
    result = subprocess.run([str(VENV_BIN / "molecule"), *command, "-s", "real_windows"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    return result.returncode, re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


@pytest.fixture
def unset_host(lab):
    host = http_profile_hosts(lab)[0]
    set_proxy(lab, host, None)
    yield host
    lab.reset_state(host)


def test_the_scenario_audits_fixes_and_proves_a_host_of_the_inventory(lab, unset_host, tmp_path) -> None:
    rc, output = _molecule(lab, _inventory(lab, tmp_path), unset_host, "test")
    assert rc == 0, output[-15000:]
    for step in STEPS:
        assert re.search(rf"real_windows (?:➜|>) {step}: Executed: Successful", output), f"{step}:\n{output[-8000:]}"
    # The fix wrote the site's proxy into the twin's native view (read back from its state, not through the role).
    proxy = lab.state(unset_host)["registry"]["native"]["WinHttpSettings"]
    assert proxy is not None
    assert lab.proxy.encode("ascii") in base64.b64decode(proxy)


def test_a_host_missing_from_the_inventory_stops_the_scenario(lab, tmp_path) -> None:
    rc, output = _molecule(lab, _inventory(lab, tmp_path), "no-such-host.lab.test", "check")
    assert rc != 0
    assert "is not a host of" in output
