"""``make demo-causes``: a lab with one host per cause of the catalogue, audited, and each diagnosis against its seed.

    .venv/bin/python scripts/demo_causes.py [--lab-dir DIR] [--reports DIR] [--keep]

1. starts its own lab (``build/lab-demo-causes`` unless given: a free place of its own, beside any other lab) with a
   host per cause code of ``plugins/plugin_utils/_fix_crl/_causes.py``, two hosts with two causes each
   (``no_proxy`` + ``non_self_signed_root``, ``crl_expired_at_source`` + ``clock_skew``; ``crl_expired_at_source`` is
   thus seeded on hosts of both sites) and three healthy hosts (two ``correct``, one ``tls10_peer``), each seeded by
   name (``scripts/lab.py seed``, tests/lab/fleet/catalogue.py);
2. runs ``playbooks/fix-crl.yml --check`` on them, with an inventory of its own beside the lab's that gives every host
   a healthy peer (the ``protocol_mismatch`` host the TLS 1.0 one), so that a seeded host's faults never show on
   another host, and gives a host behind a proxy of the cause catalogue that proxy as its site's ``fix_crl_proxy``
   (the proxy the site really uses);
3. prints a table (host, seeded cause(s), diagnosed cause(s), owner) and the report's ``incidents``;
4. stops its lab (unless ``--keep``) and exits 1 when a host's diagnosis does not hold its seeded causes (and those they
   bring: ``cause_scenarios.expected``), or its primary cause is not one of them, or a healthy host has a diagnosis; a
   host seeded only with causes that fail nothing must pass and name them as its risks.

Hosts whose own certificate has only LDAP distribution points (``tests/lab/pki.py`` ``leaf_profile``: ``adfs01`` in
every lab) would carry that cause besides their seed: they are left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.lab import pki  # noqa: E402 - needs the repo root on sys.path
from tests.lab.fleet import LabError, cause_scenarios, launcher, process  # noqa: E402

PLAYBOOK = REPO_ROOT / "playbooks" / "fix-crl.yml"
COMBINATIONS = (("no_proxy", "non_self_signed_root"), ("crl_expired_at_source", "clock_skew"))
HEALTHY = (("correct",), ("correct",), ("tls10_peer",))
HOSTS = 28  # 22 causes + 2 combinations + 3 healthy hosts + adfs01 (left out: its own certificate is LDAP-only)
# Audits at once: the lab's twins share this machine's CPU, and 25 audits at a time (ansible.cfg's forks) make the
# healthy hosts' own handshakes slower than the audit's time box on a busy 2-core machine.
FORKS = 8


def cause_codes() -> list[str]:
    """Every cause code of the collection's catalogue (not ``undetermined``), in its order."""
    sys.path.insert(0, str(REPO_ROOT / ".collections"))
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import CATALOGUE

    return [cause.code for cause in CATALOGUE]


def assign(fleet: dict, codes: list[str]) -> dict[str, tuple[str, ...]]:
    """host -> the scenario names it is seeded with: healthy Lync hosts first, then each cause, then the combinations,
    the second ``crl_expired_at_source`` host in the other site than the first."""
    usable = [h for h in fleet["hosts"] if pki.leaf_profile(h["name"]) != pki.PROFILE_LDAP_ONLY]
    lync = [h for h in usable if h["group"] == "lync_servers"]
    plan: dict[str, tuple[str, ...]] = {h["name"]: seed for h, seed in zip(lync, HEALTHY, strict=False)}
    rest = [h for h in usable if h["name"] not in plan]
    wanted = [(code,) for code in codes] + list(COMBINATIONS)
    if len(rest) < len(wanted):
        raise LabError(f"the lab has {len(rest)} usable hosts for {len(wanted)} seeds")
    site = {h["name"]: h["site"] for h in fleet["hosts"]}
    for seed in wanted:
        pick = rest[0]
        if seed == COMBINATIONS[1]:
            first = next(n for n, s in plan.items() if s == ("crl_expired_at_source",))
            pick = next(h for h in rest if h["site"] != site[first])
        rest.remove(pick)
        plan[pick["name"]] = seed
    return plan


def overlay(fleet: dict, plan: dict[str, tuple[str, ...]]) -> dict:
    """The demo's own inventory: each host's peer (a healthy host; the TLS 1.0 host for protocol_mismatch) and, for a
    host behind a cause's proxy, that proxy as its fix_crl_proxy."""
    healthy = [name for name, seed in plan.items() if seed == ("correct",)]
    tls10 = next(name for name, seed in plan.items() if seed == ("tls10_peer",))
    site_proxy = fleet["site_proxies"]
    hosts = {}
    for host in fleet["hosts"]:
        name, seed = host["name"], plan.get(host["name"])
        if seed is None:
            continue
        peer = tls10 if "protocol_mismatch" in seed else next(h for h in healthy if h != name)
        variables: dict = {"fix_crl_peers": [f"{peer}:{fleet['revocation']['tls_port']}"]}
        proxy = cause_scenarios.site_proxy(seed, site_proxy[host["site"]])
        if proxy is not None:
            variables["fix_crl_proxy"] = proxy
        hosts[name] = variables
    return {"all": {"hosts": hosts}}


def judge(seed: tuple[str, ...], record: dict) -> str | None:
    """Why a host's diagnosis (or, for causes that fail nothing, its risks) does not match its seed, or None."""
    found = [entry.get("cause") for entry in record.get("diagnosis") or []]
    if seed in HEALTHY:
        return f"a healthy host has a diagnosis: {', '.join(found)}" if found else None
    key, wanted = cause_scenarios.expected(seed)
    if key == "risks":
        if found:
            return f"a host whose causes fail nothing has a diagnosis: {', '.join(found)}"
        found = [entry.get("cause") for entry in record.get("risks") or []]
    missing = [cause for cause in wanted if cause not in found]
    if missing:
        return f"not in its {key}: {', '.join(missing)}"
    if found[0] not in wanted:
        return f"primary cause {found[0]}, not the seeded {', '.join(wanted)}"
    return None


def table(plan: dict[str, tuple[str, ...]], report: dict) -> list[str]:
    """The rows printed, and the mismatches (as the last lines' count)."""
    by_host = {h["host"]: h for h in report["hosts"]}
    rows = [("host", "seeded", "diagnosed", "owner", "")]
    problems = []
    for name, seed in plan.items():
        record = by_host.get(name) or {}
        diagnosis = record.get("diagnosis") or []
        problem = judge(seed, record) if record else "no record in the report"
        if problem:
            problems.append(f"{name}: {problem}")
        named = diagnosis or record.get("risks") or []
        causes = ", ".join(e["cause"] for e in named) or "-"
        rows.append((name, "+".join(seed), causes if diagnosis or not named else f"risks: {causes}",
                     ", ".join(dict.fromkeys(e["owner"] for e in named)) or "-", "MISMATCH" if problem else "ok"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines + [""] + [f"mismatch: {p}" for p in problems] + [f"{len(problems)} mismatch(es)"]


def incident_lines(report: dict) -> list[str]:
    incidents = report.get("incidents")
    if incidents is None:
        return ["(the report has no incidents key)"]
    out = [f"{len(incidents)} incident(s):"]
    for incident in incidents:
        text = incident.get("text") or (f"{incident.get('cause')} ({incident.get('owner')}) {incident.get('key')}: "
                                        f"{len(incident.get('hosts') or [])} host(s)")
        out.append(f"- [{incident.get('owner')}] {text}")
        out.append(f"    hosts: {', '.join(incident.get('hosts') or [])}")
    return out


def run(lab_dir: Path, reports: Path) -> int:
    codes = cause_codes()
    started = launcher.up_anywhere(lab_dir, HOSTS, "lab")
    fleet = started.fleet
    print(f"demo-causes: {len(fleet['hosts'])} twins up in {lab_dir} (squid {started.world['proxy']})")
    plan = assign(fleet, codes)
    for name, seed in plan.items():
        process.control(lab_dir, "POST", f"/twins/{name}/seed", body={"scenario": list(seed)}, timeout=60)
    extra = lab_dir / "demo-causes.yml"
    extra.write_text(json.dumps(overlay(fleet, plan), indent=1))
    reports.mkdir(parents=True, exist_ok=True)
    before = set(reports.glob("fix-crl-*.json"))
    variables = {"fix_crl_report_dir": str(reports)}
    command = [str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(lab_dir / "inventory.yml"), "-i",
               str(extra), str(PLAYBOOK), "--check", "-f", str(FORKS), "-l", ",".join(plan), "-e",
               json.dumps(variables)]
    print(f"demo-causes: ansible-playbook -i {lab_dir / 'inventory.yml'} -i {extra} playbooks/fix-crl.yml --check "
          f"-f {FORKS} -l <the {len(plan)} seeded hosts>")
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    (reports / "demo-causes-playbook.log").write_text(result.stdout + result.stderr)
    written = sorted(set(reports.glob("fix-crl-*.json")) - before)
    if result.returncode not in (0, 2) or not written:
        print(f"demo-causes: ansible-playbook exited {result.returncode}; see {reports / 'demo-causes-playbook.log'}",
              file=sys.stderr)
        return result.returncode or 1
    report = json.loads(written[-1].read_text())
    lines = table(plan, report)
    print("\n".join(lines[:-1]))
    print("\n".join(incident_lines(report)))
    print(f"\ndemo-causes: report {written[-1]}; {lines[-1]}")
    return 1 if not lines[-1].startswith("0 ") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, default=REPO_ROOT / "build" / "lab-demo-causes")
    parser.add_argument("--reports", type=Path, default=None, help="where the report goes (default LAB_DIR/reports)")
    parser.add_argument("--keep", action="store_true", help="leave the lab running (stop it: scripts/lab.py down)")
    args = parser.parse_args(argv)
    lab_dir = args.lab_dir.resolve()
    launcher.stop_previous(lab_dir)
    try:
        return run(lab_dir, (args.reports or lab_dir / "reports").resolve())
    except LabError as exc:
        print(f"demo-causes: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            launcher.down(lab_dir)
            print(f"demo-causes: lab in {lab_dir} stopped")


if __name__ == "__main__":
    sys.exit(main())
