"""The lab server as a process: start it for a built lab directory, stop exactly it by PID, talk to it.

The server (``python -m tests.lab.fleet.server``) writes ``lab.json`` (pid, control port) once every twin
listens; the launcher keeps its PID in ``lab.pid`` and only ever signals a PID whose command line is the lab
server's (a recycled PID is never killed). The control channel is HTTP/1.1 + JSON on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.lab.fleet import LabError
from tests.lab.fleet.addresses import AddressInUse

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVER_MODULE = "tests.lab.fleet.server"
START_FAILED = "start failed: "  # the server's log line when it cannot start its twins (server.py)
_IN_USE = re.compile(r"cannot listen on (?P<address>[\d.]+):(?P<port>\d+): Address already in use")


def _pid_alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVER_MODULE.encode() in cmdline


def running_pid(lab_dir: Path) -> int | None:
    """The PID of the lab server this lab dir started, if it still runs."""
    try:
        pid = int((lab_dir / "lab.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def start_server(lab_dir: Path, timeout: float = 120.0) -> tuple[int, float]:
    """Start the lab server for a built lab dir; returns (pid, seconds until every listener answered)."""
    lab_dir = lab_dir.resolve()
    if running_pid(lab_dir) is not None:
        raise LabError(
            f"a lab server is already running for {lab_dir} (pid {running_pid(lab_dir)}); "
            "run `scripts/lab.py down` first"
        )
    started = time.monotonic()
    log_path = lab_dir / "lab-server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, "--lab-dir", str(lab_dir)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    log.close()
    (lab_dir / "lab.pid").write_text(f"{proc.pid}\n")
    fleet = json.loads((lab_dir / "fleet.json").read_text())
    deadline = started + timeout
    while not (lab_dir / "lab.json").exists() or json.loads((lab_dir / "lab.json").read_text())["pid"] != proc.pid:
        if proc.poll() is not None:
            reason = _start_failure(log_path)
            taken = _IN_USE.search(reason)
            if taken:
                why = f"the lab server could not listen; see {log_path}"
                raise AddressInUse(taken["address"], int(taken["port"]), why)
            raise LabError(f"lab server exited with {proc.returncode}: {reason}; see {log_path}")
        if time.monotonic() > deadline:
            stop_server(lab_dir)
            raise LabError(f"lab server not ready after {timeout:.0f}s; see {log_path}")
        time.sleep(0.1)
    pending = [(h["address"], p) for h in fleet["hosts"] for p in (h["http_port"], h["https_port"])]
    while pending:
        pending = [target for target in pending if not answers(*target)]
        if pending and time.monotonic() > deadline:
            stop_server(lab_dir)
            raise LabError(f"{len(pending)} listeners never answered, e.g. {pending[0]}")
    return proc.pid, time.monotonic() - started


def _start_failure(log_path: Path) -> str:
    """The reason the server gave for not starting (its last ``start failed:`` line), else a pointer."""
    lines = log_path.read_text(errors="replace").splitlines()
    reasons = [line.split(START_FAILED, 1)[1] for line in lines if START_FAILED in line]
    return reasons[-1] if reasons else "no reason in the log"


def answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def stop_server(lab_dir: Path, timeout: float = 15.0) -> bool:
    """Stop exactly the pid in lab.pid (graceful /shutdown, then SIGTERM, then SIGKILL). True if one was running."""
    lab_dir = lab_dir.resolve()
    pid = running_pid(lab_dir)
    if pid is None:
        (lab_dir / "lab.pid").unlink(missing_ok=True)
        return False
    try:
        control(lab_dir, "POST", "/shutdown", timeout=5)
    except (OSError, LabError, http.client.HTTPException):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    (lab_dir / "lab.pid").unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # When this process started the server, collect its exit status so no zombie remains.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def control(
    lab_dir: Path, method: str, path: str, timeout: float = 30.0, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One request on the control channel recorded in lab.json (``body``: a JSON document to POST)."""
    lab_json = lab_dir / "lab.json"
    if not lab_json.exists():
        raise LabError(f"no running lab in {lab_dir} (missing lab.json)")
    port = json.loads(lab_json.read_text())["control_port"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else b""
        conn.request(method, path, body=payload if method == "POST" else None)
        response = conn.getresponse()
        doc = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    if response.status != 200:
        raise LabError(f"control {method} {path}: {response.status} {doc}")
    return doc


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
