"""The fix_crl_report action plugin: options, records from hostvars, the file it writes, check mode."""

from __future__ import annotations

import json
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.crlfix.windows.plugins.action import fix_crl_report
from ansible_collections.crlfix.windows.plugins.modules import fix_crl_report as module_doc
from tests.unit.plugins.action_factory import make_action

RETURN = yaml.safe_load(module_doc.RETURN)
ACTION = "crlfix.windows.fix_crl_report"
COMPLIANT = {"schema": 1, "host": "a", "status": "compliant", "reason": None, "check_mode": False,
             "checks": {"before": {"tls": {"results": [], "worst_ms": 11, "all_pass": True}, "passed": True}}}


def make_plugin(args: dict[str, t.Any], *, check_mode: bool = False) -> fix_crl_report.ActionModule:
    return make_action(fix_crl_report.ActionModule, ACTION, args, check_mode=check_mode)


def test_documentation_returns_the_report_keys() -> None:
    assert set(RETURN) == {"path", "html_path", "run_id", "summary", "summary_lines", "totals", "worst_handshake",
                           "problems", "stats", "incidents", "since_last_run"}


@pytest.mark.parametrize("check_mode", [False, True])
def test_records_come_from_hostvars_and_the_report_is_written_in_check_mode_too(tmp_path, check_mode) -> None:
    hostvars = {"a": {"fix_crl_record": {**COMPLIANT, "check_mode": check_mode}}, "b": {"ansible_host": "127.0.1.2"}}
    plugin = make_plugin({"hosts": ["a", "b", "gone"], "dest": str(tmp_path), "run_id": "run"},
                         check_mode=check_mode)
    result = plugin.run(task_vars={"hostvars": hostvars, "ansible_limit": "lync_servers",
                                   "ansible_version": {"full": "2.19.14"}})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert set(RETURN) <= set(result)
    document = json.loads((tmp_path / "run.json").read_text())
    assert document["run"]["check_mode"] is check_mode
    assert document["run"]["limit"] == "lync_servers"
    assert document["run"]["ansible_version"] == "2.19.14"
    statuses = [(h["host"], h["status"]) for h in document["hosts"]]
    assert statuses == [("a", "compliant"), ("b", "not_run"), ("gone", "not_run")]
    assert result["totals"]["compliant"] == 1
    assert result["totals"]["not_run"] == 2
    # The HTML page sits beside the JSON document and names every host.
    assert result["html_path"] == str(tmp_path / "run.html")
    page = (tmp_path / "run.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and all(f">{name}<" in page for name in ("a", "b", "gone"))
    assert f"html: {tmp_path / 'run.html'}" in result["summary_lines"]


def test_the_run_is_an_audit_when_its_records_are_whatever_the_report_tasks_mode(tmp_path) -> None:
    # Hosts audited with `check_mode: true` on the fix_crl_host task (its EXAMPLES), the report
    # task not in check mode. The records say what the run was: the summary counts what would change.
    audited = {name: {**COMPLIANT, "host": name, "status": "would_change", "check_mode": True} for name in "abc"}
    plugin = make_plugin({"hosts": list(audited), "records": audited, "dest": str(tmp_path), "run_id": "r"})
    result = plugin.run(task_vars={})
    assert json.loads((tmp_path / "r.json").read_text())["run"]["check_mode"] is True
    assert result["summary_lines"][0] == ("fix-crl audit (check mode): 3 hosts targeted, 3 checked: 0 compliant, "
                                          "3 would change, 0 rolled back, 0 failed, 0 unreachable, 0 not run")
    assert result["summary_lines"][1].startswith("worst TLS handshake now: ")
    mixed = {**audited, "c": {**COMPLIANT, "host": "c", "status": "changed", "check_mode": False, "changed": True}}
    plugin = make_plugin({"hosts": list(mixed), "records": mixed, "write": False}, check_mode=True)
    result = plugin.run(task_vars={})
    assert result["summary_lines"][0] == ("fix-crl mixed audit and change run: 3 hosts targeted, 3 checked: "
                                          "0 compliant, 2 would change, 1 changed, 0 rolled back, 0 failed, "
                                          "0 unreachable, 0 not run")


def test_explicit_records_win_and_write_false_writes_nothing(tmp_path) -> None:
    plugin = make_plugin({"hosts": ["a"], "records": {"a": COMPLIANT}, "write": False, "dest": str(tmp_path)})
    result = plugin.run(task_vars={"hostvars": {"a": {"fix_crl_record": {"schema": 1, "status": "failed"}}}})
    assert result["path"] is None
    assert result["totals"]["compliant"] == 1
    assert list(tmp_path.iterdir()) == []


def test_a_summary_in_hostvars_is_read_from_the_record_file_it_names(tmp_path) -> None:
    # fix_crl_host's default result (result_detail: summary): the report holds the whole record all the same.
    area = tmp_path / "area"
    area.mkdir()
    full = {**COMPLIANT, "certificates": [{"subject": "CN=a"}]}
    (area / "a.json").write_text(json.dumps(full))
    summary = {**{key: full[key] for key in ("schema", "host", "status", "reason", "check_mode")},
               "result_detail": "summary", "record_path": str(area / "a.json")}
    gone = {**summary, "host": "b", "record_path": str(area / "b.json")}
    plugin = make_plugin({"hosts": ["a", "b"], "dest": str(tmp_path), "run_id": "r"})
    result = plugin.run(task_vars={"hostvars": {"a": {"fix_crl_record": summary}, "b": {"fix_crl_record": gone}}})
    hosts = {h["host"]: h for h in json.loads((tmp_path / "r.json").read_text())["hosts"]}
    assert hosts["a"]["status"] == "compliant" and hosts["a"]["certificates"] == [{"subject": "CN=a"}]
    assert hosts["a"]["probes"]["before"]["worst_ms"] == 11
    assert hosts["b"]["status"] == "failed" and "b.json' cannot be read" in hosts["b"]["reason"]
    assert result["problems"] == {"b": {"status": "failed", "reason": hosts["b"]["reason"]}}


def test_default_destination_is_reports_in_the_current_directory_as_the_playbooks(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    plugin = make_plugin({"hosts": ["a"], "records": {"a": COMPLIANT}, "run_id": "r"})
    result = plugin.run(task_vars={"playbook_dir": str(tmp_path / "playbooks")})
    assert result["path"] == str(tmp_path / "reports" / "r.json")


def test_a_report_that_cannot_be_written_fails_the_task_with_the_path(tmp_path) -> None:
    (tmp_path / "r.json").write_text("{}")
    plugin = make_plugin({"hosts": ["a"], "records": {"a": COMPLIANT}, "run_id": "r", "dest": str(tmp_path)})
    with pytest.raises(AnsibleActionFail, match=r"crlfix.windows.fix_crl_report: dest: the report '.*r.json' already"):
        plugin.run(task_vars={})


def test_bad_option_is_refused_with_its_name() -> None:
    plugin = make_plugin({"hosts": "a", "records": "nope"})
    with pytest.raises(AnsibleActionFail, match="records"):
        plugin.run(task_vars={})
