#!/usr/bin/env bash
# What `make ee-demo` runs (after `make ee`): the audit of the built-in lab from inside the execution
# environment, the way an admin tries an EE before pointing AWX at it (docs/awx.md, "Check an EE before AWX").
#
#   1. start a lab of Windows twins on loopback (scripts/lab.py up, in build/ee-demo/lab)
#   2. the project sync of AWX: ansible-galaxy collection install -r collections/requirements.yml
#   3. ansible-navigator run playbooks/fix-crl.yml --eei localhost/crlfix-ee:<version> --ce podman
#        --mode stdout --check, over host networking (the twins listen on 127.0.x.y)
#   4. show what came back: the JSON and HTML report, the set_stats totals in ansible-runner's job events
#      (what AWX shows as the job's artifacts) and navigator's playbook artifact; the lab is stopped on exit
#
# Exits non-zero when navigator breaks (exit code other than 0 or 2), or when the report, the artifacts or the
# totals are missing or leave out a lab host.
# Overrides: CRLFIX_EE_DEMO_HOSTS (default 6); CRLFIX_EE_DEMO_SUBNET (third octet of 127.0.X.1; by default the
# lab takes free addresses, as every lab outside build/lab does).
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD
py=$top/.venv/bin/python
hosts=${CRLFIX_EE_DEMO_HOSTS:-6}
subnet_args=()
[ -n "${CRLFIX_EE_DEMO_SUBNET:-}" ] && subnet_args=(--subnet "$CRLFIX_EE_DEMO_SUBNET")
demo=$top/build/ee-demo
lab_dir=$demo/lab
version=$("$py" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
image=localhost/crlfix-ee:$version
# shellcheck source=tests/ee/podman-env.sh
source tests/ee/podman-env.sh

# shellcheck source=scripts/demo-common.sh
source scripts/demo-common.sh

if ! podman image exists "$image"; then
  echo "ee-demo: no image $image; run 'make ee' first" >&2
  exit 1
fi
rm -rf "$demo/collections" "$demo/reports" "$demo/runner" "$demo/artifacts" "$demo/cache"
mkdir -p "$demo/collections" "$demo/reports" "$demo/runner" "$demo/artifacts"

banner "Starting a lab of $hosts Windows twins"
trap stop_lab EXIT
"$py" scripts/lab.py --lab-dir "$lab_dir" up --hosts "$hosts" "${subnet_args[@]}"

banner "Project sync: ansible-galaxy collection install -r collections/requirements.yml"
# As AWX's sync does, into the job's own collections folder; naming it as the only collections path keeps the
# checkout's .collections link out of the picture.
ANSIBLE_COLLECTIONS_PATH=$demo/collections .venv/bin/ansible-galaxy collection install \
  -r collections/requirements.yml -p "$demo/collections"

banner "Audit (check mode) inside $image"
rc=0
began=$SECONDS
# XDG_CACHE_HOME: the navigator's caches (collection docs, its introspection scripts) stay out of ~/.cache.
XDG_CACHE_HOME=$demo/cache .venv/bin/ansible-navigator run playbooks/fix-crl.yml \
  --execution-environment-image "$image" --container-engine podman --pull-policy never \
  --mode stdout --display-color false --container-options=--net=host \
  --inventory "$lab_dir/inventory.yml" \
  --set-environment-variable "ANSIBLE_COLLECTIONS_PATH=$demo/collections" \
  --ansible-runner-artifact-dir "$demo/runner" --ansible-runner-write-job-events \
  --playbook-artifact-enable true --playbook-artifact-save-as "$demo/artifacts/{playbook_name}-artifact.json" \
  --log-file "$demo/navigator.log" \
  --check -e "fix_crl_report_dir=$demo/reports" || rc=$?
echo "ee-demo: ansible-navigator exited $rc after $((SECONDS - began)) s"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
  echo "ee-demo: ansible-navigator exited $rc (log: $demo/navigator.log)" >&2
  exit "$rc"
fi

banner "What came back from the container"
"$py" - "$demo" "$lab_dir/inventory.yml" <<'PY'
import glob, json, sys
from pathlib import Path
import yaml

demo, inventory = Path(sys.argv[1]), yaml.safe_load(Path(sys.argv[2]).read_text())
lab_hosts = set()
def walk(group):
    lab_hosts.update((group.get("hosts") or {}).keys())
    for child in (group.get("children") or {}).values():
        walk(child)
walk(inventory["all"]["children"]["windows"])
stats = [json.loads(Path(p).read_text()) for p in glob.glob(str(demo / "runner/artifacts/*/job_events/*.json"))]
stats = [e for e in stats if e.get("event") == "playbook_on_stats"]
if len(stats) != 1:
    sys.exit(f"ee-demo: expected one playbook_on_stats event in {demo}/runner/artifacts, found {len(stats)}")
data = stats[0]["event_data"].get("artifact_data") or {}
report_path = Path(data.get("fix_crl_report_path", ""))
if not report_path.is_file() or not report_path.with_suffix(".html").is_file():
    sys.exit(f"ee-demo: the report {report_path} (and its .html) did not come back from the container")
report = json.loads(report_path.read_text())
reported = {h["host"] for h in report["hosts"]}
if reported != lab_hosts:
    sys.exit(f"ee-demo: the report lists {sorted(reported)}, the lab has {sorted(lab_hosts)}")
if data["fix_crl_totals"] != report["totals"] or report["run"]["check_mode"] is not True:
    sys.exit(f"ee-demo: set_stats totals {data['fix_crl_totals']} differ from the report's {report['totals']}")
print(f"set_stats fix_crl_totals (job events): {json.dumps(data['fix_crl_totals'])}")
print(f"report:  {report_path}\nhtml:    {report_path.with_suffix('.html')}")
for host in sorted(report["hosts"], key=lambda h: h["host"]):
    print(f"    {host['host']:24} {host['status']}")
artifact = sorted(glob.glob(str(demo / "artifacts/*.json")))
print(f"playbook artifact (ansible-navigator replay {artifact[0]}): status {json.loads(Path(artifact[0]).read_text())['status']}")
PY
