"""Start, stop and inspect the loopback fleet of Windows twins and its revocation world.

    lab.py up [--hosts N] [--seed S] [--subnet K] [--lab-dir DIR] [--crl-minutes M] [--squid-port P] [--crl-net N]
        build states + inventory, publish CRLs (NextUpdate M minutes, default 10), start the CRL server, squid
        and the lab server. build/lab is the documented lab: twins from 127.0.1.1 (127.0.K.1 with --subnet),
        squid 127.0.0.1:3128, the CRL server on 127.0.9.80-82:80. Any other lab dir is a second lab beside it:
        it takes a free place (twins 127.0.K.x, squid 31000+K, CRL server 127.9.K.80-82) unless --subnet names
        one; --squid-port and --crl-net (127.9.N.80-82) override those two parts.
    lab.py down [--lab-dir DIR]          stop exactly the lab server, squid and CRL server `up` started (by PID)
    lab.py metrics [--lab-dir DIR]       write and print build/lab/metrics.json
    lab.py publish [--crl-minutes M] [--past]   re-sign the CRLs; --past: NextUpdate already M minutes ago
    lab.py scenarios                     list every scenario a host can be put in, one line each
    lab.py seed --host HOST --scenario NAME [--scenario NAME ...]   put a running lab's host in a scenario, or several
                                         at once (also A,B); through the control channel: the twin reloads, or
                                         restarts when its OS changes

`up` on a lab dir whose processes still run stops them first (no leak), then starts fresh seeded states. It
refuses, naming the address, when one it needs is taken, and leaves nothing behind when a start fails.
The inventory is build/lab/inventory.yml; see docs/lab.md and tests/lab/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.lab.fleet import LabError, launcher, plan, process  # noqa: E402 - needs the repo root on sys.path


def cmd_up(args: argparse.Namespace) -> int:
    lab_dir: Path = args.lab_dir
    old, world = launcher.stop_previous(lab_dir)
    if old is not None:
        print(f"lab: a lab server was already running (pid {old}); stopped it first")
    for name in world:
        print(f"lab: stopped the previous {name}")
    options = {"seed": args.seed, "next_update": dt.timedelta(minutes=args.crl_minutes)}
    place = launcher.place_for(lab_dir, subnet=args.subnet, squid_port=args.squid_port, crl_net=args.crl_net)
    if place is None:
        started = launcher.up_anywhere(
            lab_dir, args.hosts, "lab", squid_port=args.squid_port, crl_net=args.crl_net, **options
        )
    else:
        started = launcher.up(lab_dir, args.hosts, place, **options)
    hosts, revocation = started.fleet["hosts"], started.fleet["revocation"]
    print(
        f"lab: {len(hosts)} twins up on {hosts[0]['address']}-{hosts[-1]['address']} (pid {started.pid}); files "
        f"built in {started.built_seconds:.1f}s, listeners ready in {started.ready_seconds:.1f}s; "
        f"RSS {process.rss_kib(started.pid) // 1024} MiB"
    )
    print(
        f"lab: squid {started.world['proxy']} (pid {started.world['squid_pid']}), CRL server on "
        f"{', '.join(sorted(set(revocation['names'].values())))}:80 (pid {started.world['crl_server_pid']}), "
        f"CRLs valid for {args.crl_minutes} min; TLS port {revocation['tls_port']} on every twin"
    )
    print(f"lab: inventory {lab_dir / 'inventory.yml'}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped, world = launcher.down(args.lab_dir)
    if stopped:
        print(f"lab: stopped; metrics in {args.lab_dir / 'metrics.json'}")
    else:
        print("lab: no lab server was running")
    for name in world:
        print(f"lab: stopped {name}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    try:
        doc = process.control(args.lab_dir, "GET", "/metrics")
    except (LabError, OSError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc["totals"], indent=1))
    print(f"lab: per-host counters in {args.lab_dir / 'metrics.json'}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from tests.lab import pki

    minutes = dt.timedelta(minutes=args.crl_minutes)
    now = dt.datetime.now(dt.UTC)
    # --past signs CRLs as of 2 x M minutes ago, so their NextUpdate lies M minutes in the past: stale CRLs.
    written = pki.publish(args.lab_dir, next_update=minutes, now=now - 2 * minutes if args.past else now)
    when = (now - minutes) if args.past else (now + minutes)
    print(f"lab: published {len(written)} files; NextUpdate {when:%Y-%m-%dT%H:%M:%SZ}")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from tests.lab.fleet import catalogue

    found = catalogue.catalogue().values()
    width = max(len(s.name) for s in found)
    for scenario in found:
        print(f"{scenario.name:<{width}}  {scenario.kind:<14}  {scenario.description}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from tests.lab.fleet import catalogue

    names = catalogue.names_of(args.scenario)
    for name in names:
        if name not in catalogue.catalogue():
            raise LabError(catalogue.unknown_scenario(name))
    doc = process.control(args.lab_dir, "POST", f"/twins/{args.host}/seed", body={"scenario": names})
    how = "restarted" if doc["restarted"] else "reloaded"
    print(f"lab: {doc['name']} is now in scenario {doc['scenario']} (twin {how})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, default=launcher.DEFAULT_LAB_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start N twins, the CRL server and squid")
    up.add_argument("--hosts", type=int, default=12)
    up.add_argument("--seed", type=int, default=plan.DEFAULT_SEED)
    up.add_argument("--subnet", type=int, choices=range(1, 256), metavar="1-255",
                    help="third octet of the first twin address, 127.0.<subnet>.1 (build/lab: 1; else a free one)")
    up.add_argument("--crl-minutes", type=_positive, default=10, help="NextUpdate of the published CRLs")
    up.add_argument("--squid-port", type=int, help="squid's port on 127.0.0.1 (build/lab: 3128; else 31000+K)")
    up.add_argument("--crl-net", type=int, choices=range(1, 255), metavar="1-254",
                    help="CRL server on 127.9.<N>.80-82 (build/lab: 127.0.9.80-82; else 127.9.K.80-82)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the lab").set_defaults(func=cmd_down)
    sub.add_parser("metrics", help="dump per-host counters").set_defaults(func=cmd_metrics)
    publish = sub.add_parser("publish", help="re-sign and publish the CRLs")
    publish.add_argument("--crl-minutes", type=_positive, default=10)
    publish.add_argument("--past", action="store_true", help="NextUpdate already passed (stale CRLs)")
    publish.set_defaults(func=cmd_publish)
    sub.add_parser("scenarios", help="list every scenario, one line each").set_defaults(func=cmd_scenarios)
    seed = sub.add_parser("seed", help="put a running lab's host in a scenario")
    seed.add_argument("--host", required=True, help="the host's inventory name (lync-fe01.lab.test)")
    seed.add_argument("--scenario", required=True, action="append",
                      help="a name `lab.py scenarios` lists; repeat it (or join names with commas) to combine them")
    seed.set_defaults(func=cmd_seed)
    args = parser.parse_args(argv)
    args.lab_dir = args.lab_dir.resolve()
    try:
        return args.func(args)
    except (LabError, ValueError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
