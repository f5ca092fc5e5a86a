"""``python -m tests.pslint [PATH ...]``: check the given ``.ps1`` files (or directories), or every one of the
collection; print each finding as ``path:line:column: RULE message`` and exit 1 if there is any."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.pslint import RULES, check_file

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the collection keeps PowerShell (its own files; not the venv, the lab's build tree or a test's samples).
DEFAULT_ROOTS = ("plugins", "roles", "playbooks", "molecule", "scripts")


def collection_ps1_files() -> list[Path]:
    return sorted(path for root in DEFAULT_ROOTS for path in (REPO_ROOT / root).rglob("*.ps1"))


def _expand(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        found += sorted(path.rglob("*.ps1")) if path.is_dir() else [path]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pslint", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("paths", nargs="*", help=".ps1 files or directories (default: every .ps1 of the collection)")
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    options = parser.parse_args(argv)
    if options.rules:
        for rule, summary in RULES.items():
            print(f"{rule}  {summary}")
        return 0
    files = _expand(options.paths) if options.paths else collection_ps1_files()
    if not files:
        print("pslint: no .ps1 files to check", file=sys.stderr)
        return 2
    findings = []
    for path in files:
        shown = path.resolve().relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path
        findings += check_file(path, display=str(shown))
    for finding in findings:
        print(finding)
    print(f"pslint: {len(files)} files, {len(findings)} findings", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
