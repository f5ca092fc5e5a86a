"""The execution environment built from execution-environment.yml and run the way AWX runs a job in it.

``tests/ee/build.sh`` (what `make ee` runs) builds the image with ansible-builder and podman on the local Debian
base, or reuses podman's cached layers; on a fresh machine it first installs podman, runc and debootstrap and
makes the base (docs/awx.md gives the cold and warm costs). Then:

- what the image holds, read inside it: the engine and the connection packages at the pins of
  requirements/dev.txt, and nothing of ours (no collection, no inventory, no key, no lab password);
- one audit of the lab from inside it, as an admin checks an EE before AWX: the project sync of
  collections/requirements.yml, then ``ansible-navigator run playbooks/fix-crl.yml --eei <image> --ce podman
  --mode stdout --check`` over host networking; the JSON and HTML report and the ``set_stats`` totals (in
  ansible-runner's job events, what AWX reads) come back, and every lab host is in the report.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.ee.definition import (
    CONNECTION,
    ENGINE,
    REPO_ROOT,
    VENV_BIN,
    build_image,
    collection_version,
    dev_pins,
    podman,
    podman_env,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def ee_image() -> str:
    image = build_image()
    assert image == f"localhost/crlfix-ee:{collection_version()}"
    return image


def test_image_holds_the_pinned_engine_and_connection_packages(ee_image) -> None:
    names = [*ENGINE, *CONNECTION]
    script = f"import importlib.metadata as m, json; print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
    result = podman("run", "--rm", "--net=none", ee_image, "/usr/bin/python3.11", "-c", script)
    assert result.returncode == 0, result.stderr
    pins = dev_pins()
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {name: pins[name] for name in names}
    # The builder's own check: both entry points run with that interpreter.
    result = podman("run", "--rm", "--net=none", ee_image, "bash", "-c",
                    "ansible-playbook --version && ansible-runner --version")
    assert result.returncode == 0, result.stderr
    assert f"core {pins['ansible-core']}]" in result.stdout and pins["ansible-runner"] in result.stdout


def test_image_holds_no_collection_credentials_or_lab_files(ee_image, lab) -> None:
    config = json.loads(podman("image", "inspect", ee_image).stdout)[0]["Config"]
    assert config["Labels"]["ansible-execution-environment"] == "true"
    assert not [var for var in config.get("Env", []) if any(
        word in var.split("=", 1)[0].upper() for word in ("PASS", "TOKEN", "SECRET", "KEY"))], config["Env"]
    password = next(iter(lab.hosts.values())).password
    # The lab was started before the build: a context that swept build/ would have carried its files.
    script = (
        "set -e; ansible-galaxy collection list 2>/dev/null | grep -c crlfix || true; ls -A /runner;"
        " find / -xdev \\( -name 'inventory*.yml' -o -name '*.key' -o -name 'id_rsa*' -o -name 'lab-pytest-*'"
        " -o -name 'winrm-ca' -o -path '*ansible_collections/crlfix*' \\) -print;"
        f" grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e {shlex.quote(password)} / || true"
    )
    result = podman("run", "--rm", "--net=none", "--user", "root", ee_image, "bash", "-c", script, timeout=600)
    assert result.returncode == 0, result.stderr
    # One line: the count of crlfix collections (0); nothing in /runner, nothing found, no file with the password.
    assert result.stdout.split() == ["0"], result.stdout


def _sync_collections(dest: Path) -> None:
    """AWX's project sync: collections/requirements.yml into the job's own collections folder."""
    result = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-r", "collections/requirements.yml",
         "-p", str(dest)],
        cwd=REPO_ROOT, env=dict(podman_env(), ANSIBLE_COLLECTIONS_PATH=str(dest)),
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (dest / "ansible_collections" / "crlfix" / "windows" / "MANIFEST.json").is_file()


def _job_events(runner_dir: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in runner_dir.glob("artifacts/*/job_events/*.json")]


def test_audit_of_the_lab_inside_the_ee_with_ansible_navigator(ee_image, lab, tmp_path) -> None:
    for name in lab.hosts:
        lab.start_twin(name)
        lab.reset_state(name)
    registry = {name: lab.state(name)["registry"] for name in lab.hosts}
    collections, reports, runner_dir, artifacts = (tmp_path / d for d in ("collections", "reports", "runner", "art"))
    for folder in (reports, runner_dir, artifacts):
        folder.mkdir()
    _sync_collections(collections)

    result = subprocess.run(
        [str(VENV_BIN / "ansible-navigator"), "run", "playbooks/fix-crl.yml",
         "--eei", ee_image, "--ce", "podman", "--pp", "never", "--mode", "stdout", "--dc", "false",
         "--co=--net=host", "--eev", f"{tmp_path}:{tmp_path}", "-i", str(lab.inventory_path),
         "--senv", f"ANSIBLE_COLLECTIONS_PATH={collections}",
         "--rad", str(runner_dir), "--rwje", "--pae", "true",
         "--pas", f"{artifacts}/{{playbook_name}}-artifact.json", "--lf", str(tmp_path / "navigator.log"),
         "--check", "-e", f"fix_crl_report_dir={reports}"],
        # XDG_CACHE_HOME: the navigator's caches (collection docs, its introspection scripts) stay out of ~/.cache.
        cwd=REPO_ROOT, env=dict(podman_env(), XDG_CACHE_HOME=str(tmp_path / "cache")), capture_output=True,
        text=True, timeout=900, check=False,
    )
    # 2: some lab hosts fail by design (docs/lab.md); anything else is a broken run.
    assert result.returncode in (0, 2), result.stdout + result.stderr

    events = _job_events(runner_dir)
    (stats,) = [event["event_data"] for event in events if event["event"] == "playbook_on_stats"]
    data = stats["artifact_data"]
    report_path = Path(data["fix_crl_report_path"])
    assert report_path.parent == reports
    report = json.loads(report_path.read_text())
    assert {host["host"] for host in report["hosts"]} == set(lab.hosts)
    assert report["run"]["check_mode"] is True and report["totals"] == data["fix_crl_totals"]
    assert data["fix_crl_totals"]["hosts"] == len(lab.hosts) and data["fix_crl_totals"]["unreachable"] == 0
    assert data["fix_crl_totals"]["changed"] == 0
    page = report_path.with_suffix(".html").read_text()
    for host in report["hosts"]:
        assert 'data-host="{host}" data-status="{status}"'.format(**host) in page
    # The role ran from the synced collection inside the container, not from the checkout.
    role_paths = {event["event_data"].get("task_path", "") for event in events
                  if event["event_data"].get("role") == "fix_crl"}
    assert role_paths and all(path.startswith(str(collections)) for path in role_paths), role_paths
    (artifact,) = artifacts.glob("*.json")
    assert json.loads(artifact.read_text())["status"] in ("successful", "failed")
    # Check mode changed nothing.
    for name in lab.hosts:
        assert lab.state(name)["registry"] == registry[name], name
