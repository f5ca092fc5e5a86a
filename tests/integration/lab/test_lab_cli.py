"""`scripts/lab.py up/down/metrics`: no leaked processes, exact-PID stop, metrics on demand and at down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.twin import fleet

pytestmark = pytest.mark.lab

REPO_ROOT = Path(__file__).resolve().parents[3]


def lab_cli(lab_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "lab.py"), "--lab-dir", str(lab_dir), *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )


def server_pids(lab_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fleet.SERVER_MODULE.encode() in cmdline and str(lab_dir).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def lifecycle_dir() -> Iterator[Path]:
    lab_dir = REPO_ROOT / "build" / f"lab-pytest-lifecycle-{os.getpid()}"
    yield lab_dir
    fleet.stop_server(lab_dir)
    shutil.rmtree(lab_dir, ignore_errors=True)


def test_up_twice_does_not_leak_and_down_leaves_nothing(lifecycle_dir):
    subnet = str(fleet.free_subnet(251, 254))
    first = lab_cli(lifecycle_dir, "up", "--hosts", "3", "--subnet", subnet)
    assert first.returncode == 0, first.stderr
    assert len(server_pids(lifecycle_dir)) == 1
    first_pid = server_pids(lifecycle_dir)[0]

    second = lab_cli(lifecycle_dir, "up", "--hosts", "3", "--subnet", subnet)
    assert second.returncode == 0, second.stderr
    assert f"already running (pid {first_pid})" in second.stdout
    assert server_pids(lifecycle_dir) == [int((lifecycle_dir / "lab.pid").read_text())]
    assert first_pid not in server_pids(lifecycle_dir)

    metrics = lab_cli(lifecycle_dir, "metrics")
    assert metrics.returncode == 0, metrics.stderr
    doc = json.loads((lifecycle_dir / "metrics.json").read_text())
    assert set(doc["hosts"]) == {"lync-fe01.lab.test", "exch-mbx01.lab.test", "adfs01.lab.test"}

    (lifecycle_dir / "metrics.json").unlink()
    down = lab_cli(lifecycle_dir, "down")
    assert down.returncode == 0, down.stderr
    assert server_pids(lifecycle_dir) == []
    assert not (lifecycle_dir / "lab.pid").exists()
    assert json.loads((lifecycle_dir / "metrics.json").read_text())["hosts"]  # written at down

    again = lab_cli(lifecycle_dir, "down")
    assert again.returncode == 0 and "no lab server was running" in again.stdout
