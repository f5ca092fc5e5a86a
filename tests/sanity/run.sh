#!/usr/bin/env bash
# ansible-test sanity in venv mode (no Docker). ansible-test needs the collection under
# .../ansible_collections/crlfix/windows and resolves symlinks, so it runs on a copy of the files git
# knows about (tracked + new, minus ignored), placed outside the checkout: inside it, ansible-test would
# list files with the checkout's git and, the copy being ignored there, see none.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# A fresh directory per run, so that runs from two checkouts (or two shells) never share one.
work=$(mktemp -d "${TMPDIR:-/tmp}/crlfix-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/crlfix/windows"
mkdir -p "$dest"
cd "$top"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$dest"

# ansible-test keeps its caches under ~/.ansible/test: keep them in the build tree, not the user's home,
# and give it the pip bootstrap script it would otherwise download from a host we cannot reach.
export HOME="$top/build/sanity-home"
pip_version=$(grep -oP "pip='\K[0-9.]+" "$top"/.venv/lib/python3.*/site-packages/ansible_test/_internal/python_requirements.py)
mkdir -p "$HOME/.ansible/test/cache"
cp "$top/tests/sanity/get_pip_shim.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

cd "$dest"
# Skipped, with reasons:
#   pslint: needs PowerShell (pwsh) and PSScriptAnalyzer, which this platform cannot have; every .ps1 is
#           parse-checked by tests/unit/plugins/plugin_utils/_host/test_ps1_syntax.py with tree-sitter-powershell.
"$top/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no \
  --skip-test pslint "$@"
