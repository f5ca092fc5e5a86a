"""The fix_crl role and playbooks/fix-crl.yml against the lab's twins: audit, fix, idempotence, faults, report.

These tests switch verification off (``NO_VERIFICATION``) so that they exercise the remediation on its own;
``test_fix_crl_verification.py`` covers verification and rollback in the lab's revocation world.
"""

from __future__ import annotations

import base64

import pytest

from tests.twin import winhttp_value

from ._runs import NO_VERIFICATION, comparable_state, decoded, run_fix_crl, site_proxies, views

pytestmark = pytest.mark.lab


def test_check_mode_changes_nothing_on_any_host_and_reports_what_would_change(fleet, tmp_path) -> None:
    before = {name: comparable_state(fleet.state(name)) for name in fleet.hosts}
    commands = {name: fleet.state(name)["counters"]["commands"] for name in fleet.hosts}
    run = run_fix_crl(fleet, tmp_path, "--check", "--diff", extra_vars=NO_VERIFICATION)
    assert run.rc == 0, run.stdout + run.stderr
    for name in fleet.hosts:
        assert comparable_state(fleet.state(name)) == before[name], name
    # The audit is one remote command per host (docs/performance.md), counted by the twins themselves.
    assert {name: fleet.state(name)["counters"]["commands"] - commands[name] for name in fleet.hosts} == {
        name: 1 for name in fleet.hosts}
    assert {h["commands"] for h in run.report["hosts"]} == {1}
    assert run.report["run"]["check_mode"] is True
    statuses = run.status()
    for name, host in fleet.hosts.items():
        want = site_proxies(fleet)[host.site]
        is_compliant = all(decoded(value) == (want, "") for value in views(fleet, name).values())
        assert statuses[name] == ("compliant" if is_compliant else "would_change"), (name, run.host(name))
    # --diff shows each view before and after (winhttp_proxy's diff, printed by the default callback).
    assert "--- before" in run.stdout
    assert "+native: proxy" in run.stdout
    assert "would change" in run.stdout


def test_apply_gives_every_view_its_site_proxy_then_a_second_run_changes_nothing(fleet, tmp_path) -> None:
    commands = {name: fleet.state(name)["counters"]["commands"] for name in fleet.hosts}
    first = run_fix_crl(fleet, tmp_path / "first", extra_vars=NO_VERIFICATION)
    assert first.rc == 0, first.stdout + first.stderr
    # A host that needs a change costs 3 remote commands (gather, write, verify), a correct one 1.
    spent = {name: fleet.state(name)["counters"]["commands"] - commands[name] for name in fleet.hosts}
    assert spent == {name: 3 if status == "changed" else 1 for name, status in first.status().items()}, spent
    for name, host in fleet.hosts.items():
        for view, value in views(fleet, name).items():
            assert decoded(value) == (site_proxies(fleet)[host.site], ""), (name, view)
    changed = {name for name, status in first.status().items() if status == "changed"}
    assert changed, first.status()
    assert set(first.status().values()) <= {"changed", "compliant"}
    assert first.report["totals"]["changed"] == len(changed)

    after_first = {name: views(fleet, name) for name in fleet.hosts}
    second = run_fix_crl(fleet, tmp_path / "second", extra_vars=NO_VERIFICATION)
    assert second.rc == 0, second.stdout + second.stderr
    assert {name: counts["changed"] for name, counts in second.recap.items()} == {name: 0 for name in fleet.hosts}
    assert set(second.status().values()) == {"compliant"}
    assert {name: views(fleet, name) for name in fleet.hosts} == after_first
    assert {h["commands"] for h in second.report["hosts"]} == {1}


def test_direct_access_is_what_an_empty_proxy_asks_for(fleet, tmp_path) -> None:
    run = run_fix_crl(fleet, tmp_path, "-l", "lync_servers", extra_vars={**NO_VERIFICATION, "fix_crl_proxy": ""})
    assert run.rc == 0, run.stdout + run.stderr
    for name, host in fleet.hosts.items():
        if host.group == "lync_servers":
            assert {decoded(value) for value in views(fleet, name).values()} == {("", "")}, name
            assert run.host(name)["desired"]["state"] == "absent"
    assert sorted(h["host"] for h in run.report["hosts"]) == sorted(
        name for name, host in fleet.hosts.items() if host.group == "lync_servers")


def test_views_that_disagree_only_the_wrong_view_is_written(fleet, tmp_path) -> None:
    name, host = next((n, h) for n, h in fleet.hosts.items() if h.scenario == "views_disagree")
    want = site_proxies(fleet)[host.site]
    state = fleet.state(name)
    native = winhttp_value.encode(7, want, "")
    state["registry"]["native"]["WinHttpSettings"] = base64.b64encode(native).decode()
    state["registry"]["wow6432"]["WinHttpSettings"] = base64.b64encode(
        winhttp_value.DIRECT_ACCESS_DOCUMENTED).decode()
    fleet.write_state(name, state)

    audit = run_fix_crl(fleet, tmp_path / "audit", "-l", name, "--check", extra_vars=NO_VERIFICATION)
    planned = audit.host(name)
    assert planned["status"] == "would_change"
    assert planned["before"]["views_disagree"] is True
    assert planned["planned"]["views"] == ["wow6432"]

    run = run_fix_crl(fleet, tmp_path / "run", "-l", name, extra_vars=NO_VERIFICATION)
    assert run.host(name)["status"] == "changed"
    after = views(fleet, name)
    assert after["native"] == native  # byte for byte: not even the change counter moved
    assert decoded(after["wow6432"]) == (want, "")


def test_a_dead_host_and_wrong_credentials_do_not_stop_the_fleet(fleet, tmp_path) -> None:
    dead, locked = sorted(fleet.hosts)[:2]
    override = tmp_path / "override.yml"
    override.write_text(f"all:\n  hosts:\n    {locked}:\n      ansible_password: not-the-password\n")
    fleet.stop_twin(dead)
    run = run_fix_crl(fleet, tmp_path / "reports", extra_vars={**NO_VERIFICATION, "fix_crl_serial": "100%"},
                      inventories=[fleet.inventory_path, override])
    assert run.rc == 2, run.stdout  # the last play fails the two hosts, after the report is written
    assert run.host(dead)["status"] == "unreachable"
    assert run.host(dead)["errors"][0]["step"] == "gather"
    assert run.host(dead)["reason"].startswith("gather: ")
    assert run.host(locked)["status"] == "unreachable"
    assert "401" in run.host(locked)["reason"] or "credentials" in run.host(locked)["reason"].lower()
    others = set(fleet.hosts) - {dead, locked}
    assert {run.host(name)["status"] for name in others} <= {"changed", "compliant"}
    for name in others:
        assert all(decoded(v) == (site_proxies(fleet)[fleet.hosts[name].site], "") for v in views(fleet, name).values())
    assert run.report["totals"]["unreachable"] == 2
    assert f"{dead}: unreachable: gather: " in run.stdout
    assert run.recap[dead]["failed"] == 1 and run.recap[locked]["failed"] == 1


def test_the_report_document_has_every_host_with_before_planned_after(fleet, tmp_path) -> None:
    run = run_fix_crl(fleet, tmp_path, extra_vars=NO_VERIFICATION)
    report = run.report
    assert report["schema"] == 1
    assert report["kind"] == "crlfix.windows.fix_crl_report"
    assert report["run"]["check_mode"] is False
    assert sorted(h["host"] for h in report["hosts"]) == sorted(fleet.hosts)
    totals = report["totals"]
    assert totals["hosts"] == len(fleet.hosts)
    assert sum(totals[s] for s in ("compliant", "would_change", "changed", "rolled_back", "failed",
                                   "unreachable", "not_run")) == totals["hosts"]
    for host in report["hosts"]:
        assert set(host) >= {"host", "status", "reason", "desired", "before", "planned", "after", "endpoints",
                             "probes", "crl_checks", "verification", "rollback", "errors", "certificates"}
        assert host["desired"]["proxy"] == site_proxies(fleet)[fleet.hosts[host["host"]].site]
        assert set(host["before"]["views"]) == {"native", "wow6432"}
        assert host["after"]["views"]["native"]["proxy"] == host["desired"]["proxy"]
        if host["status"] == "changed":
            assert host["planned"]["change"] is True and host["planned"]["views"]
    assert "fix-crl run: 6 hosts targeted" in run.stdout


def test_a_bad_variable_fails_every_host_with_its_name_and_value_and_touches_nothing(fleet, tmp_path) -> None:
    commands = {name: fleet.state(name)["counters"]["commands"] for name in fleet.hosts}
    run = run_fix_crl(fleet, tmp_path, extra_vars={"fix_crl_peer_address_from": "dns"})
    assert run.rc == 2, run.stdout + run.stderr
    failed = [host for host in run.report["hosts"] if host["status"] == "failed"]
    assert len(failed) == 1, run.status()  # the canary: its error stops the rollout, the rest is not run
    assert "peer_address_from" in failed[0]["reason"] and "dns" in failed[0]["reason"], failed[0]["reason"]
    assert set(run.status().values()) == {"failed", "not_run"}
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", extra_vars={"fix_crl_peer_address_from": "dns"})
    assert set(audit.status().values()) == {"failed"}  # one batch in check mode: every host says why
    assert {name: fleet.state(name)["counters"]["commands"] for name in fleet.hosts} == commands


def test_an_audit_of_hosts_without_a_proxy_says_what_is_missing_and_stops_no_rollout(fleet, tmp_path) -> None:
    # An audit has no rollout; every host says what is missing instead.
    run = run_fix_crl(fleet, tmp_path, "--check", "-l", "lync_servers",
                      extra_vars={**NO_VERIFICATION, "fix_crl_proxy": None})
    assert run.rc == 2, run.stdout + run.stderr
    assert run.report["run"]["rollout_stopped"] is None
    assert "Rollout was stopped" not in run.stdout and "rollout was stopped" not in run.stdout
    lync = sorted(name for name, host in fleet.hosts.items() if host.group == "lync_servers")
    assert run.status() == {name: "failed" for name in lync}
    for name in lync:
        assert run.host(name)["reason"].startswith("plan: fix_crl_proxy is not set for this host"), name
        assert f"{name}: failed: plan: fix_crl_proxy is not set for this host" in run.stdout


def test_a_variable_that_does_not_template_fails_its_host_with_ansibles_message(fleet, tmp_path) -> None:
    # The role's action templates its variables itself (options_from_vars): a variable that does not template is a
    # bad argument, the host's failed record names the variable with Ansible's message, and the last play fails it.
    name = sorted(fleet.hosts)[0]
    commands = fleet.state(name)["counters"]["commands"]
    run = run_fix_crl(fleet, tmp_path, "-l", name,
                      extra_vars={**NO_VERIFICATION, "fix_crl_bypass": "{{ crlfix_no_such_variable }}"})
    assert run.rc == 2, run.stdout + run.stderr
    host = run.host(name)
    assert host["status"] == "failed" and host["reason"].startswith("arguments: fix_crl_bypass: "), host["reason"]
    assert "crlfix_no_such_variable" in host["reason"], host["reason"]
    assert run.recap[name]["failed"] == 1
    assert fleet.state(name)["counters"]["commands"] == commands
