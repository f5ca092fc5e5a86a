#!/usr/bin/env bash
# Install Debian's podman, runc and debootstrap: what `make ee` needs to build and run the execution environment
# (docs/awx.md, "Building the image here"). podman's default OCI runtime, crun, refuses to start containers on
# our machines; runc works (tests/ee/podman.sh tells podman to use it).
#
# Called by `make ee` / `make test` (as root, like every session and CI run here):  bash tests/ee/install-podman.sh
# Idempotent: when all three are there it only prints their versions.
#
# It also mounts POSIX message queues at /dev/mqueue when they are not there: ansible-runner starts execution
# environments with --ipc=host, and ansible-navigator refuses podman without that directory. Machines with
# systemd mount it at boot; ours have no systemd.
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
    echo "install-podman.sh: must run as root (apt-get install podman runc debootstrap)" >&2
    exit 1
fi

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
[[ -x /usr/sbin/runc || -x /usr/bin/runc ]] || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)

if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be missing or stale on a fresh machine: try once, then update and install.
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

if [[ ! -d /dev/mqueue ]] || ! mountpoint -q /dev/mqueue; then
    mkdir -p /dev/mqueue
    mount -t mqueue mqueue /dev/mqueue
fi

podman --version
runc --version | head -n 1
echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
