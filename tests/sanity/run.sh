#!/usr/bin/env bash
# ansible-test needs the collection under .../ansible_collections/crlfix/windows and resolves symlinks,
# so sanity runs on a copy of the files git knows about (tracked + new, minus ignored).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dest="$top/build/sanity/ansible_collections/crlfix/windows"
rm -rf "$top/build/sanity"
mkdir -p "$dest"
cd "$top"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$dest"
cd "$dest"
# --venv: ansible-test builds its own per-test virtualenvs from PyPI (no Docker here).
# Tests skipped below need tools this machine cannot have; each skip says why:
#   pslint: needs PowerShell (pwsh) and PSScriptAnalyzer; our .ps1 files are parse-checked by
#           tests/unit/plugins/plugin_utils/test_ps1_syntax.py with tree-sitter-powershell instead.
exec "$top/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no \
  --skip-test pslint "$@"
