# Sourced by the tests/ee scripts (and printed by `make ee` for a shell): podman configured for our machines,
# from files in build/ee only; the machine's /etc/containers stays as Debian shipped it.
#
#   default_ulimits = []   podman's default nofile/nproc ulimits cannot be set in our sandbox; runc then fails
#   cgroup_manager          cgroupfs: there is no systemd to ask for a cgroup
#   runtime = "runc"        crun, podman's default, refuses to start containers here; runc works
#
# Images live in podman's usual store (/var/lib/containers): a second worktree or session reuses them.
# shellcheck shell=bash
ee_top=${ee_top:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ee_dir=$ee_top/build/ee
mkdir -p "$ee_dir"
cat >"$ee_dir/containers.conf.new" <<'CONF'
# Written by tests/ee/podman-env.sh; used through CONTAINERS_CONF, never installed machine-wide.
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
mv -f "$ee_dir/containers.conf.new" "$ee_dir/containers.conf"
export CONTAINERS_CONF=$ee_dir/containers.conf
