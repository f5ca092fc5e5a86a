#!/usr/bin/env bash
# What `make release` runs (docs/dev/release.md): the release of the version in galaxy.yml, from a clean checkout.
#
#   bash scripts/release.sh           CHANGELOG.md and changelogs/changelog.yaml from the fragments (antsibull-changelog
#                                     release, which removes the fragments), then the tarball in build/release and
#                                     galaxy-importer's verdict on it; commit and tag are left to you (printed)
#   bash scripts/release.sh --check   the same in a throwaway copy of the checkout: nothing here changes (a test runs it)
#
# galaxy-importer is what Galaxy runs on an uploaded tarball (scripts/galaxy-importer.cfg); any warning or error it
# prints fails the release.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
check=false
[ "${1:-}" = "--check" ] && check=true
bin=$top/.venv/bin
version=$("$bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$top/galaxy.yml")
work=$(mktemp -d "${TMPDIR:-/tmp}/crlfix-release.XXXXXX")
trap 'rm -rf "$work"' EXIT

if $check; then
    # The files git knows (tracked and new, minus ignored), as ansible_collections/crlfix/windows for ansible-doc.
    source_dir=$work/ansible_collections/crlfix/windows
    mkdir -p "$source_dir"
    (cd "$top" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$source_dir"
    collections=$work
    dist=$work/dist
else
    if [ -n "$(git -C "$top" status --porcelain)" ]; then
        echo "release: the checkout has uncommitted changes; commit them first (git status)" >&2
        exit 1
    fi
    source_dir=$top
    collections=$top/.collections
    dist=$top/build/release
fi

# Ansible's own variables from `make` (the checkout's ansible.cfg and .collections) stay out of the tools' way.
(cd "$source_dir" && env -u ANSIBLE_CONFIG PATH="$bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" \
    bash -euo pipefail -c 'antsibull-changelog lint && antsibull-changelog release')
"$bin/python" - "$source_dir" "$version" <<'PY'
import pathlib, sys, yaml
top, version = pathlib.Path(sys.argv[1]), sys.argv[2]
releases = yaml.safe_load((top / "changelogs" / "changelog.yaml").read_text())["releases"] or {}
# The Markdown writer escapes the dots of a heading: "## v1\.0\.0".
if version not in releases or "v" + version.replace(".", "\\.") not in (top / "CHANGELOG.md").read_text():
    sys.exit(f"release: changelogs/changelog.yaml or CHANGELOG.md has no release {version}")
PY
echo "release: CHANGELOG.md has v$version"

rm -rf "$dist"
mkdir -p "$dist"
env -u ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH="$work/none" "$bin/ansible-galaxy" collection build --output-path "$dist" \
    "$source_dir" >/dev/null
tarball=$dist/crlfix-windows-$version.tar.gz
[ -f "$tarball" ] || { echo "release: no $tarball" >&2; exit 1; }

# In a folder of its own, with a home of its own: the importer extracts and lints the tarball there.
mkdir -p "$work/importer/home"
if ! (cd "$work/importer" && env -u ANSIBLE_CONFIG -u ANSIBLE_COLLECTIONS_PATH HOME="$work/importer/home" \
        PATH="$bin:$PATH" GALAXY_IMPORTER_CONFIG="$top/scripts/galaxy-importer.cfg" \
        "$bin/python" -m galaxy_importer.main "$tarball") >"$work/importer.log" 2>&1; then
    cat "$work/importer.log" >&2
    echo "release: galaxy-importer failed on $tarball" >&2
    exit 1
fi
if grep -E "^(WARNING|ERROR)" "$work/importer.log" >&2; then
    echo "release: galaxy-importer reported the lines above on $tarball" >&2
    exit 1
fi
echo "release: galaxy-importer accepts $(basename "$tarball") ($(tail -n 1 "$work/importer.log"))"

if $check; then
    echo "release: checked v$version in a copy; nothing in the checkout changed"
else
    echo "release: $tarball"
    echo "next: git add -A CHANGELOG.md changelogs && git commit -m 'Release $version' && git tag $version"
fi
