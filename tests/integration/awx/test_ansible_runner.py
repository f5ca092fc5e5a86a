"""playbooks/fix-crl.yml through ansible-runner (AWX's executor), laid out the way an AWX job is.

After a project sync AWX runs a job in a private data directory (AWX's docs/collections.md):

    <pdd>/project/                  the project checkout (here: a copy of the repository, no .collections)
    <pdd>/requirements_collections/ what `ansible-galaxy collection install -r collections/requirements.yml`
                                    installed during the sync (run here exactly so, from the project dir)
    <pdd>/inventory/                the inventory AWX writes (here: the lab's, without the password)
    <pdd>/env/envvars, extravars    ANSIBLE_COLLECTIONS_PATH naming requirements_collections; survey answers

The Machine credential reaches ansible-playbook as AWX passes it: ``-u <user> --ask-pass`` on the command line
and the password answered at the prompt (runner's ``passwords``), so it is never in a file of the job. Job type
"Check" is ``--check``. The test reads the job events and artifacts the way AWX does: per-host event counts,
the ``set_stats`` data in the ``playbook_on_stats`` event's ``artifact_data``, and no secret anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._html import render_report_html
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._merge import merge_reports

pytestmark = pytest.mark.lab

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
# What the project copy leaves out: what AWX's checkout would not have (no `make setup` ran there).
NOT_IN_PROJECT = (".venv", ".collections", "build", ".git", "reports", "tests", "__pycache__", ".pytest_cache")
# Survey answers (docs/awx.md): short timeouts keep the lab's measurements to seconds; one batch.
SURVEY = {"fix_crl_crl_timeout_ms": 3000, "fix_crl_probe_timeout_ms": 8000, "fix_crl_probe_samples": 1,
          "fix_crl_max_handshake_ms": 1000, "fix_crl_serial": "100%", "fix_crl_max_fail_percentage": 100}
# An inventory host whose WinRM port has no listener: one unreachable server must not stop the job. It is in no
# peer group, so no other host's TLS probe depends on it.
DOWN = "dead01.lab.test"
LIMIT = "site_east"


def _reset(lab) -> None:
    for name in lab.hosts:
        lab.start_twin(name)
        lab.reset_state(name)


def _sync_project(pdd: Path) -> None:
    """What AWX's project sync does: the checkout, then the collections of collections/requirements.yml."""
    shutil.copytree(REPO_ROOT, pdd / "project", ignore=shutil.ignore_patterns(*NOT_IN_PROJECT), symlinks=True)
    # AWX's sync knows nothing of this checkout's .collections: without this, `make test`'s exported
    # ANSIBLE_COLLECTIONS_PATH makes ansible-galaxy answer "already installed" and install nothing.
    env = {key: value for key, value in os.environ.items()
           if key not in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG")}
    result = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-r", "collections/requirements.yml",
         "-p", str(pdd / "requirements_collections")],
        cwd=pdd / "project", env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (pdd / "requirements_collections" / "ansible_collections" / "crlfix" / "windows" / "MANIFEST.json").exists()


def _awx_inventory(lab, pdd: Path) -> tuple[str, str]:
    """The lab inventory without ansible_user/ansible_password (they come from the Machine credential)."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    windows = doc["all"]["children"]["windows"]["vars"]
    user, password = windows.pop("ansible_user"), windows.pop("ansible_password")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    doc["all"]["children"]["windows"]["children"]["awx_test_down"] = {
        "hosts": {DOWN: {"ansible_host": "127.0.0.1", "ansible_port": dead_port}}}
    doc["all"]["children"]["site_east"]["hosts"][DOWN] = None
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(doc))
    return user, password


def _run(pdd: Path, ident: str, user: str, password: str, *cmdline: str) -> ansible_runner.Runner:
    env = pdd / "env"
    env.mkdir(exist_ok=True)
    (env / "envvars").write_text(yaml.safe_dump({
        # As AWX sets it for a job: the project's installed collections first.
        "ANSIBLE_COLLECTIONS_PATH": str(pdd / "requirements_collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }))
    (env / "extravars").write_text(yaml.safe_dump({**SURVEY, "fix_crl_report_dir": str(pdd / "reports"),
                                                   "awx_job_id": ident}))
    saved = {key: os.environ.pop(key) for key in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG") if key in os.environ}
    try:
        return ansible_runner.run(
            private_data_dir=str(pdd), playbook="playbooks/fix-crl.yml", inventory=str(pdd / "inventory"),
            ident=ident, cmdline=" ".join(["-u", user, "--ask-pass", *cmdline]),
            passwords={r"^SSH password:\s*?$": password}, limit=LIMIT, quiet=True, timeout=900,
        )
    finally:
        os.environ.update(saved)


def _per_host(runner: ansible_runner.Runner) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for event in runner.events:
        host = event.get("event_data", {}).get("host")
        if host and event["event"].startswith("runner_on_"):
            counts.setdefault(host, Counter())[event["event"]] += 1
    return counts


def _stats(runner: ansible_runner.Runner) -> dict[str, Any]:
    (stats,) = [event for event in runner.events if event["event"] == "playbook_on_stats"]
    return stats["event_data"]


def _assert_no_secret(pdd: Path, runner: ansible_runner.Runner, password: str) -> None:
    for event in runner.events:
        assert password not in json.dumps(event), f"password in event {event['event']} {event.get('uuid')}"
        assert "ansible_password" not in event.get("stdout", "")
    for path in (pdd / "artifacts").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), f"password in artifact {path}"
    for path in (pdd / "reports").rglob("*"):
        assert password.encode() not in path.read_bytes(), f"password in report {path}"


@pytest.fixture
def awx_job(lab, tmp_path):
    _reset(lab)
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    _sync_project(pdd)
    user, password = _awx_inventory(lab, pdd)
    yield pdd, user, password
    _reset(lab)


def test_awx_job_audit_then_fix(lab, awx_job) -> None:
    pdd, user, password = awx_job
    reachable = sorted(name for name, host in lab.hosts.items() if host.site == LIMIT)
    windows = [*reachable, DOWN]
    states = {name: lab.state(name) for name in reachable}

    audit = _run(pdd, "101", user, password, "--check", "--diff")
    # A failed host fails the job (rc 2): the unreachable one does, by design (docs/fix-crl.md).
    assert audit.status == "failed" and audit.rc == 2, audit.stdout.read()
    per_host = _per_host(audit)
    assert per_host[DOWN]["runner_on_unreachable"] >= 1
    for name in reachable:
        assert per_host[name]["runner_on_unreachable"] == 0, (name, per_host[name])
        assert per_host[name]["runner_on_ok"] > 0, (name, per_host[name])
    # The role's host events carry the record's summary; the record itself is in the report.
    role_results = [event["event_data"]["res"] for event in audit.events
                    if event.get("event_data", {}).get("task_action") == "crlfix.windows.fix_crl_host"
                    and event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")]
    assert len(role_results) == len(windows), role_results
    for res in role_results:
        assert res["result_detail"] == "summary" and "checks" not in res and "certificates" not in res, res
    stats = _stats(audit)
    # The role catches the unreachable host (ignore_unreachable), the last play fails it: AWX shows it failed.
    assert DOWN in stats["failures"] and not stats["dark"]
    totals = stats["artifact_data"]["fix_crl_totals"]
    assert totals["hosts"] == len(windows) and totals["unreachable"] == 1
    assert totals["changed"] == 0 and totals["would_change"] >= 1
    assert stats["artifact_data"]["fix_crl_report_path"].startswith(str(pdd / "reports"))
    # Check mode changed nothing on any host.
    for name in reachable:
        assert lab.state(name)["registry"] == states[name]["registry"], name
    audit_report = json.loads(Path(stats["artifact_data"]["fix_crl_report_path"]).read_text())
    assert audit_report["run"]["check_mode"] is True and audit_report["run"]["awx_job_id"] == "101"
    assert audit_report["totals"] == totals
    problems = {h["host"] for h in audit_report["hosts"] if h["status"] in ("rolled_back", "failed", "unreachable")}
    assert set(stats["failures"]) == problems

    fix = _run(pdd, "102", user, password)
    assert fix.rc == 2, fix.stdout.read()  # still the unreachable host
    fixed = _stats(fix)["artifact_data"]
    fix_report = json.loads(Path(fixed["fix_crl_report_path"]).read_text())
    assert fix_report["totals"] == fixed["fix_crl_totals"] and fixed["fix_crl_totals"]["unreachable"] == 1
    audit_status = {h["host"]: h["status"] for h in audit_report["hosts"]}
    fix_status = {h["host"]: h["status"] for h in fix_report["hosts"]}
    # What the audit said would change was changed: verified (changed), undone (rolled_back) or kept while a
    # check that failed before still fails (failed, see docs/fix-crl.md); compliant or failing hosts stay so.
    for name, status in audit_status.items():
        expected = {"would_change": {"changed", "rolled_back", "failed"}}.get(status, {status})
        assert fix_status[name] in expected, (name, status, fix_status[name], fix_report["hosts"])
    assert fixed["fix_crl_totals"]["changed"] >= 1, fix_report["hosts"]
    assert set(_stats(fix)["failures"]) == {
        h["host"] for h in fix_report["hosts"] if h["status"] in ("rolled_back", "failed", "unreachable")}
    changed_events = Counter(event["event_data"]["host"] for event in fix.events
                             if event["event"] == "runner_on_ok" and event["event_data"]["res"].get("changed"))
    for host in fix_report["hosts"]:
        if host["status"] == "changed":
            assert changed_events[host["host"]] >= 1, host["host"]
            assert lab.state(host["host"])["registry"] != states[host["host"]]["registry"]

    # Runner's artifacts: one directory per job, with the events AWX stores.
    for ident in ("101", "102"):
        artifacts = pdd / "artifacts" / ident
        assert (artifacts / "rc").read_text().strip() == "2"
        assert list((artifacts / "job_events").glob("*.json"))
    _assert_no_secret(pdd, audit, password)
    _assert_no_secret(pdd, fix, password)

    # The real run's reports feed the HTML page and the merge: every host is a row; the fix run is newer.
    page = render_report_html(fix_report)
    for host in fix_report["hosts"]:
        assert 'data-host="{host}" data-status="{status}"'.format(**host) in page
    merged = merge_reports([fix_report, audit_report])
    assert {h["source_run"] for h in merged["hosts"]} == {fix_report["run"]["id"]}
    assert merged["totals"] == fix_report["totals"]
