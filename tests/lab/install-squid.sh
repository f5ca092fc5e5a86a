#!/usr/bin/env bash
# Install Debian's squid for the lab's forward proxy, and make sure the distribution's own squid service is
# not running (the lab starts its own squid with its own config, see tests/lab/squid.py).
#
# Called by `make setup` (as root, like every session and CI run here):  bash tests/lab/install-squid.sh
# Idempotent: when /usr/sbin/squid exists it only makes sure the packaged service is stopped.
#
# Why the policy-rc.d dance: Debian's squid postinst starts the packaged service through invoke-rc.d /
# deb-systemd-invoke. This machine has no systemd, so invoke-rc.d falls back to /etc/init.d/squid, which would
# start a squid on *:3128 with /etc/squid/squid.conf and block the lab's proxy port. invoke-rc.d asks
# /usr/sbin/policy-rc.d first; exit code 101 means "action forbidden". If the machine already has a
# policy-rc.d we leave it alone; otherwise we install a temporary one for the duration of the install.
set -euo pipefail

SQUID_BIN=/usr/sbin/squid
POLICY=/usr/sbin/policy-rc.d

if [[ $EUID -ne 0 ]]; then
    echo "install-squid.sh: must run as root (apt-get install squid)" >&2
    exit 1
fi

stop_packaged_squid() {
    # The packaged service writes /run/squid.pid; stop exactly that process, never by name.
    if [[ -x /etc/init.d/squid ]] && [[ -s /run/squid.pid ]]; then
        /etc/init.d/squid stop >/dev/null 2>&1 || true
    fi
    if [[ -s /run/squid.pid ]]; then
        pid=$(cat /run/squid.pid)
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f /run/squid.pid
    fi
    # Keep it from starting at boot on machines with sysv init (no-op without the links).
    if command -v update-rc.d >/dev/null 2>&1 && [[ -x /etc/init.d/squid ]]; then
        update-rc.d squid disable >/dev/null 2>&1 || true
    fi
}

if [[ ! -x "$SQUID_BIN" ]]; then
    temp_policy=0
    if [[ ! -e "$POLICY" ]]; then
        printf '#!/bin/sh\n# temporary: written by crlfix tests/lab/install-squid.sh\nexit 101\n' >"$POLICY"
        chmod 0755 "$POLICY"
        temp_policy=1
    fi
    trap '[[ $temp_policy -eq 1 ]] && rm -f "$POLICY"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be missing or stale on a fresh machine: update once, then install.
    if ! apt-get install -y -q --no-install-recommends squid >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends squid
    fi
fi

stop_packaged_squid

if [[ ! -x "$SQUID_BIN" ]]; then
    echo "install-squid.sh: $SQUID_BIN still missing after apt-get install squid" >&2
    exit 1
fi
"$SQUID_BIN" -v | head -n 1
