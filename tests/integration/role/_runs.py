"""Helpers for the fix_crl role tests: run the real playbook against the lab, read back what it did.

Everything here reads the twins' state files and the report file independently of the collection's own
parsers: WinHTTP values are decoded with the twin's decoder (tests/twin/winhttp_value.py).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.lab.fleet import scenarios
from tests.twin import winhttp_value

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO_ROOT / "playbooks" / "fix-crl.yml"
# Verification needs the lab's revocation world (CRL server, squid, Schannel model). These variables switch
# it off for the tests of the remediation itself: no certificate store means no endpoints, no peers means no
# TLS probes, so verification passes trivially and the tests see apply, idempotence and reporting alone.
NO_VERIFICATION = {"fix_crl_cert_stores": ["CrlfixTestNoSuchStore"], "fix_crl_peers": []}
# Verification in the lab's revocation world, kept to seconds: short timeouts, one sample, the whole fleet as one
# batch that never stops the rollout.
FAST = {"fix_crl_crl_timeout_ms": 3000, "fix_crl_probe_timeout_ms": 8000, "fix_crl_probe_samples": 1,
        "fix_crl_max_handshake_ms": 1000, "fix_crl_serial": "100%", "fix_crl_max_fail_percentage": 100}
_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                    r"\s+failed=(?P<failed>\d+)", re.MULTILINE)


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """The recap's Windows hosts. localhost shows only when the playbook's inventory check ran (no -l), and it
        changes nothing: an assert that it never does keeps a controller-side change from hiding here."""
        rows = {m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
                for m in _RECAP.finditer(self.stdout)}
        controller = rows.pop("localhost", None)
        assert controller is None or controller["changed"] == controller["failed"] == 0, controller
        return rows

    def host(self, name: str) -> dict[str, Any]:
        return next(h for h in self.report["hosts"] if h["host"] == name)

    def status(self) -> dict[str, str]:
        return {h["host"]: h["status"] for h in self.report["hosts"]}


def run_fix_crl(lab, report_dir: Path, *args: str, extra_vars: dict[str, Any] | None = None,
                inventories: list[Path] = ()) -> PlaybookRun:
    """Run playbooks/fix-crl.yml (real ansible-playbook) and load the one report it wrote into ``report_dir``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    before = set(report_dir.glob("*.json"))
    variables = {"fix_crl_report_dir": str(report_dir), **(extra_vars or {})}
    cli: list[str] = []
    for inventory in inventories:
        cli += ["-i", str(inventory)]
    result = lab.run_playbook(PLAYBOOK, *cli, "-e", json.dumps(variables), *args, check=False)
    written = sorted(set(report_dir.glob("*.json")) - before)
    assert len(written) == 1, f"expected one new report, got {written}\n{result.stdout}\n{result.stderr}"
    return PlaybookRun(result.returncode, result.stdout, result.stderr, json.loads(written[0].read_text()))


def site_proxies(lab) -> dict[str, str]:
    """The ``fix_crl_proxy`` of each site group, as the lab wrote it into its inventory."""
    groups = yaml.safe_load(lab.inventory_path.read_text())["all"]["children"]
    return {name: group["vars"]["fix_crl_proxy"] for name, group in groups.items()
            if "fix_crl_proxy" in (group.get("vars") or {})}


def seed_scenario(lab, scenario: str, group: str = "lync_servers") -> tuple[str, str]:
    """(host, its site's proxy): the first host of ``group`` put in the extra scenario ``scenario``
    (tests/lab/fleet/scenarios.py)."""
    name = sorted(n for n, h in lab.hosts.items() if h.group == group)[0]
    proxy = site_proxies(lab)[lab.hosts[name].site]
    lab.write_state(name, scenarios.apply_scenario(lab.state(name), scenario, proxy))
    return name, proxy


def views(lab, name: str) -> dict[str, bytes | None]:
    registry = lab.state(name)["registry"]
    return {view: None if registry[view]["WinHttpSettings"] is None
            else base64.b64decode(registry[view]["WinHttpSettings"]) for view in ("native", "wow6432")}


def decoded(value: bytes | None) -> tuple[str, str]:
    """(proxy, bypass) of a value; a missing value is direct access."""
    if value is None:
        return ("", "")
    settings = winhttp_value.decode(value)
    return ("", "") if settings.is_direct else (settings.proxy, settings.bypass)


def comparable_state(state: dict[str, Any]) -> dict[str, Any]:
    """A host's state minus what reading it legitimately changes: the command counter and the URL caches
    (a TLS probe with revocation checking fills CryptoAPI's cache on real Windows too, and so does each identity's
    chain build its own), the running service's memory (tests/twin/service_process.py), and the count of
    one-shot scheduled tasks created and removed inside the audit (the tasks left behind, ``scheduled_tasks``,
    are still compared)."""
    state = json.loads(json.dumps(state))
    state.get("counters", {}).pop("commands", None)
    state.get("counters", {}).pop("scheduled_tasks", None)
    state.pop("url_cache", None)
    state.pop("service_process", None)  # the running service's memory: a handshake with it fills it on Windows too
    for account in (state.get("accounts") or {}).values():
        account.pop("url_cache", None)
    return state


def configuration(state: dict[str, Any]) -> dict[str, Any]:
    """A host's configuration: its comparable state without its event logs. An audit writes no event, but a mutual
    handshake to a host whose revocation checks fail makes that host's service log its own, on Windows as in the
    twin."""
    state = comparable_state(state)
    state.pop("event_logs", None)
    return state


def reset_fleet(lab) -> None:
    for name in lab.hosts:
        lab.start_twin(name)
        lab.reset_state(name)
