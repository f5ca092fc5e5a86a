"""Write a lab directory: every file the lab server and Ansible need, for a seeded fleet at one place.

Layout of a lab directory (default ``build/lab``)::

    fleet.json          hosts, addresses, ports, state/cert paths, the revocation world (input of the lab server)
    inventory.yml       Ansible inventory of the fleet
    ntlm-users          NTLM_USER_FILE for pyspnego (DOMAIN:user:password)
    hosts/<name>.json   per-host state (tests/twin/README.md, "Host state")
    winrm-ca/ca.pem     "WinRM listener CA"; winrm-ca/hosts/<name>.pem|key the HTTPS listener certs
    pki/                the lab PKI (tests/lab/pki.py): CAs, each twin's TLS leaf, published CRLs

and, once the lab runs: ``lab.json``/``lab.pid`` (the server), ``metrics.json``, ``lab-server.log``,
``crl-server/`` and ``squid/`` (PID files, configs, access logs).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import secrets
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.lab import pki
from tests.lab.fleet import listener_certs, scenarios
from tests.lab.fleet.addresses import SQUID_ADDRESS, Place
from tests.lab.fleet.plan import (
    DEFAULT_SEED,
    LAB_CHAIN_TIMEOUT_MS,
    LAB_DOMAIN,
    LAB_URL_TIMEOUT_MS,
    LAB_USER,
    ROLES,
    SITES,
    SYMPTOM_SCENARIOS,
    TLS_PORT,
    plan_hosts,
    seeded_values,
)
from tests.twin import event_logs
from tests.twin.state import new_state, write_json_atomic

# What `build` writes; a start that fails removes them again, so no inventory names a lab that is not there.
BUILT = ("fleet.json", "inventory.yml", "ntlm-users", "hosts", "winrm-ca", "pki", "lab.json", "lab.pid", "metrics.json")


def build_lab(
    lab_dir: Path,
    count: int,
    *,
    place: Place,
    seed: int = DEFAULT_SEED,
    url_timeout_ms: int = LAB_URL_TIMEOUT_MS,
    chain_timeout_ms: int = LAB_CHAIN_TIMEOUT_MS,
) -> dict[str, Any]:
    """Write every file of a lab of ``count`` twins at ``place``; returns the fleet document.

    Every site's ``fix_crl_proxy`` is the lab's squid, ``127.0.0.1:<place.squid_port>``.
    ``url_timeout_ms``/``chain_timeout_ms`` become each host's ChainEngine\\Config retrieval timeouts.
    """
    lab_dir = lab_dir.resolve()
    proxy = f"{SQUID_ADDRESS}:{place.squid_port}"
    site_proxies = dict.fromkeys(SITES, proxy)
    for stale in ("hosts", "winrm-ca"):
        shutil.rmtree(lab_dir / stale, ignore_errors=True)
    for stale in ("lab.json", "metrics.json"):
        (lab_dir / stale).unlink(missing_ok=True)
    (lab_dir / "hosts").mkdir(parents=True, exist_ok=True)
    plans = plan_hosts(count, seed, place)
    rng = random.Random(seed + 1)
    symptom_rng = random.Random(seed + 2)  # its own stream: the other seeded choices stay as they were
    password = "Lab-" + secrets.token_urlsafe(12)
    user_file = lab_dir / "ntlm-users"
    user_file.write_text(f"{LAB_DOMAIN}:{LAB_USER}:{password}\n:{LAB_USER}:{password}\n")
    user_file.chmod(0o600)
    listener = listener_certs.winrm_listener_certs(lab_dir / "winrm-ca", [(p.name, p.address) for p in plans])
    stores = pki.issue_host_certificates(lab_dir, [p.name for p in plans])
    hosts = []
    for plan in plans:
        native, wow = seeded_values(plan.scenario, rng, site_proxies[plan.site])
        # The connecting admin has no IE proxy: CryptoAPI as the admin would use one (KB 2623724) and hide the
        # seeded scenario; admin_ie_only gives it one (tests/lab/fleet/scenarios.py). The draw keeps the seed's
        # sequence as it was.
        rng.random()
        ie = None
        state = new_state(
            plan.name,
            os_build=plan.os_build,
            user=LAB_USER,
            password=password,
            native=native,
            wow6432=wow,
            ie_proxy=ie,
            cert_stores=stores[plan.name],
        )
        scenarios.seed_services(state, plan.group)
        state["url_cache"] = [{"url": "http://pki.lab.test/crl/lab-issuing.crl", "kind": "crl"}]
        state["lab"] = {"scenario": plan.scenario, "site": plan.site, "group": plan.group}
        # HKLM\SOFTWARE\Policies\Microsoft\SystemCertificates\ChainEngine\Config (tests/twin/revocation.py)
        state["chain_engine"] = {
            "ChainUrlRetrievalTimeoutMilliseconds": url_timeout_ms,
            "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": chain_timeout_ms,
        }
        if plan.group == "lync_servers":
            # Lync's own log exists on a Lync server; one that cannot reach its CRLs has logged 33019 over the last
            # day (the incident: cryptoapi-research.md 4.3, [C] masteringmsuc 2012).
            state["event_logs"][event_logs.LYNC] = []
            if plan.scenario in SYMPTOM_SCENARIOS:
                event_logs.seed_symptoms(state, count=symptom_rng.randrange(20, 60), now=dt.datetime.now(dt.UTC))
        state_path = lab_dir / "hosts" / f"{plan.name}.json"
        write_json_atomic(state_path, state)
        cert_path, key_path = listener[plan.name]
        hosts.append(
            {
                "name": plan.name,
                "address": plan.address,
                "http_port": 5985,
                "https_port": 5986,
                "state": str(state_path),
                "cert": str(cert_path),
                "key": str(key_path),
                "group": plan.group,
                "site": plan.site,
                "scenario": plan.scenario,
                "os_build": plan.os_build,
            }
        )
    fleet = {
        "seed": seed,
        "subnet": place.subnet,
        "ntlm_user_file": str(user_file),
        "user": LAB_USER,
        "password": password,
        "winrm_ca": str(lab_dir / "winrm-ca" / "ca.pem"),
        "site_proxies": site_proxies,
        "revocation": {
            "lab_dir": str(lab_dir),
            # The root certificate list's host shares the CRL host's address (crl_server.py: the Host header decides).
            "names": {**dict(zip(pki.PUBLIC_NAMES, place.crl_addresses, strict=True)),
                      pki.CTL_HOST: place.crl_addresses[0]},
            "intranet": _intranet([p.address for p in plans]),
            "tls_port": TLS_PORT,
            "squid": {"address": SQUID_ADDRESS, "port": place.squid_port},
        },
        "hosts": hosts,
    }
    write_json_atomic(lab_dir / "fleet.json", fleet)
    (lab_dir / "inventory.yml").write_text(inventory_yaml(fleet))
    return fleet


def remove_built(lab_dir: Path) -> None:
    """Undo ``build_lab``; logs (``lab-server.log``, ``squid/``, ``crl-server/``) stay for the error they explain."""
    for name in BUILT:
        path = lab_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _intranet(addresses: list[str]) -> list[str]:
    """What the modelled servers reach directly: 127.0.0.0/24 (the proxy) and every /24 the twins live in."""
    nets = {"127.0.0.0/24"}
    nets.update(str(ipaddress.ip_network(f"{a}/24", strict=False)) for a in addresses)
    return sorted(nets)


def inventory_yaml(fleet: dict[str, Any]) -> str:
    groups: dict[str, dict[str, Any]] = {role[2]: {"hosts": {}, "vars": {"fix_crl_services":
                                                                         scenarios.service_names(role[2])}}
                                         for role in ROLES}
    sites = {s: {"hosts": {}, "vars": {"fix_crl_proxy": p}} for s, p in fleet["site_proxies"].items()}
    for host in fleet["hosts"]:
        groups[host["group"]]["hosts"][host["name"]] = {"ansible_host": host["address"]}
        sites[host["site"]]["hosts"][host["name"]] = None
    windows_vars = {
        "ansible_connection": "winrm",
        "ansible_port": fleet["hosts"][0]["http_port"],
        "ansible_user": fleet["user"],
        "ansible_password": fleet["password"],
        "ansible_winrm_transport": "ntlm",
        "ansible_winrm_scheme": "http",
        "ansible_winrm_server_cert_validation": "ignore",
        "ansible_shell_type": "powershell",
        # HTTPS: ansible_port 5986 + ansible_winrm_scheme https; validate with this CA via ansible_winrm_ca_trust_path.
        "lab_winrm_ca_path": fleet["winrm_ca"],
        "lab_https_port": fleet["hosts"][0]["https_port"],
        # Every twin's SIP-style TLS port (tls_probe peers: <other host>:<port>).
        "fix_crl_tls_port": fleet["revocation"]["tls_port"],
    }
    doc = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                }
            },
            "children": {
                "windows": {"vars": windows_vars, "children": {g: groups[g] for g in groups}},
                **sites,
            },
        }
    }
    header = f"# Generated by scripts/lab.py (seed {fleet['seed']}); do not edit, run `make lab-up` again.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
