"""The pure parts of the sliced and the bytes benchmarks (bench/slices.py, bench/wire.py): no lab, nothing timed."""

from __future__ import annotations

import pytest

from bench import report, slices, wire

INVENTORY = {"all": {"hosts": {"localhost": {"ansible_connection": "local"}},
                     "children": {"windows": {"vars": {"ansible_port": 5985}, "children": {
                         "lync_servers": {"hosts": {"lync-fe01": {"ansible_host": "127.0.1.1"},
                                                    "lync-fe02": {"ansible_host": "127.0.1.4"}},
                                          "vars": {"fix_crl_services": ["RTCSRV"]}},
                         "adfs_servers": {"hosts": {"adfs01": {"ansible_host": "127.0.1.3"}}}}},
    "site_east": {"hosts": {"lync-fe01": None, "adfs01": None}}}}}


def test_awx_slices_take_every_nth_host_of_the_name_ordered_list() -> None:
    # ansible/awx Inventory.get_script_data: hosts.order_by('name')[slice_number - 1::slice_count]
    hosts = [f"h{index:02d}" for index in range(10)][::-1]
    assert slices.slice_hosts(hosts, 4) == [["h00", "h04", "h08"], ["h01", "h05", "h09"], ["h02", "h06"],
                                            ["h03", "h07"]]
    assert sorted(sum(slices.slice_hosts(hosts, 3), [])) == sorted(hosts)
    with pytest.raises(ValueError, match="slices: expected at least 1"):
        slices.slice_hosts(hosts, 0)


def test_a_slices_inventory_keeps_every_group_and_variable_and_only_its_hosts() -> None:
    assert slices.inventory_hosts(INVENTORY) == ["localhost", "lync-fe01", "lync-fe02", "adfs01"]
    one = slices.sliced_inventory(INVENTORY, ["lync-fe02"])
    assert slices.inventory_hosts(one) == ["lync-fe02"]
    windows = one["all"]["children"]["windows"]
    assert windows["vars"] == {"ansible_port": 5985}
    assert windows["children"]["lync_servers"]["vars"] == {"fix_crl_services": ["RTCSRV"]}
    assert windows["children"]["adfs_servers"]["hosts"] == {}
    assert slices.inventory_hosts(INVENTORY) == ["localhost", "lync-fe01", "lync-fe02", "adfs01"]  # not changed


def _report(hosts: list[tuple[str, str]]) -> dict:
    totals = {"hosts": len(hosts), "compliant": sum(1 for _h, s in hosts if s == "compliant"),
              "would_change": sum(1 for _h, s in hosts if s == "would_change")}
    return {"hosts": [{"host": host, "status": status} for host, status in hosts], "totals": totals}


def test_the_merged_report_must_hold_every_host_once_with_the_slices_totals() -> None:
    a, b = _report([("h1", "compliant")]), _report([("h2", "would_change"), ("h3", "compliant")])
    merged = _report([("h1", "compliant"), ("h2", "would_change"), ("h3", "compliant")])
    assert slices.check_merged(merged, [a, b], ["h1", "h2", "h3"]) == []
    problems = slices.check_merged(_report([("h1", "compliant"), ("h1", "compliant"), ("h9", "compliant")]), [a, b],
                                   ["h1", "h2", "h3"])
    assert problems[0].startswith("hosts more than once in the merged report: ['h1']")
    assert "2 hosts missing from the merged report: ['h2', 'h3']" in problems
    assert "1 hosts in the merged report that no slice targeted: ['h9']" in problems
    assert "totals.compliant: merged 3, the slices add up to 2" in problems


def test_the_slice_table_gives_figures_per_thousand_hosts_and_the_whole_run() -> None:
    parts = [{"slice": 1, "hosts": 500, "rc": 0, "wall_s": 100.0, "cpu_s": 60.0, "peak_pss_sum_kib": 512 * 1024},
             {"slice": 2, "hosts": 500, "rc": 2, "wall_s": 120.0, "cpu_s": 70.0, "peak_pss_sum_kib": 512 * 1024}]
    rows = slices.slice_rows(parts)
    assert rows[0] == ["1", "500", "0", "100.0", "60.0", "512", "200.0", "120.0", "1024"]
    assert rows[-1] == ["all", "1000", "-", "120.0", "130.0", "1024", "120.0", "130.0", "1024"]
    assert report.format_table(rows, slices.SLICE_COLUMNS).count("\n") == 4


def test_the_seams_vvvv_line_gives_each_scripts_sizes() -> None:
    log = ("<127.0.1.1> crlfix.windows.fix_crl_host: running host script host_audit (106131 chars as written, "
           "69922 as sent; 6140 chars on the command line + 22700 bytes on stdin)\n"
           "<127.0.1.1> x: running host script winhttp_state (12 chars as written, 10 as sent; 300 chars on the "
           "command line)\n")
    assert wire.script_sizes(log) == {
        "host_audit": {"written": 106131, "sent": 69922, "command": 6140, "stdin": 22700},
        "winhttp_state": {"written": 12, "sent": 10, "command": 300, "stdin": 0}}


def test_the_bytes_table_and_the_wire_budgets() -> None:
    per_host = {"a": {"doc_certificates": 3000, "doc_crl": 1000}, "b": {"doc_certificates": 1000}}
    document = wire.document_means(per_host)
    assert (document["certificates"], document["crl"], document["tls"]) == (2000.0, 500.0, 0.0)
    audit = {"size": 200, "name": "audit", "per_host": {"bytes_in": {"mean": 50 * 1024}, "bytes_out": {"mean": 8192}},
             "document": document, "script_sizes": {"host_audit": {"written": 9, "sent": 5, "command": 3, "stdin": 2}}}
    runs = [audit, {"size": 200, "name": "baseline_show", "wall_s": 10.0},
            {"size": 200, "name": "audit_fixed", "wall_s": 19.0}]
    row = wire.bytes_rows(runs)[0]
    assert row[:7] == ["200", "9", "5", "3", "2", "50.0", "8.0"] and row[8] == "2000"
    assert len(row) == len(wire.BYTES_COLUMNS)
    (line,) = wire.wire_budget_lines(wire.wire_costs(runs))
    assert line == ("size 200: KiB the host receives per audit 50.0 (budget <= 40.0: MISSED); sends 8.0 (budget <= "
                    "16.0: within); wall audit of the fixed fleet/raw 1.9 (budget <= 2.0: within)")
