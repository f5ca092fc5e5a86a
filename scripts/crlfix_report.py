"""Turn fix-crl fleet reports into what people read: merge runs, render the HTML page.

    crlfix_report.py merge A.json B.json ... -o merged.json [--html merged.html] [--run-id ID]
        merge the reports of AWX job slices or --limit runs (rules: docs/awx.md, "Merging slice reports")
    crlfix_report.py html report.json -o report.html
        render one report (a single run's or a merged one) as a self-contained HTML page

Run as ``.venv/bin/python scripts/crlfix_report.py ...`` from a checkout after ``make setup``, or from an
installed collection (``.../ansible_collections/crlfix/windows/scripts/``). Exit status: 0 done, 2 bad input
(the message names the file and the field).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _make_collection_importable() -> None:
    """Put the directory that holds ``ansible_collections/crlfix/windows`` (this checkout) on sys.path."""
    candidates = [REPO_ROOT / ".collections"]
    if REPO_ROOT.parent.name == "crlfix" and REPO_ROOT.parents[1].name == "ansible_collections":
        candidates.insert(0, REPO_ROOT.parents[2])  # installed by ansible-galaxy
    for candidate in candidates:
        if (candidate / "ansible_collections" / "crlfix" / "windows").is_dir():
            if str(candidate) not in sys.path:
                sys.path.insert(0, str(candidate))
            return
    raise SystemExit(f"crlfix_report: cannot find the crlfix.windows collection next to {REPO_ROOT}; run `make setup`")


_make_collection_importable()

from ansible_collections.crlfix.windows.plugins.plugin_utils._report._html import (  # noqa: E402
    ReportHtmlError,
    render_report_html,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._merge import (  # noqa: E402
    ReportMergeError,
    merge_reports,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import write_text_atomic  # noqa: E402


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _load(path: str) -> dict[str, t.Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such report file") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from exc


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, text)


def _refuse_overwriting_inputs(outputs: list[str | None], inputs: list[str]) -> None:
    real_inputs = {os.path.realpath(path) for path in inputs}
    for output in outputs:
        if output and os.path.realpath(output) in real_inputs:
            raise UsageError(f"{output}: the output would overwrite one of the input reports")


def cmd_merge(args: argparse.Namespace) -> int:
    _refuse_overwriting_inputs([args.output, args.html], args.reports)
    documents = [_load(path) for path in args.reports]
    try:
        merged = merge_reports(documents, names=args.reports, run_id=args.run_id)
    except ReportMergeError as exc:
        raise UsageError(str(exc)) from exc
    _write(args.output, json.dumps(merged, indent=2) + "\n")
    totals = merged["totals"]
    print(
        f"merged {len(args.reports)} reports ({len(merged['sources'])} runs): {totals['hosts']} hosts, "
        + ", ".join(f"{totals[key]} {key}" for key in totals if key not in ("hosts",) and totals[key])
    )
    print(f"report: {args.output}")
    if args.html:
        _write(args.html, render_report_html(merged))
        print(f"html: {args.html}")
    return 0


def cmd_html(args: argparse.Namespace) -> int:
    _refuse_overwriting_inputs([args.output], [args.report])
    document = _load(args.report)
    try:
        page = render_report_html(document)
    except ReportHtmlError as exc:
        raise UsageError(f"{args.report}: {exc}") from exc
    _write(args.output, page)
    print(f"html: {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crlfix_report.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge the reports of several runs (AWX slices, --limit runs)")
    merge.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge.add_argument("-o", "--output", required=True, help="where the merged JSON report goes")
    merge.add_argument("--html", help="also render the merged report as HTML here")
    merge.add_argument("--run-id", help="run.id of the merged document (default merged-<UTC time>)")
    merge.set_defaults(func=cmd_merge)
    page = commands.add_parser("html", help="render one report as a self-contained HTML page")
    page.add_argument("report", metavar="REPORT.json")
    page.add_argument("-o", "--output", required=True, help="where the HTML page goes")
    page.set_defaults(func=cmd_html)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"crlfix_report: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
