"""scripts/crlfix_report.py: merge and html subcommands, through main(argv) and as a real process."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.sample import MOMENT, fleet_records, sample_report

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "crlfix_report.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("crlfix_report_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = _load_script()


def _write_slices(tmp_path: Path) -> list[str]:
    names = sorted(fleet_records())
    paths = []
    for index, part in enumerate((names[::2], names[1::2])):
        path = tmp_path / f"slice-{index}.json"
        doc = sample_report(run_id=f"slice-{index}", hosts=part, moment=MOMENT + dt.timedelta(seconds=index))
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    return paths


def test_merge_writes_the_merged_json_and_html(tmp_path, capsys) -> None:
    inputs = _write_slices(tmp_path)
    out, page = tmp_path / "out" / "merged.json", tmp_path / "out" / "merged.html"
    assert cli.main(["merge", *inputs, "-o", str(out), "--html", str(page), "--run-id", "job-42"]) == 0
    merged = json.loads(out.read_text())
    assert merged["run"]["id"] == "job-42"
    assert merged["totals"]["hosts"] == 6
    assert [s["file"] for s in merged["sources"]] == inputs
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "job-42" in html and "id='sources'" in html
    printed = capsys.readouterr().out
    assert f"report: {out}" in printed and f"html: {page}" in printed


def test_html_renders_one_report(tmp_path) -> None:
    src = tmp_path / "run.json"
    src.write_text(json.dumps(sample_report()))
    assert cli.main(["html", str(src), "-o", str(tmp_path / "run.html")]) == 0
    assert 'data-host="lync-fe02.lab.test"' in (tmp_path / "run.html").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such report file"),
        ("{not json", "not JSON"),
        ('{"schema": 1, "kind": "crlfix.windows.fix_crl_report", "run": {"id": "x", "time": "2026-11-26T05:01:02Z"},'
         ' "hosts": {}}', ".hosts: expected a list, got dict"),
    ],
)
def test_bad_input_exits_2_naming_the_file(tmp_path, capsys, content, message) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = _write_slices(tmp_path)[0]
    assert cli.main(["merge", good, str(bad), "-o", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    assert not (tmp_path / "m.json").exists()


def test_html_of_a_document_that_is_not_a_report_exits_2(tmp_path, capsys) -> None:
    src = tmp_path / "x.json"
    src.write_text("[]")
    assert cli.main(["html", str(src), "-o", str(tmp_path / "x.html")]) == 2
    assert "report: expected a JSON object, got list" in capsys.readouterr().err


def test_the_output_may_not_overwrite_an_input(tmp_path, capsys) -> None:
    inputs = _write_slices(tmp_path)
    before = Path(inputs[0]).read_text()
    assert cli.main(["merge", *inputs, "-o", inputs[0]]) == 2
    assert "would overwrite one of the input reports" in capsys.readouterr().err
    assert Path(inputs[0]).read_text() == before


def test_runs_as_a_script_with_the_venv_python(tmp_path) -> None:
    inputs = _write_slices(tmp_path)
    result = subprocess.run([sys.executable, str(SCRIPT), "merge", *inputs, "-o", str(tmp_path / "m.json")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m.json").read_text())["totals"]["hosts"] == 6
    usage = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "merge" in usage.stderr
