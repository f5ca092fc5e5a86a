"""The fleet report as the action makes it: build, write (never over an earlier run's), summarise."""

from __future__ import annotations

import json

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report import _fleet as _fleet_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import build_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._fleet import (
    FleetReportError,
    make_fleet_report,
    write_report,
)
from tests.unit.plugins.fixtures.report_records import FLEET, HOSTS, MOMENT


def test_write_report_creates_the_directory_and_never_overwrites(tmp_path) -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    path = write_report(report, str(tmp_path / "reports"), "r1")
    assert json.loads((tmp_path / "reports" / "r1.json").read_text()) == report
    assert path == str(tmp_path / "reports" / "r1.json")
    with pytest.raises(FleetReportError, match="already exists"):
        write_report(report, str(tmp_path / "reports"), "r1")
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["r1.json"]


def test_write_report_names_a_directory_it_cannot_create(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FleetReportError, match=r"dest: cannot create the report directory '.*file/sub'"):
        write_report({}, str(blocker / "sub"), "r")


def test_make_fleet_report_returns_summary_stats_and_problems(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_fleet_report, "utc_now", lambda: MOMENT)
    result = make_fleet_report(HOSTS, FLEET, check_mode=False, dest=str(tmp_path), context={"limit": "lync_servers"})
    assert result["changed"] is False
    assert result["run_id"].startswith("fix-crl-20261126T050102Z-")
    assert result["path"] == str(tmp_path / f"{result['run_id']}.json")
    document = json.loads((tmp_path / f"{result['run_id']}.json").read_text())
    assert document["run"]["limit"] == "lync_servers"
    assert result["stats"] == {"fix_crl_totals": document["totals"], "fix_crl_causes": {}, "fix_crl_owners": {},
                               "fix_crl_incidents": 0, "fix_crl_risks": {},
                               "fix_crl_worst_handshake_ms": {"before": 15020, "after": 15030},
                               "fix_crl_report_path": result["path"]}
    assert set(result["problems"]) == {"lync-fe03.lab.test", "lync-fe04.lab.test", "lync-fe05.lab.test"}
    assert result["summary"].splitlines() == result["summary_lines"]


def test_make_fleet_report_without_dest_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = make_fleet_report(["a"], {}, check_mode=True, dest=None, run_id="r")
    assert result["path"] is None
    assert list(tmp_path.iterdir()) == []
    assert result["totals"]["not_run"] == 1


def test_report_json_parses_to_the_document_with_each_host_key_on_a_line() -> None:
    report = build_report(HOSTS, FLEET, check_mode=False, run_id="r1", moment=MOMENT)
    text = _fleet_report.report_json(report)
    assert json.loads(text) == report
    lines = text.splitlines()
    assert '  "hosts": [' in lines
    # Each host's keys start a line at the third level; what lies below them stays on that line.
    assert sum(line.startswith('      "status": ') for line in lines) == len(report["hosts"])
    assert all(not line.startswith("        ") for line in lines)


def test_report_json_laid_out_all_the_way_is_json_dumps_with_indent() -> None:
    value = {"a": [1, {"b": (2, 3)}, [], {}], 1: None, 2.5: {"x": {4, 5}}, None: "", False: [{"c": "d"}]}
    assert _fleet_report.report_json(value, levels=99) == json.dumps(value, indent=2, default=str)
    assert json.loads(_fleet_report.report_json(value, levels=1)) == json.loads(json.dumps(value, default=str))
