#!/usr/bin/env bash
# What `make docs` runs: the collection's docsite, as antsibull-docs renders a collection for docs.ansible.com, into
# build/docsite (the HTML in build/docsite/build/html). Needs `make setup`: antsibull-docs, sphinx and the theme
# come from requirements/dev.txt, and the checkout is the collection linked into .collections (the only collections
# path here, so that no other copy of crlfix.windows is documented instead).
#
# The pages are the plugins' and the role's documentation plus docs/docsite (extra-docs.yml and rst/). Sphinx
# treats every warning as an error (antsibull-docs' own build.sh), with one allowance, since no network is
# reachable here: the links into the Ansible documentation (intersphinx to docs.ansible.com) stay unresolved.
# Every reference to this collection's own labels (a module's R(...,ansible_collections.crlfix.windows.docsite.x),
# a plugin, the role) must resolve.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest=$top/build/docsite
rm -rf "$dest"
mkdir -p "$top/build"
mkdir -m 700 "$dest"  # antsibull-docs wants it writable by its owner only
export PATH=$top/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$top/.collections
antsibull-docs sphinx-init --use-current --dest-dir "$dest" crlfix.windows >/dev/null
cat >>"$dest/conf.py" <<'CONF'

# Added by scripts/docs.sh: offline, the Ansible documentation's inventories cannot be fetched, so references into it
# stay unresolved; references to this collection's own labels must resolve.
intersphinx_mapping = {}
nitpick_ignore_regex = [("std:ref", r"(?!ansible_collections\.crlfix\.windows\.).*")]
CONF
bash "$dest/build.sh"
echo "docs: $dest/build/html/index.html"
