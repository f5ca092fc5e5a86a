"""Record a Windows host's answers to every host script, as fixtures the controller's parsers are replayed over.

    record_host.py -i INVENTORY HOST [--out DIR] [--name NAME] [--mask] [--source TEXT]
                   [--peer HOST:PORT ...] [--stores My ...] [--chain-stores CA Root ...] [--samples N]
                   [--crl-timeout-ms MS] [--probe-timeout-ms MS] [--time-box-ms MS] [--apply-conflict] [--twin]

Runs ansible-playbook against HOST (exactly one host of INVENTORY) over the inventory's own connection, with one task
(scripts/record_host_action/crlfix_record_host.py) that sends winhttp_state, cert_inventory, crl_fetch (the
certificates' http/https endpoints), tls_probe (the --peer list), host_audit, optionally winhttp_apply with an
expectation no host holds (--apply-conflict: the host's compare refuses it; nothing is written), and the netsh / reg
/ certutil / hostname reads the twin models plus a few only a real host answers. Every answer is written raw into
OUT/NAME/ (default tests/unit/plugins/fixtures/recorded/HOST): one JSON file per command and manifest.json.
tests/unit/plugins/fixtures/recorded/test_replay.py replays the controller's parsers over every such folder.

--mask replaces the host's names (inventory name, ansible_host, computer name, hostname) and the certificates'
thumbprints in every text; the certificates themselves stay as recorded (DER cannot be edited without breaking its
signature). Nothing is written to the host: no URL cache purge, no proxy change. docs/dev/real-windows.md says what
to record first and how to turn an answer into a twin change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "unit" / "plugins" / "fixtures" / "recorded"
ACTION_DIR = Path(__file__).resolve().parent / "record_host_action"
PLAY = """---
- name: Record host scripts
  hosts: "{{ crlfix_record_host }}"
  gather_facts: false
  tasks:
    - name: Record every host script and the reads the twin models
      crlfix_record_host: {options}
"""


def _ansible_bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(REPO_ROOT / "ansible.cfg"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(REPO_ROOT / ".collections"))
    env["ANSIBLE_ACTION_PLUGINS"] = os.pathsep.join(filter(None, [str(ACTION_DIR), env.get("ANSIBLE_ACTION_PLUGINS")]))
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    return env


def matching_hosts(inventory: str, host: str) -> list[str]:
    """The inventory hosts ``host`` names (a name or a pattern), as ansible sees them."""
    result = subprocess.run([_ansible_bin("ansible"), "-i", inventory, host, "--list-hosts"], env=_env(),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"record_host: ansible could not list {host!r} in {inventory}: {result.stderr.strip()}")
    lines = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="record_host.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("-i", "--inventory", required=True, help="the inventory the collection uses for the host")
    parser.add_argument("host", help="exactly one host of the inventory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent directory of the recorded folder")
    parser.add_argument("--name", help="the folder's name (default: HOST, or masked-host with --mask)")
    parser.add_argument("--mask", action="store_true", help="mask host names and thumbprints in every text")
    parser.add_argument("--source", help="what the host is, for the manifest (e.g. 'Windows Server 2019, lab VM')")
    parser.add_argument("--peer", action="append", default=[], help="a TLS peer HOST:PORT to probe (repeatable)")
    parser.add_argument("--stores", nargs="+", default=["My"])
    parser.add_argument("--chain-stores", nargs="+", default=["CA", "Root"])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--crl-timeout-ms", type=int, default=15000)
    parser.add_argument("--probe-timeout-ms", type=int, default=20000)
    parser.add_argument("--time-box-ms", type=int, default=None, help="host_audit's time box (default: none)")
    parser.add_argument("--apply-conflict", action="store_true",
                        help="also record winhttp_apply refusing an operation (compare-and-swap conflict)")
    parser.add_argument("--twin", action="store_true", help="the host is a twin of tests/twin (manifest host_kind)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hosts = matching_hosts(args.inventory, args.host)
    if len(hosts) != 1:
        print(f"record_host: {args.host!r} must name exactly one host of {args.inventory}, it names {hosts}",
              file=sys.stderr)
        return 2
    name = args.name or ("masked-host" if args.mask else hosts[0])
    options = {
        "out_dir": str(args.out.resolve()), "name": name, "mask": args.mask, "source": args.source,
        "host_kind": "twin" if args.twin else "windows", "stores": args.stores, "chain_stores": args.chain_stores,
        "peers": args.peer, "samples": args.samples, "crl_timeout_ms": args.crl_timeout_ms,
        "probe_timeout_ms": args.probe_timeout_ms, "time_box_ms": args.time_box_ms,
        "apply_conflict": args.apply_conflict,
    }
    with tempfile.TemporaryDirectory(prefix="crlfix-record-") as work:
        playbook = Path(work) / "record.yml"
        # The options inline as a JSON (flow YAML) mapping: task arguments, not a template.
        playbook.write_text(PLAY.replace("{options}", json.dumps(options)))
        extra = Path(work) / "vars.json"
        extra.write_text(json.dumps({"crlfix_record_host": hosts[0]}))
        result = subprocess.run([_ansible_bin("ansible-playbook"), "-i", args.inventory, str(playbook),
                                 "-e", f"@{extra}"], env=_env(), check=False)
    if result.returncode != 0:
        return result.returncode
    print(f"record_host: recorded {hosts[0]} into {args.out.resolve() / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
