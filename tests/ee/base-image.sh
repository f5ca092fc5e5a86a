#!/usr/bin/env bash
# Make the local base image of the execution environment: no image registry can be reached from our machines,
# so `make ee` builds execution-environment.yml FROM this image instead of quay.io/centos/centos:stream9.
#
#   bash tests/ee/base-image.sh            # localhost/crlfix-ee-base:<codename>, once (stamp in build/ee)
#   EE_BASE_REBUILD=1 bash tests/ee/base-image.sh
#
# The image is `debootstrap --variant=minbase` of the Debian release this machine runs (same mirror as its apt),
# with what ansible-builder's steps expect to find: Python 3.11 at /usr/bin/python3.11, pip from Debian (its
# ensurepip is disabled, hence the definition's skip_pip_install), venv, and CA certificates. It trusts what
# this machine trusts: the machine's CA bundle replaces Debian's and /etc/pip.conf names it, so pip inside
# the build reaches the package index the way the machine's own pip does. No recommends, no docs.
set -euo pipefail

ee_top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/ee/podman-env.sh
source "$ee_top/tests/ee/podman-env.sh"

codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
image=localhost/crlfix-ee-base:$codename
stamp=$ee_dir/base-$codename.stamp
machine_ca=/etc/ssl/certs/ca-certificates.crt

# The stamp names this script's checksum: a change to the recipe makes the base anew.
recipe=$(sha256sum "$0" | cut -c1-16)
if [[ -z ${EE_BASE_REBUILD:-} && -f $stamp ]] && grep -q "recipe $recipe" "$stamp" && podman image exists "$image"
then
    echo "ee: base image $image is there ($(cat "$stamp")); EE_BASE_REBUILD=1 makes it anew"
    exit 0
fi

# The first Debian mirror the machine's apt uses (deb822 or one-line sources).
mirror=${EE_DEBIAN_MIRROR:-$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'; } 2>/dev/null | grep -v security | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$ee_dir/rootfs
rm -rf "$rootfs"
began=$SECONDS
echo "ee: debootstrap $codename from $mirror (log: $ee_dir/debootstrap.log)"
# python3.11-venv depends on python3.11-distutils, a name debootstrap cannot resolve: python3-distutils
# provides it.
if ! debootstrap --variant=minbase \
        --include=python3.11,python3-pip,python3.11-venv,python3-distutils,ca-certificates \
        "$codename" "$rootfs" "$mirror" >"$ee_dir/debootstrap.log" 2>&1; then
    tail -n 20 "$ee_dir/debootstrap.log" >&2
    echo "ee: debootstrap failed; see $rootfs/debootstrap/debootstrap.log" >&2
    exit 1
fi

cp "$machine_ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '[global]\n# Written by tests/ee/base-image.sh: the machine'"'"'s CA bundle, for pip in builds.\ncert = %s\n' \
    /etc/ssl/certs/ca-certificates.crt >"$rootfs/etc/pip.conf"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/99crlfix-no-recommends"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*

podman image rm --force "$image" >/dev/null 2>&1 || true
tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' \
    --message "debootstrap $codename minbase, tests/ee/base-image.sh" - "$image" >/dev/null
rm -rf "$rootfs"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - began)) s, recipe $recipe" >"$stamp"
echo "ee: base image $image built in $((SECONDS - began)) s, $(podman image inspect --format '{{.Size}}' "$image") bytes"
