#!/usr/bin/env bash
# Install Debian's chromium, which tests/integration/report/test_report_chromium.py uses to render the HTML
# fleet report headless (no browser is downloaded from anywhere else: the test uses the distribution's build).
#
# Called by `make setup` (as root, like every session and CI run here):  bash tests/report/install-chromium.sh
# Idempotent: does nothing but print the version when /usr/bin/chromium exists.
set -euo pipefail

CHROMIUM_BIN=/usr/bin/chromium

if [[ ! -x "$CHROMIUM_BIN" ]]; then
    if [[ $EUID -ne 0 ]]; then
        echo "install-chromium.sh: must run as root (apt-get install chromium)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be missing or stale on a fresh machine: try, update once, try again.
    if ! apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends chromium
    fi
fi

if [[ ! -x "$CHROMIUM_BIN" ]]; then
    echo "install-chromium.sh: $CHROMIUM_BIN still missing after apt-get install chromium" >&2
    exit 1
fi
# The version from the package database: the /usr/bin/chromium wrapper script prints shell errors on some
# machines (a memory test in its sourced defaults) that read as if the install failed.
dpkg-query -W -f 'chromium ${Version}\n' chromium
