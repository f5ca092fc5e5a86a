"""The fix_crl_host action plugin: the role's one task, its options, the record as the result."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.action import fix_crl_host
from ansible_collections.crlfix.windows.plugins.modules import fix_crl_host as module_doc
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _run as _fix_crl_host
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import SUMMARY_KEYS, HostRecord, Status
from tests.conftest import REPO_ROOT
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.fix_crl_steps import BYPASS, PROXY, FakeSteps
from tests.unit.plugins.fixtures.winhttp.values import DIRECT_B64

RETURN = yaml.safe_load(module_doc.RETURN)
ROLE_TASK = yaml.safe_load((REPO_ROOT / "roles" / "fix_crl" / "tasks" / "main.yml").read_text())
SUMMARY_ONLY = {"counts", "worst_ms", "service_stale", "result_detail", "record_path"}


@pytest.fixture(autouse=True)
def record_area(monkeypatch, tmp_path):
    """The run's record area of these tests (ansible's local tmp of the pytest process otherwise)."""
    area = tmp_path / "records"
    monkeypatch.setattr(fix_crl_host, "run_area", lambda: str(area))
    return area


def record_of(result: dict[str, t.Any]) -> dict[str, t.Any]:
    """The whole record a summary result points at."""
    assert result["result_detail"] == "summary", result
    return json.loads(open(result["record_path"], encoding="utf-8").read())


def test_the_role_task_lets_the_action_read_every_option_from_its_role_variable() -> None:
    assert ROLE_TASK[0]["crlfix.windows.fix_crl_host"] == {"options_from_vars": "fix_crl_"}
    assert ROLE_TASK[0]["register"] == "fix_crl_record"


def test_the_options_are_the_documented_options_with_their_defaults() -> None:
    defaults = module_defaults("fix_crl_host")
    del defaults["options_from_vars"]  # how the role passes the options, not one of them
    # The same names (the documentation lists the shared doc fragments' options after the module's own).
    assert sorted(field.name for field in dataclasses.fields(FixCrlOptions)) == sorted(defaults)
    options = FixCrlOptions.from_args({})
    for name, default in defaults.items():
        assert getattr(options, name) == (tuple(default) if isinstance(default, list) else default), name
    # Options without a default stay "not set"; lists become tuples.
    assert (options.proxy, options.cert_subject, options.peers, options.peer_group) == (None, None, None, None)
    assert options.views == ("native", "wow6432")


def test_null_means_the_default_except_for_the_time_box() -> None:
    options = FixCrlOptions.from_args({"bypass": None, "max_peers": None, "audit_time_box_ms": None, "peers": []})
    assert (options.bypass, options.max_peers, options.audit_time_box_ms, options.peers) == ((), 3, None, ())


def test_documentation_returns_every_record_key_and_the_summary() -> None:
    record_keys = {"schema", "host", "status", "reason", "check_mode", "desired", "before", "planned", "after",
                   "certificates", "flags", "endpoints", "checks", "rollback", "errors", "commands",
                   "counts_against_rollout", "evidence", "findings", "identities", "caller",
                   "chain_cache_resync", "service", "trust_store", "diagnosis", "risks"}
    assert set(RETURN) == record_keys | SUMMARY_ONLY
    for key in SUMMARY_ONLY:
        assert RETURN[key]["returned"] == "when O(result_detail=summary)", key
    in_summary = {key for key, doc in RETURN.items() if doc["returned"] == "always"}
    assert in_summary == set(SUMMARY_KEYS) - {"changed"}  # changed: Ansible's own key, documented by Ansible


def _record(status: str, **changes: t.Any) -> HostRecord:
    """A record of ``status`` made the way the run makes one (only the fields the action reads set by hand)."""
    failed = HostRecord.failed(host="fe01", step="t", msg="why", check_mode=status == "would_change")
    return dataclasses.replace(failed, status=Status(status), reason="why", changed=status == "would_change",
                               planned={**failed.planned, "diff": {"before": "a", "after": "b"}}, **changes)


TASK_VARS = {"inventory_hostname": "fe01", "group_names": ["lync_servers"],
             "groups": {"lync_servers": ["fe01", "fe02"], "all": ["fe01", "fe02", "x"]},
             "hostvars": {"fe01": {"ansible_host": "127.0.1.1"}, "fe02": {}}}


@pytest.mark.parametrize(("status", "fail_host", "failed"), [
    ("rolled_back", True, True), ("failed", True, True), ("unreachable", True, True),
    ("failed", False, False), ("would_change", True, False), ("compliant", True, False)])
def test_the_task_fails_only_when_asked_and_the_record_is_the_result(monkeypatch, status, fail_host, failed) -> None:
    seen = {}

    def fake_run(connection, options, inventory, *, check_mode, task_action):
        seen.update(options=options, inventory=inventory, check_mode=check_mode)
        return _record(status)

    monkeypatch.setattr(fix_crl_host, "run_fix_crl_host", fake_run)
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": "proxy:3128", "fail_host": fail_host}, check_mode=True, diff=True)
    result = plugin.run(task_vars=TASK_VARS)
    assert result.get("unreachable", False) is (status == "unreachable")
    failed = failed and status != "unreachable"
    assert result.get("failed", False) is failed
    assert result["status"] == status and result["diff"] == {"before": "a", "after": "b"}
    assert result["changed"] is (status == "would_change")
    if failed:
        assert result["msg"] == f"fix_crl: {status}: why"
    assert seen["check_mode"] is True and seen["options"].proxy == "proxy:3128"
    assert dict(seen["inventory"].groups) == {"lync_servers": ["fe01", "fe02"]}  # only the peer groups
    assert seen["inventory"].ansible_host("fe01") == "127.0.1.1" and seen["inventory"].ansible_host("fe02") == "fe02"


def test_a_kept_change_that_fails_verification_is_a_change_for_ansible(monkeypatch) -> None:
    # The proxy was set and kept, verification still fails where it failed before. The recap, AWX
    # and callbacks must see the change: changed is true whatever the verdict (with fail_host false, as the playbook
    # runs the role, the task is "changed"; the last play fails the host).
    host = FakeSteps(monkeypatch, views=(DIRECT_B64, DIRECT_B64), healthy_before=False, healthy_after=False)
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": PROXY, "bypass": BYPASS, "fail_host": False})
    result = plugin.run(task_vars=TASK_VARS)
    assert len(host.writes) == 1 and record_of(result)["rollback"]["kept"] is True
    assert result["status"] == "failed" and result["changed"] is True and not result.get("failed")
    assert "and kept it" in result["reason"]
    failing = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {"proxy": PROXY, "bypass": BYPASS})
    result = failing.run(task_vars=TASK_VARS)
    assert result["failed"] is True and result["changed"] is True


def test_a_host_lost_after_its_change_is_changed_not_unreachable_for_ansible(monkeypatch) -> None:
    # Ansible never counts an unreachable result as changed: a host the run changed must say changed, and its
    # status (unreachable) fails it with the reason.
    FakeSteps(monkeypatch, views=(DIRECT_B64, None), healthy_before=False,
              fail={"audit2": AnsibleConnectionFailure("connection reset")})
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {"proxy": PROXY, "bypass": BYPASS})
    result = plugin.run(task_vars=TASK_VARS)
    assert result["status"] == "unreachable" and result["changed"] is True
    assert "unreachable" not in result and result["failed"] is True
    assert result["msg"].startswith("fix_crl: unreachable: verify after: the connection was lost while verifying")


def test_a_bad_option_is_a_failed_record_and_runs_nothing(monkeypatch) -> None:
    monkeypatch.setattr(_fix_crl_host, "run_host_audit", lambda *a, **k: pytest.fail("no command for bad input"))
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"proxy": "proxy:3128", "peer_address_from": "dns"})
    result = plugin.run(task_vars={"inventory_hostname": "fe01"})
    assert result["failed"] is True and re.search("peer_address_from.*dns", result["msg"])
    assert result["schema"] == 1 and result["host"] == "fe01" and result["status"] == "failed"
    assert re.match(r"arguments: .*peer_address_from.*dns", result["reason"]), result["reason"]
    record = record_of(result)
    assert record["errors"] == [{"step": "arguments", "msg": result["reason"].removeprefix("arguments: "),
                                 "unreachable": False}]
    assert result["counts_against_rollout"] is True and result["changed"] is False
    assert set(record) >= set(RETURN) - SUMMARY_ONLY  # every record key: the report reads it like any other record
    quiet = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                        {"proxy": "proxy:3128", "peer_address_from": "dns", "fail_host": False}, check_mode=True)
    result = quiet.run(task_vars={"inventory_hostname": "fe01"})
    assert not result.get("failed") and result["status"] == "failed" and result["check_mode"] is True


# ---- the record goes to the run's file, the task result is its summary ----
ANSIBLE_KEYS = {"diff", "failed", "msg", "unreachable", "warnings"}


def test_the_summary_names_the_file_that_holds_the_whole_record_which_full_returns(monkeypatch, record_area) -> None:
    FakeSteps(monkeypatch, views=(DIRECT_B64, DIRECT_B64), healthy_before=False)
    args = {"proxy": PROXY, "bypass": BYPASS, "fail_host": False}
    summary = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", args, check_mode=True,
                          diff=True).run(task_vars=TASK_VARS)
    assert set(summary) - ANSIBLE_KEYS == set(SUMMARY_KEYS) | SUMMARY_ONLY
    assert summary["record_path"] == str(record_area / "fe01.json") and summary["status"] == "would_change"
    assert summary["changed"] is True and summary["diff"]  # --diff still shows the change in the host event
    record = record_of(summary)
    assert summary["counts"]["certificates"] == 1 and summary["counts"]["endpoints"] == 1
    assert summary["counts"]["errors"] == 0 and summary["counts"]["ldap_only"] == 0
    assert summary["worst_ms"] == {"before": record["checks"]["before"]["tls"]["worst_ms"]}

    FakeSteps(monkeypatch, views=(DIRECT_B64, DIRECT_B64), healthy_before=False)  # the same host, a new run
    full = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {**args, "result_detail": "full"},
                       check_mode=True, diff=True).run(task_vars=TASK_VARS)
    assert {key: value for key, value in full.items() if key not in ANSIBLE_KEYS} == record
    assert len(json.dumps(summary)) < len(json.dumps(full)) / 2


def test_a_field_the_record_gains_reaches_the_file_and_the_counts(record_area) -> None:
    # A field HostRecord gains later reaches the file and the counts without a change here.
    @dataclasses.dataclass(frozen=True)
    class Grown(HostRecord):
        later_checks: list = dataclasses.field(default_factory=list)

    record = Grown(**dataclasses.asdict(_record("failed")), later_checks=[{"code": "x"}])
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {})
    result = plugin.result_of(record, fail_host=False, diff=False, detail="summary")
    assert result["counts"]["later_checks"] == 1 and record_of(result)["later_checks"] == [{"code": "x"}]


def test_a_record_file_that_cannot_be_written_leaves_the_record_in_the_result(record_area) -> None:
    record_area.parent.mkdir(parents=True, exist_ok=True)
    record_area.write_text("a file where the directory should be")
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host", {})
    result = plugin.result_of(_record("compliant"), fail_host=True, diff=False, detail="summary")
    assert "record_path" not in result and result["checks"] == {} and result["status"] == "compliant"
    assert re.match(r"fix_crl: the host record stays in the task result: cannot write its file", result["warnings"][0])


# ---- the role's task passes options_from_vars, the action templates the variables itself ----
def _from_vars(monkeypatch, variables: dict[str, t.Any], args: dict[str, t.Any] | None = None, **kw: t.Any):
    """Run the action as the role does, with a real Templar over ``variables``; returns (result, options seen)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    seen = {}

    def fake_run(connection, options, inventory, *, check_mode, task_action):
        seen["options"] = options
        return _record("compliant")

    monkeypatch.setattr(fix_crl_host, "run_fix_crl_host", fake_run)
    plugin = make_action(fix_crl_host.ActionModule, "crlfix.windows.fix_crl_host",
                         {"options_from_vars": "fix_crl_", **(args or {})}, **kw)
    task_vars = {**TASK_VARS, **variables}
    plugin._templar = Templar(loader=DataLoader(), variables=task_vars)
    return plugin.run(task_vars=task_vars), seen.get("options")


def _trusted(text: str) -> t.Any:
    from ansible._internal._datatag._tags import TrustedAsTemplate  # as ansible-core tags inventory values

    return TrustedAsTemplate().tag(text)


def test_the_options_are_the_role_variables_templated_by_the_action(monkeypatch) -> None:
    result, options = _from_vars(monkeypatch, {
        "site_proxy": "proxy.contoso.com:8080", "fix_crl_proxy": _trusted("{{ site_proxy }}"),
        "fix_crl_bypass": ["<local>", _trusted("{{ '*.contoso.com' }}")], "fix_crl_max_peers": 5,
        "fix_crl_cert_subject": _trusted("{{ omit }}"), "fix_crl_fail_host": False, "fix_crl_proxyx": "ignored"})
    assert result["status"] == "compliant" and not result.get("failed"), result
    assert options.proxy == "proxy.contoso.com:8080" and options.bypass == ("<local>", "*.contoso.com")
    assert options.max_peers == 5 and options.cert_subject is None and options.fail_host is False
    assert options.views == ("native", "wow6432")  # not a variable here: the documented default
    options = _from_vars(monkeypatch, {"fix_crl_max_peers": 5}, {"max_peers": 2})[1]
    assert options.max_peers == 2  # an argument given to the task wins over the variable


def test_a_role_variable_with_a_bad_value_fails_the_host_naming_the_field_and_the_value(monkeypatch) -> None:
    result, options = _from_vars(monkeypatch, {"fix_crl_max_handshake_ms": "fast", "fix_crl_fail_host": False})
    assert options is None and result["status"] == "failed" and not result.get("failed")
    assert re.search(r"max_handshake_ms.*fast", result["reason"]), result["reason"]


def test_a_role_variable_that_does_not_template_fails_the_host_naming_it(monkeypatch, record_area) -> None:
    result, options = _from_vars(monkeypatch, {"fix_crl_bypass": _trusted("{{ crlfix_no_such_variable }}"),
                                               "fix_crl_fail_host": False, "fix_crl_result_detail": "full"})
    assert options is None and result["status"] == "failed" and not result.get("failed")  # fail_host still read
    assert result["reason"] == "arguments: fix_crl_bypass: 'crlfix_no_such_variable' is undefined", result["reason"]
    assert result["errors"][0]["step"] == "arguments" and not record_area.exists()  # result_detail full still read


AUDIT_PATH = re.compile(r"<!-- audit-path: begin -->(.*?)<!-- audit-path: end -->", re.S)
MAX_AUDIT_PATH_FILES = 35
_LOADED = """
import json, sys
sys.path[:0] = [{collections!r}]
import ansible_collections.crlfix.windows.plugins.action.fix_crl_host
print(json.dumps(sorted(module.__file__ for name, module in sys.modules.items()
                        if name.startswith("ansible_collections.crlfix.") and getattr(module, "__file__", None))))
"""


def test_one_audit_passes_through_the_files_the_architecture_page_lists_and_no_more() -> None:
    # A fresh interpreter: what the fix_crl_host action loads (every import is at module level), nothing a test loaded.
    collections = str(REPO_ROOT / ".collections")
    out = subprocess.run([sys.executable, "-c", _LOADED.format(collections=collections)], check=True,
                         capture_output=True, text=True).stdout
    root = f"{collections}/ansible_collections/crlfix/windows/"
    loaded = {path.removeprefix(root) for path in json.loads(out) if not path.endswith("__init__.py")}
    page = (REPO_ROOT / "docs" / "dev" / "architecture.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\d+\. `(plugins/[^`]+\.py)`", AUDIT_PATH.search(page).group(1), re.M)
    assert len(listed) == len(set(listed)) and set(listed) == loaded, sorted(set(listed) ^ loaded)
    assert len(loaded) <= MAX_AUDIT_PATH_FILES, sorted(loaded)
    assert f"\n{len(listed)} files." in page


def test_the_audit_cuts_a_crl_where_crl_retrieval_check_does() -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import CRL_MAX_BYTES
    assert CRL_MAX_BYTES == module_defaults("crl_retrieval_check")["max_bytes"]
