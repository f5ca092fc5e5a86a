"""Build and run a fleet of twins: seeded host states, certificates, inventory, the lab server process.

Used by ``scripts/lab.py`` (``make lab-up``/``lab-down``/``lab-metrics``) and by the pytest ``lab`` fixture.
Layout of a lab directory (default ``build/lab``)::

    fleet.json          hosts, addresses, ports, state/cert paths (input of the lab server)
    lab.json            pid + control port of the running lab server (written by it when ready)
    lab.pid             pid of the server this launcher started
    inventory.yml       Ansible inventory of the fleet
    ntlm-users          NTLM_USER_FILE for pyspnego (DOMAIN:user:password)
    hosts/<name>.json   per-host state (tests/twin/README.md, "Host state")
    winrm-ca/ca.pem     "WinRM listener CA"; winrm-ca/hosts/<name>.pem|key the HTTPS listener certs
    metrics.json        per-host counters (on demand and at shutdown)
    lab-server.log      server log
    pki/, crl-server/, squid/   the revocation world (tests/lab/README.md): lab PKI and published CRLs,
                        the CRL server's PID file and access log, squid's config, PID file and access log
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.twin import certs, winhttp_value
from tests.twin.state import new_state, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LAB_DIR = REPO_ROOT / "build" / "lab"
DEFAULT_SEED = 20261126
LAB_USER = "ansible"
LAB_DOMAIN = "LAB"
# Both sites use the lab's one squid (127.0.0.1:<squid port>, 3128 for `make lab-up`): a site's fix_crl_proxy
# must be a proxy that works. The pytest lab runs squid on a free port and updates this dict in place.
SITE_PROXIES = {"site_east": "127.0.0.1:3128", "site_west": "127.0.0.1:3128"}
CORRECT_PROXY = "127.0.0.1:3128"  # `make lab-up`'s squid; seeded hosts get their site's proxy
SQUID_ADDRESS = "127.0.0.1"
SQUID_PORT = 3128
TLS_PORT = 5061  # the SIP-style MTLS port every twin listens on (Lync front ends: 5061)
# ChainEngine\Config retrieval timeouts the lab's hosts get (Windows defaults: 15000 / 20000 ms).
LAB_URL_TIMEOUT_MS = 3000
LAB_CHAIN_TIMEOUT_MS = 4000
CRL_NEXT_UPDATE = dt.timedelta(minutes=10)
WRONG_PROXY = "10.255.0.1:8080"
SCENARIOS = ("correct", "direct", "wrong_proxy", "views_disagree", "missing", "bypass")
OS_BUILDS = (14393, 17763, 20348)
ROLES = (
    ("lync", "lync-fe", "lync_servers"),
    ("exch", "exch-mbx", "exchange_servers"),
    ("adfs", "adfs", "adfs_servers"),
)
SERVER_MODULE = "tests.twin.lab_server"


@dataclass
class HostPlan:
    name: str
    address: str
    group: str
    site: str
    scenario: str
    os_build: int


def address_for(index: int, subnet: int) -> str:
    """127.0.<subnet>.1 … .254, then spill into the next /24."""
    third = subnet + index // 254
    if third > 255:
        raise ValueError(f"hosts: index {index} with subnet {subnet} runs past 127.0.255.254")
    return f"127.0.{third}.{index % 254 + 1}"


def plan_hosts(count: int, seed: int, subnet: int) -> list[HostPlan]:
    if count < 1:
        raise ValueError(f"hosts: need at least 1, got {count}")
    rng = random.Random(seed)
    scenarios = list(SCENARIOS)
    rng.shuffle(scenarios)  # the first six hosts cover every starting state, in a seeded order
    builds = list(OS_BUILDS)
    rng.shuffle(builds)
    plans = []
    for i in range(count):
        prefix, group = ROLES[i % 3][1:]
        number = i // 3 + 1
        name = f"{prefix}{number:02d}.lab.test"
        site = "site_east" if (i // 3) % 2 == 0 else "site_west"
        scenario = scenarios[i] if i < len(scenarios) else rng.choice(SCENARIOS)
        build = builds[i] if i < len(builds) else rng.choice(OS_BUILDS)
        plans.append(HostPlan(name, address_for(i, subnet), group, site, scenario, build))
    return plans


def _values_for(scenario: str, rng: random.Random, proxy: str) -> tuple[bytes | None, bytes | None]:
    counter = rng.randrange(0, 40)
    correct = winhttp_value.encode(counter, proxy, "")
    direct = winhttp_value.encode(counter, "", "")
    if scenario == "correct":
        return correct, correct
    if scenario == "direct":
        return direct, direct
    if scenario == "wrong_proxy":
        wrong = winhttp_value.encode(counter, WRONG_PROXY, "<local>")
        return wrong, wrong
    if scenario == "views_disagree":
        return correct, winhttp_value.DIRECT_ACCESS_DOCUMENTED  # only the 64-bit netsh was run
    if scenario == "missing":
        return None, None
    bypass = winhttp_value.encode(counter, proxy, "<local>;*.lab.test")
    return bypass, bypass


def _store_certificates(lab_dir: Path, fqdns: list[str]) -> tuple[dict[str, Any], str]:
    try:
        from tests.lab.pki import issue_host_certificates  # built by the revocation-PKI issue
    except ImportError:
        return certs.fallback_store_certificates(fqdns), "tests/twin/certs.py fallback"
    return issue_host_certificates(lab_dir, fqdns), "tests/lab/pki.py"


def build_lab(
    lab_dir: Path,
    count: int,
    *,
    seed: int = DEFAULT_SEED,
    subnet: int = 1,
    http_port: int = 5985,
    https_port: int = 5986,
    squid_port: int = SQUID_PORT,
    crl_addresses: dict[str, str] | None = None,
    url_timeout_ms: int = LAB_URL_TIMEOUT_MS,
    chain_timeout_ms: int = LAB_CHAIN_TIMEOUT_MS,
    tls_port: int = TLS_PORT,
) -> dict[str, Any]:
    """Write every file the lab server and Ansible need; returns the fleet document.

    ``squid_port``/``crl_addresses`` place the revocation world (``start_world``); every site's
    ``fix_crl_proxy`` is ``127.0.0.1:<squid_port>``. ``url_timeout_ms``/``chain_timeout_ms`` become each host's
    ChainEngine\\Config retrieval timeouts.
    """
    from tests.lab.crl_server import DEFAULT_ADDRESSES

    lab_dir = lab_dir.resolve()
    proxy = f"{SQUID_ADDRESS}:{squid_port}"
    site_proxies = {site: proxy for site in SITE_PROXIES}
    for stale in ("hosts", "winrm-ca"):
        shutil.rmtree(lab_dir / stale, ignore_errors=True)
    for stale in ("lab.json", "metrics.json"):
        (lab_dir / stale).unlink(missing_ok=True)
    (lab_dir / "hosts").mkdir(parents=True, exist_ok=True)
    plans = plan_hosts(count, seed, subnet)
    rng = random.Random(seed + 1)
    password = "Lab-" + secrets.token_urlsafe(12)
    user_file = lab_dir / "ntlm-users"
    user_file.write_text(f"{LAB_DOMAIN}:{LAB_USER}:{password}\n:{LAB_USER}:{password}\n")
    user_file.chmod(0o600)
    listener = certs.winrm_listener_certs(lab_dir / "winrm-ca", [(p.name, p.address) for p in plans])
    stores, store_source = _store_certificates(lab_dir, [p.name for p in plans])
    hosts = []
    for plan in plans:
        native, wow = _values_for(plan.scenario, rng, site_proxies[plan.site])
        ie = {"proxy": site_proxies[plan.site], "bypass": "<local>"} if rng.random() < 0.5 else None
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
        state["url_cache"] = [{"url": "http://pki.lab.test/crl/lab-issuing.crl", "kind": "crl"}]
        state["lab"] = {"scenario": plan.scenario, "site": plan.site, "group": plan.group}
        # HKLM\SOFTWARE\Policies\Microsoft\SystemCertificates\ChainEngine\Config (tests/twin/revocation.py)
        state["chain_engine"] = {
            "ChainUrlRetrievalTimeoutMilliseconds": url_timeout_ms,
            "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": chain_timeout_ms,
        }
        state_path = lab_dir / "hosts" / f"{plan.name}.json"
        write_json_atomic(state_path, state)
        cert_path, key_path = listener[plan.name]
        hosts.append(
            {
                "name": plan.name,
                "address": plan.address,
                "http_port": http_port,
                "https_port": https_port,
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
        "subnet": subnet,
        "ntlm_user_file": str(user_file),
        "user": LAB_USER,
        "password": password,
        "winrm_ca": str(lab_dir / "winrm-ca" / "ca.pem"),
        "store_certificates": store_source,
        "site_proxies": site_proxies,
        "revocation": {
            "lab_dir": str(lab_dir),
            "names": dict(crl_addresses or DEFAULT_ADDRESSES),
            "intranet": _intranet([p.address for p in plans]),
            "tls_port": tls_port,
            "squid": {"address": SQUID_ADDRESS, "port": squid_port},
        },
        "hosts": hosts,
    }
    write_json_atomic(lab_dir / "fleet.json", fleet)
    (lab_dir / "inventory.yml").write_text(inventory_yaml(fleet))
    return fleet


def inventory_yaml(fleet: dict[str, Any]) -> str:
    groups: dict[str, dict[str, Any]] = {role[2]: {"hosts": {}} for role in ROLES}
    proxies = fleet.get("site_proxies", SITE_PROXIES)
    sites: dict[str, dict[str, Any]] = {s: {"hosts": {}, "vars": {"fix_crl_proxy": p}} for s, p in proxies.items()}
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
        "fix_crl_tls_port": fleet.get("revocation", {}).get("tls_port", TLS_PORT),
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


def crl_addresses_for(net: int) -> dict[str, str]:
    """The CRL server's names on 127.9.<net>.80-82 (outside the intranet, like 127.0.9.x: "the internet")."""
    from tests.lab.pki import AIA_HOST, CRL_HOST, OCSP_HOST

    if not 1 <= net <= 254:
        raise ValueError(f"crl_net: expected 1-254, got {net!r}")
    return {CRL_HOST: f"127.9.{net}.80", AIA_HOST: f"127.9.{net}.81", OCSP_HOST: f"127.9.{net}.82"}


def free_crl_net(seed: int | None = None) -> int:
    """An N whose 127.9.<N>.80-82 port 80 is free on all three, so a second lab's CRL server never collides."""
    rng = random.Random(os.getpid() if seed is None else seed)
    for _attempt in range(60):
        net = rng.randrange(1, 255)
        try:
            for address in crl_addresses_for(net).values():
                with socket.socket() as probe:
                    probe.bind((address, 80))
        except OSError:
            continue
        return net
    raise LabError("no free 127.9.<n>.80-82:80 triple for the lab's CRL server")


def free_port(address: str = SQUID_ADDRESS) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _intranet(addresses: list[str]) -> list[str]:
    """What the modelled servers reach directly: 127.0.0.0/24 (the proxy) and every /24 the twins live in."""
    nets = {"127.0.0.0/24"}
    nets.update(str(ipaddress.ip_network(f"{a}/24", strict=False)) for a in addresses)
    return sorted(nets)


# -- the revocation world: CRLs, CRL server, squid -------------------------------------------------
def start_world(lab_dir: Path, *, next_update: dt.timedelta = CRL_NEXT_UPDATE) -> dict[str, Any]:
    """Publish CRLs (NextUpdate ``next_update`` from now), start the CRL server and squid by PID.

    Returns ``{"crl_server_pid", "squid_pid", "proxy"}``. squid missing is an error (no proxy-less fallback).
    """
    from tests.lab import crl_server, pki
    from tests.lab.squid import Squid

    lab_dir = lab_dir.resolve()
    world = json.loads((lab_dir / "fleet.json").read_text())["revocation"]
    pki.publish(lab_dir, next_update=next_update)
    crl_server.clear_faults(lab_dir)
    addresses = world["names"]
    for address in addresses.values():
        if _answers(address, crl_server.DEFAULT_PORT):
            raise LabError(f"{address}:{crl_server.DEFAULT_PORT} is already served by another process")
    crl_pid = crl_server.start_background(lab_dir, addresses, crl_server.DEFAULT_PORT)
    squid = Squid(lab_dir, port=world["squid"]["port"], address=world["squid"]["address"], hosts=addresses)
    try:
        squid_pid = squid.start()
    except Exception as exc:
        crl_server.stop_background(lab_dir)
        raise LabError(f"squid: {exc}") from exc
    return {"crl_server_pid": crl_pid, "squid_pid": squid_pid, "proxy": squid.proxy}


def stop_world(lab_dir: Path) -> list[str]:
    """Stop squid and the CRL server this lab dir started (by their PID files); returns what was stopped."""
    from tests.lab import crl_server
    from tests.lab.squid import Squid

    lab_dir = lab_dir.resolve()
    stopped = []
    try:
        world = json.loads((lab_dir / "fleet.json").read_text()).get("revocation") or {}
    except (FileNotFoundError, ValueError):
        world = {}
    squid_cfg = world.get("squid", {"address": SQUID_ADDRESS, "port": SQUID_PORT})
    if Squid(lab_dir, port=squid_cfg["port"], address=squid_cfg["address"]).stop():
        stopped.append("squid")
    if crl_server.stop_background(lab_dir):
        stopped.append("crl-server")
    return stopped


# -- the server process ----------------------------------------------------------------------------
class LabError(RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # Only ever touch a process that is our lab server (a recycled pid must not be killed).
    return SERVER_MODULE.encode() in cmdline


def running_pid(lab_dir: Path) -> int | None:
    pid_file = lab_dir / "lab.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        return None
    return pid if _pid_alive(pid) else None


def start_server(lab_dir: Path, timeout: float = 120.0) -> tuple[int, float]:
    """Start the lab server for an already built lab dir; returns (pid, seconds until every listener answered)."""
    lab_dir = lab_dir.resolve()
    if running_pid(lab_dir) is not None:
        raise LabError(
            f"a lab server is already running for {lab_dir} (pid {running_pid(lab_dir)}); "
            "run `scripts/lab.py down` first"
        )
    started = time.monotonic()
    log = open(lab_dir / "lab-server.log", "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, "--lab-dir", str(lab_dir)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    log.close()
    (lab_dir / "lab.pid").write_text(f"{proc.pid}\n")
    fleet = json.loads((lab_dir / "fleet.json").read_text())
    deadline = started + timeout
    while not (lab_dir / "lab.json").exists() or json.loads((lab_dir / "lab.json").read_text())["pid"] != proc.pid:
        if proc.poll() is not None:
            raise LabError(f"lab server exited with {proc.returncode}; see {lab_dir / 'lab-server.log'}")
        if time.monotonic() > deadline:
            stop_server(lab_dir)
            raise LabError(f"lab server not ready after {timeout:.0f}s; see {lab_dir / 'lab-server.log'}")
        time.sleep(0.1)
    pending = [(h["address"], p) for h in fleet["hosts"] for p in (h["http_port"], h["https_port"])]
    while pending:
        pending = [target for target in pending if not _answers(*target)]
        if pending and time.monotonic() > deadline:
            stop_server(lab_dir)
            raise LabError(f"{len(pending)} listeners never answered, e.g. {pending[0]}")
    return proc.pid, time.monotonic() - started


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def stop_server(lab_dir: Path, timeout: float = 15.0) -> bool:
    """Stop exactly the pid in lab.pid (graceful /shutdown, then SIGTERM, then SIGKILL). True if one was running."""
    lab_dir = lab_dir.resolve()
    pid = running_pid(lab_dir)
    if pid is None:
        (lab_dir / "lab.pid").unlink(missing_ok=True)
        return False
    try:
        control(lab_dir, "POST", "/shutdown", timeout=5)
    except (OSError, LabError, http.client.HTTPException):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    (lab_dir / "lab.pid").unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # When this process started the server, collect its exit status so no zombie remains.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def control(
    lab_dir: Path, method: str, path: str, timeout: float = 30.0, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One request on the control channel recorded in lab.json (``body``: a JSON document to POST)."""
    lab_json = lab_dir / "lab.json"
    if not lab_json.exists():
        raise LabError(f"no running lab in {lab_dir} (missing lab.json)")
    port = json.loads(lab_json.read_text())["control_port"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else b""
        conn.request(method, path, body=payload if method == "POST" else None)
        response = conn.getresponse()
        doc = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    if response.status != 200:
        raise LabError(f"control {method} {path}: {response.status} {doc}")
    return doc


def free_subnet(first: int, last: int, port: int = 5985) -> int:
    """A third octet in [first, last] whose 127.0.<k>.1:<port> is free, so concurrent test sessions do not collide."""
    for subnet in range(first, last + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((f"127.0.{subnet}.1", port))
            except OSError:
                continue
            return subnet
    raise LabError(f"no free loopback subnet between 127.0.{first}.x and 127.0.{last}.x on port {port}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
