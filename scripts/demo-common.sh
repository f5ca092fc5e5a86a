# Sourced by scripts/demo.sh and scripts/ee-demo.sh: their banner, and the EXIT trap that stops their lab
# (needs $py, the venv's python, and $lab_dir set by the caller).
# shellcheck shell=bash

banner() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

stop_lab() {
  local rc=$?
  banner "Stopping the lab"
  "$py" scripts/lab.py --lab-dir "$lab_dir" down || true
  exit "$rc"
}
