#!/usr/bin/env bash
# What `make demo` runs (after `make setup`): the first-run experience of crlfix.windows.
#
#   1. start a lab of 12 Windows twins on loopback (scripts/lab.py up --hosts 12)
#   2. audit the Lync pool:  ansible-playbook playbooks/fix-crl.yml -l lync_servers --check --diff
#   3. fix it:               ansible-playbook playbooks/fix-crl.yml -l lync_servers
#   4. audit it again:       nothing left to change
#   5. print the fleet summary and where the reports are; the lab is stopped on exit, whatever happened
#
# Exits non-zero when a step breaks (ansible-playbook exit code other than 0 or 2: 2 only means that some hosts
# failed, which the report explains) or when the second audit still finds something to change.
# Overrides: CRLFIX_DEMO_HOSTS (default 12), CRLFIX_DEMO_REPORTS (default ./reports), and, to run beside another
# lab, CRLFIX_DEMO_LAB_DIR (default build/lab; another folder takes free addresses) and optionally
# CRLFIX_DEMO_SUBNET (third octet of 127.0.X.1; build/lab uses 1).
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD
py=$top/.venv/bin/python
hosts=${CRLFIX_DEMO_HOSTS:-12}
reports=${CRLFIX_DEMO_REPORTS:-$top/reports}
lab_dir=${CRLFIX_DEMO_LAB_DIR:-$top/build/lab}
subnet_args=()
[ -n "${CRLFIX_DEMO_SUBNET:-}" ] && subnet_args=(--subnet "$CRLFIX_DEMO_SUBNET")
export ANSIBLE_COLLECTIONS_PATH=$top/.collections
export ANSIBLE_CONFIG=$top/ansible.cfg

# shellcheck source=scripts/demo-common.sh
source scripts/demo-common.sh

# The newest report in $reports, and a one-line digest of it.
latest_report() { ls -1t "$reports"/fix-crl-*.json 2>/dev/null | head -n 1; }
digest() {
  "$py" - "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
t, w = report["totals"], report["worst_handshake"]
fmt = lambda x: "n/a" if x is None else f"{'over ' if x.get('at_least') else ''}{x['ms']:g} ms ({x['host']})"
print(f"{t['hosts']} hosts: {t['compliant']} compliant, {t['would_change']} would change, {t['changed']} changed, "
      f"{t['rolled_back']} rolled back, {t['failed']} failed, {t['unreachable']} unreachable; "
      + (f"worst handshake now {fmt(w['before'])}" if report["run"]["check_mode"]
         else f"worst handshake before {fmt(w['before'])}, after {fmt(w['after'])}"))
for host in report["hosts"]:
    if host["status"] not in ("compliant", "changed", "would_change"):
        print(f"    {host['host']}: {host['status']}: {' '.join(str(host['reason']).split())[:300]}")
PY
}

# ansible-playbook exits 2 when hosts failed: in this job that is a finding the report explains (a peer with an
# LDAP-only certificate, a host rolled back), not a broken demo. Any other non-zero code is.
playbook() {
  local rc=0
  .venv/bin/ansible-playbook -i "$lab_dir/inventory.yml" playbooks/fix-crl.yml -l lync_servers \
    -e "fix_crl_report_dir=$reports" "$@" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    echo "demo: ansible-playbook $* exited $rc" >&2
    exit "$rc"
  fi
}

banner "Starting a lab of $hosts Windows twins"
trap stop_lab EXIT
"$py" scripts/lab.py --lab-dir "$lab_dir" up --hosts "$hosts" "${subnet_args[@]}"

banner "1/3 Audit (check mode): what is wrong, what would change"
playbook --check --diff
audit_before=$(latest_report)

banner "2/3 Fix: set the proxy, flush, verify from each host, roll back what fails"
playbook
fixed=$(latest_report)

banner "3/3 Audit again: nothing left to change"
playbook --check
audit_after=$(latest_report)

banner "Fleet summary"
echo "audit before: $(digest "$audit_before")"
echo "fix:          $(digest "$fixed")"
echo "audit after:  $(digest "$audit_after")"
echo "reports:      $audit_before"
echo "              $fixed"
echo "              $audit_after"

left=$("$py" -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(t["would_change"] + t["unreachable"])' "$audit_after")
if [ "$left" != "0" ]; then
  echo "demo: the second audit still found $left host(s) to change or unreachable; see $audit_after" >&2
  exit 1
fi
echo
echo "Against your own servers: see docs/fix-crl.md (group_vars per site, then the same two commands with -i)."
