"""scripts/record_host.py end to end against a lab twin (the twin plays the real host), then the replay over what it
wrote: the path a first real Windows host takes, with no new code (docs/dev/real-windows.md)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.plugins._adhoc import http_profile_hosts
from tests.twin import winhttp_value
from tests.unit.plugins.fixtures.recorded.replay import load, replay_folder

pytestmark = pytest.mark.lab
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def recorded_pair(lab):
    host, peer = http_profile_hosts(lab)[:2]
    # Different values in the two views, so the per-view check between netsh, reg and winhttp_state means something.
    state = lab.reset_state(host)
    for view, value in (("native", winhttp_value.encode(3, lab.proxy, "<local>")),
                        ("wow6432", winhttp_value.encode(5, "", ""))):
        state["registry"][view]["WinHttpSettings"] = base64.b64encode(value).decode("ascii")
    lab.write_state(host, state)
    lab.clear_crl_faults()
    yield host, peer
    lab.reset_state(host)


def _record(lab, host: str, peer: str, out, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "scripts/record_host.py", "-i", str(lab.inventory_path), host, "--out", str(out),
               "--peer", f"{lab.hosts[peer].address}:{lab.tls_port}", "--apply-conflict", "--twin",
               "--source", "the twin (tests/twin), not Windows", "--crl-timeout-ms", "3000",
               "--probe-timeout-ms", "8000", "--time-box-ms", "20000", *extra]
    return subprocess.run(command, cwd=REPO_ROOT, env=lab.ansible_env(), capture_output=True, text=True, timeout=600,
                          check=False)


def test_a_recorded_twin_replays_through_every_parser(lab, recorded_pair, tmp_path, monkeypatch) -> None:
    host, peer = recorded_pair
    before = lab.state(host)["registry"]
    result = _record(lab, host, peer, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    folder = load(tmp_path / host)
    assert folder.manifest["host_kind"] == "twin" and folder.manifest["connection"] == "winrm"
    scripts = {r.script for r in folder.recordings if r.kind == "script"}
    assert scripts == {"winhttp_state", "cert_inventory", "crl_fetch", "tls_probe", "host_audit", "winhttp_apply"}

    replayed = replay_folder(folder, monkeypatch)
    assert replayed["winhttp_state"]["views"]["native"]["proxy"] == lab.proxy
    assert replayed["native"]["netsh_native"].proxy == lab.proxy
    assert replayed["native"]["netsh_wow6432"].mode == "direct"
    assert all(r["usable"] for r in replayed["crl_fetch"]["results"] if r["kind"] == "crl")
    assert replayed["host_audit"].commands == 1
    # Nothing was written: the apply was refused by the host's compare, and no purge ran.
    assert replayed["documents"]["winhttp_apply"]["results"] == []
    assert lab.state(host)["registry"] == before


def test_masking_hides_the_host_and_keeps_the_folder_replayable(lab, recorded_pair, tmp_path, monkeypatch) -> None:
    host, peer = recorded_pair
    result = _record(lab, host, peer, tmp_path, "--mask")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    folder_path = tmp_path / "masked-host"
    texts = {path.name: path.read_text() for path in folder_path.glob("*.json")}
    computer_name = lab.state(host)["hostname"]
    for name, text in texts.items():
        for original in (host, computer_name, lab.hosts[host].address):
            assert original.lower() not in text.lower(), f"{original} left in {name}"
    folder = load(folder_path)
    assert folder.manifest["masked"] is True
    document = json.loads(folder.script("winhttp_state").stdout.strip())
    assert document["computer_name"] == "masked-host"
    replay_folder(folder, monkeypatch)  # the masked names are consistent: every parser still accepts the folder


def test_more_than_one_host_is_refused(lab, tmp_path) -> None:
    result = subprocess.run([sys.executable, "scripts/record_host.py", "-i", str(lab.inventory_path), "windows",
                             "--out", str(tmp_path)], cwd=REPO_ROOT, env=lab.ansible_env(), capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2 and "must name exactly one host" in result.stderr
    assert list(tmp_path.iterdir()) == []
