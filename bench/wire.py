"""Where the bytes go (pure, like report.py): a host script as written, as sent and on the wire; the host's document
by part; each against its budget.

The script's sizes come from the seam's own ``-vvvv`` line (``plugins/plugin_utils/_host/_powershell.py``: "running
host script <name> (<n> chars as written, <n> as sent; <n> chars on the command line + <n> bytes on stdin)") of one
host audited once more with ``-vvvv`` after the measured audit; the document's parts from the twins' counters
``doc_<part>`` (bytes of compact JSON per part of every host_audit document a twin printed, tests/twin/executor.py
``DOCUMENT_PARTS``; ``doc_printed``: the line as printed, deflated when long); the KiB per host from the twins'
``bytes_in``/``bytes_out`` (HTTP heads and bodies).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bench.report import budget_line, ratio, runs_by_size
from tests.twin.executor import DOCUMENT_PARTS, DOCUMENT_SIZES

DOCUMENT_COUNTERS = tuple(f"doc_{part}" for part in DOCUMENT_SIZES)
# The wire budgets (printed, never asserted): KiB a host receives and sends per audit, and the wall of an audit of a
# fleet already fixed against the show-only `raw` run.
WIRE_BUDGETS = {"kib_in": 40.0, "kib_out": 16.0, "fixed_wall_ratio": 2.0}
_SCRIPT_LINE = re.compile(r"running host script (?P<name>\S+) \((?P<written>[0-9]+) chars as written, (?P<sent>[0-9]+) "
                          r"as sent; (?P<command>[0-9]+) chars on the command line(?: \+ (?P<stdin>[0-9]+) bytes on "
                          r"stdin)?\)")


def script_sizes(log_text: str) -> dict[str, dict[str, int]]:
    """Per host script named in a ``-vvvv`` log: chars as written, as sent, on the command line, bytes on stdin
    (the last line of each name wins)."""
    found: dict[str, dict[str, int]] = {}
    for match in _SCRIPT_LINE.finditer(log_text):
        found[match["name"]] = {"written": int(match["written"]), "sent": int(match["sent"]),
                                "command": int(match["command"]), "stdin": int(match["stdin"] or 0)}
    return found


def document_means(per_host: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean bytes per host of each document part (``doc_<part>`` counter differences per host)."""
    count = len(per_host)
    return {part: round(sum(int(row.get(f"doc_{part}", 0)) for row in per_host.values()) / count, 1) if count else 0.0
            for part in DOCUMENT_SIZES}


BYTES_COLUMNS = ("size", "written chars", "sent chars", "command line chars", "stdin B", "KiB in/host",
                 "KiB out/host", *(f"doc {part} B" for part in DOCUMENT_SIZES))


def bytes_rows(runs: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """One row per size: host_audit's sizes, the audit's KiB per host and its document's bytes per part."""
    rows = []
    for size, named in runs_by_size(list(runs)):
        audit = named.get("audit")
        if audit is None:
            continue
        script = (audit.get("script_sizes") or {}).get("host_audit") or {}
        counters = audit.get("per_host") or {}
        kib = [counters.get(key, {}).get("mean") for key in ("bytes_in", "bytes_out")]
        document = audit.get("document") or {}
        rows.append([str(size), *(str(script.get(key, "-")) for key in ("written", "sent", "command", "stdin")),
                     *("-" if value is None else f"{value / 1024:.1f}" for value in kib),
                     *(f"{document[part]:.0f}" if part in document else "-" for part in DOCUMENT_SIZES)])
    return rows


def wire_costs(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per size: KiB in and out per host of the audit, and the wall of the audit of a fixed fleet against `raw`."""
    out = []
    for size, named in runs_by_size(list(runs)):
        counters = named.get("audit", {}).get("per_host") or {}

        def kib(key: str, counters: Mapping[str, Any] = counters) -> float | None:
            mean = counters.get(key, {}).get("mean")
            return None if mean is None else round(mean / 1024, 1)

        out.append({"size": size, "kib_in": kib("bytes_in"), "kib_out": kib("bytes_out"),
                    "fixed_wall_ratio": ratio(named.get("audit_fixed", {}).get("wall_s"),
                                              named.get("baseline_show", {}).get("wall_s"))})
    return out


def wire_budget_lines(costs: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per size: each wire budget and whether this run is within it (printed, never asserted)."""
    return [budget_line(row["size"], [
        ("KiB the host receives per audit", row["kib_in"], WIRE_BUDGETS["kib_in"], ""),
        ("sends", row["kib_out"], WIRE_BUDGETS["kib_out"], ""),
        ("wall audit of the fixed fleet/raw", row["fixed_wall_ratio"], WIRE_BUDGETS["fixed_wall_ratio"], "")])
        for row in costs]


__all__ = ["BYTES_COLUMNS", "DOCUMENT_COUNTERS", "DOCUMENT_PARTS", "WIRE_BUDGETS", "bytes_rows", "document_means",
           "script_sizes", "wire_budget_lines", "wire_costs"]
