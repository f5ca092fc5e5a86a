"""plugin_utils/_fix_crl/_record.py: the one status list, the record's keys, Ansible's view of a record."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import (
    HostRecord,
    HostRun,
    Status,
    kept_change,
    record_from_registered,
)

# The record's keys as reports, HTML pages and users' playbooks read them (roles/fix_crl/README.md), in order.
RECORD_KEYS = ["schema", "host", "status", "reason", "check_mode", "desired", "before", "planned", "after",
               "certificates", "flags", "endpoints", "checks", "rollback", "errors", "commands",
               "counts_against_rollout", "changed", "evidence", "findings", "identities", "caller",
               "chain_cache_resync", "service", "trust_store", "diagnosis", "risks"]


def test_the_status_values_are_the_ones_reports_and_playbooks_read() -> None:
    assert [s.value for s in Status] == ["compliant", "would_change", "changed", "rolled_back", "failed",
                                         "unreachable", "not_run"]
    assert {s.value for s in Status if s.fails_host} == {"rolled_back", "failed", "unreachable"}
    assert {s.value for s in Status if s.is_problem} == {"rolled_back", "failed", "unreachable", "not_run"}
    assert {s.value for s in Status if not s.checked} == {"unreachable", "not_run"}


def test_the_record_is_plain_json_with_the_documented_keys_in_order() -> None:
    record = HostRecord.failed(host="fe01", step="arguments", msg="value of views must be one of: native",
                               check_mode=True).as_dict()
    assert list(record) == RECORD_KEYS
    assert record["status"].__class__ is str and json.loads(json.dumps(record)) == record
    assert record["reason"] == "arguments: value of views must be one of: native"
    assert (record["status"], record["changed"], record["counts_against_rollout"]) == ("failed", False, True)


@pytest.mark.parametrize(("status", "changed", "unreachable", "failed"), [
    (Status.UNREACHABLE, False, True, False),   # nothing happened: Ansible hears unreachable
    (Status.UNREACHABLE, True, False, True),    # lost after its change: the change must count, the host fails
    (Status.FAILED, True, False, True),
    (Status.COMPLIANT, False, False, False),
])
def test_the_task_result_never_hides_a_change_behind_unreachable(status, changed, unreachable, failed) -> None:
    run = HostRun(check_mode=False)
    record = HostRecord.from_run(run, host="fe01", extra_endpoints=(), flush=True)
    record = dataclasses.replace(record, status=status, changed=changed, reason="why")
    result = record.task_result(fail_host=True, diff=False)
    assert result["changed"] is changed
    assert result.get("unreachable", False) is unreachable and result.get("failed", False) is failed


@pytest.mark.parametrize(("record", "kept"), [
    ({"status": "failed", "changed": True, "check_mode": False}, True),
    ({"status": "unreachable", "changed": True, "check_mode": False}, True),
    ({"status": "changed", "changed": True, "check_mode": False}, True),
    ({"status": "rolled_back", "changed": True, "check_mode": False}, False),
    ({"status": "would_change", "changed": True, "check_mode": True}, False),
    ({"status": "changed", "check_mode": False}, True),   # a record of an earlier release
    ({"status": "failed", "check_mode": False}, False),
])
def test_kept_change(record, kept) -> None:
    assert kept_change(record) is kept


def test_a_registered_failure_reads_as_a_failed_record_and_anything_else_as_it_is() -> None:
    record = record_from_registered("fe01", {"failed": True, "msg": "boom", "changed": False})
    assert record["schema"] == 1 and record["status"] == "failed" and record["reason"] == "fix_crl: boom"
    assert record["check_mode"] is None and record["host"] == "fe01"
    odd = {"schema": 1, "status": "compliant"}
    assert record_from_registered("fe01", odd) is odd
    assert record_from_registered("fe01", "text") == "text"
