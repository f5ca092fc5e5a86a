"""The fleet report holds the same information whether the records travel as task results or as files.

The same seeded lab is audited twice through the real playbook: once with ``fix_crl_result_detail: full`` (the
record is the task result) and once with the default ``summary`` (the record goes to a file
of the run, the task result is its summary). The JSON reports are compared field by field and the HTML pages
text by text, timings aside: handshake and retrieval times, the run's id and time are measured again on every run, and
an OCSP responder's answer is signed again for every request.
"""

from __future__ import annotations

import json
import re
import typing as t
from pathlib import Path

import pytest

from tests.integration.role._runs import reset_fleet, run_fix_crl

pytestmark = pytest.mark.lab

# Short timeouts keep the lab's measurements to seconds (as the AWX test's survey); one batch.
FAST = {"fix_crl_crl_timeout_ms": 3000, "fix_crl_probe_timeout_ms": 8000, "fix_crl_probe_samples": 1}
# Keys whose values are measured again on every run (times, durations, the evidence window), and the run's own id
# and time.
TIMING_KEY = re.compile(r"(_ms|^ms|_s|_at|_start|_end|^time|^elapsed.*|^samples|^id|^run_id)$")
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def timings_aside(value: t.Any, key: str = "") -> t.Any:
    """``value`` with every timing replaced by a mark; numbers inside text too (reasons and summaries quote ms)."""
    if TIMING_KEY.search(key) and not isinstance(value, (dict, list)):
        return "<timing>"
    if isinstance(value, dict):
        out = {name: timings_aside(item, name) for name, item in value.items()}
        if value.get("kind") == "ocsp" and "bytes" in out:
            # An OCSP responder signs each answer anew (its producedAt, an ECDSA signature of varying length).
            out["bytes"] = "<signed anew>"
        return out
    if isinstance(value, list):
        return [timings_aside(item, key) for item in value]
    if isinstance(value, str) and " ms" in value:
        return NUMBER.sub("<n>", value)
    return value


def _differences(full: t.Any, summary: t.Any, where: str = "") -> list[str]:
    """Every path where the two documents differ, so that a failure names the fields."""
    if isinstance(full, dict) and isinstance(summary, dict):
        out = [f"{where}.{key}: only in {'full' if key in full else 'summary'}" for key in set(full) ^ set(summary)]
        for key in sorted(set(full) & set(summary)):
            out += _differences(full[key], summary[key], f"{where}.{key}")
        return out
    if isinstance(full, list) and isinstance(summary, list) and len(full) == len(summary):
        return [line for index, (a, b) in enumerate(zip(full, summary, strict=True))
                for line in _differences(a, b, f"{where}[{index}]")]
    return [] if full == summary else [f"{where}: {full!r:.200} != {summary!r:.200}"]


@pytest.fixture
def fleet(lab):
    reset_fleet(lab)
    yield lab
    reset_fleet(lab)


def test_the_report_is_the_same_from_summaries_and_files_as_from_full_results(fleet, tmp_path: Path) -> None:
    full = run_fix_crl(fleet, tmp_path / "full", "--check", extra_vars={**FAST, "fix_crl_result_detail": "full"})
    reset_fleet(fleet)
    summary = run_fix_crl(fleet, tmp_path / "summary", "--check", extra_vars=FAST)
    assert full.rc == summary.rc, summary.stdout + summary.stderr
    # Each run registered what it was asked to: the whole record, or a summary naming the file.
    assert "record_path" not in json.dumps(full.report) and "record_path" not in json.dumps(summary.report)
    statuses = set(full.status().values())
    assert len(full.report["hosts"]) == len(fleet.hosts) and {"would_change", "compliant"} <= statuses, statuses
    assert any(host["certificates"] and host["probes"] for host in full.report["hosts"])  # a measured fleet

    differences = _differences(timings_aside(full.report), timings_aside(summary.report))
    assert differences == [], "\n".join(differences)

    # The HTML pages beside them: the same text once numbers (times, durations, chart geometry) are set aside.
    pages = [html_timings_aside(next((tmp_path / name).glob("*.html")).read_text()) for name in ("full", "summary")]
    assert pages[0] == pages[1]


def html_timings_aside(page: str) -> tuple[str, list[str]]:
    """The page with every number masked, and the latency chart's rows apart, sorted: the chart orders the hosts
    by their measured handshake time."""
    page = NUMBER.sub("<n>", page)
    row = re.compile(r'(?s)<g class="chart-row".*?</g>')
    return row.sub("<row>", page), sorted(row.findall(page))
