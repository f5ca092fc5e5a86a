#!/usr/bin/env bash
# What `make ee` runs (after `make setup`): the execution environment of execution-environment.yml, built the
# way an offline admin builds it (docs/awx.md, "Offline: a local base").
#
#   1. podman, runc and debootstrap from Debian when missing (tests/ee/install-podman.sh)
#   2. the local base image, once (tests/ee/base-image.sh; cached by a stamp in build/ee)
#   3. ansible-builder build of the same execution-environment.yml users get, with the base and the Debian
#      package manager given as build arguments, so the file's defaults stay the public base's
#
# Tag: localhost/crlfix-ee:<version in galaxy.yml>. Podman's layer cache makes a second build take seconds.
# Prints the image's name on its last line.
set -euo pipefail

ee_top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ee_top"
bash tests/ee/install-podman.sh >/dev/null
# shellcheck source=tests/ee/podman-env.sh
source tests/ee/podman-env.sh
bash tests/ee/base-image.sh

codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
version=$(.venv/bin/python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
image=localhost/crlfix-ee:$version
began=$SECONDS
echo "ee: ansible-builder build $image (log: $ee_dir/build.log)"
# Debian's names for what the public base (CentOS Stream 9) calls python3.11 python3.11-pip and dnf.
if ! .venv/bin/ansible-builder build -f execution-environment.yml -t "$image" -c "$ee_dir/context" \
        --container-runtime podman \
        --build-arg "EE_BASE_IMAGE=localhost/crlfix-ee-base:$codename" \
        --build-arg "PKGMGR=/usr/bin/apt-get" \
        --build-arg "PYPKG=python3.11 python3-pip" \
        -v 3 >"$ee_dir/build.log" 2>&1; then
    tail -n 40 "$ee_dir/build.log" >&2
    echo "ee: ansible-builder build failed; see $ee_dir/build.log" >&2
    exit 1
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "ee: built $image in $((SECONDS - began)) s, $((size / 1000000)) MB"
echo "$image"
