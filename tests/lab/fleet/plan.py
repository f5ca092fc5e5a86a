"""The seeded fleet of a lab: which hosts, in which group and site, starting in which state, on which OS build.

Host *i* is the *(i // 3 + 1)*-th of its role (``lync-feNN``, ``exch-mbxNN``, ``adfsNN``, in turn); sites
alternate every three hosts. The first six hosts get one each of the starting states, in a seeded order, and
the first three one each of the OS builds; later hosts draw both from the seed. A new host class (a role) is a
row of ``ROLES``; a new starting state a name in ``SCENARIOS`` and its registry values in ``seeded_values``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from tests.lab.fleet.addresses import Place
from tests.twin import winhttp_value

DEFAULT_SEED = 20261126
LAB_USER = "ansible"
LAB_DOMAIN = "LAB"
# Both sites use the lab's one squid: each site's fix_crl_proxy must be a proxy that works, and a second squid
# port would be lost whenever a test restarts squid by PID with its single-port config.
SITES = ("site_east", "site_west")
TLS_PORT = 5061  # the SIP-style MTLS port every twin listens on (Lync front ends: 5061)
# ChainEngine\Config retrieval timeouts the lab's hosts get (Windows defaults: 15000 / 20000 ms), so a host
# without a working proxy costs seconds per handshake, not 20 s.
LAB_URL_TIMEOUT_MS = 3000
LAB_CHAIN_TIMEOUT_MS = 4000
CRL_NEXT_UPDATE = dt.timedelta(minutes=10)
# The CRLs of pytest's session lab (tests/integration/conftest.py): valid for the whole run, and what a test that
# publishes other CRLs puts back; a shorter validity would expire under the tests that run after it.
SESSION_CRL_VALIDITY = dt.timedelta(hours=4)
WRONG_PROXY = "10.255.0.1:8080"
SCENARIOS = ("correct", "direct", "wrong_proxy", "views_disagree", "missing", "bypass")
# The starting states whose CryptoAPI cannot reach the public CA's CRL: their Lync hosts start with logged symptoms.
SYMPTOM_SCENARIOS = ("direct", "wrong_proxy", "missing")
OS_BUILDS = (14393, 17763, 20348)
ROLES = (
    ("lync", "lync-fe", "lync_servers"),
    ("exch", "exch-mbx", "exchange_servers"),
    ("adfs", "adfs", "adfs_servers"),
)


@dataclass
class HostPlan:
    name: str
    address: str
    group: str
    site: str
    scenario: str
    os_build: int


def plan_hosts(count: int, seed: int, place: Place) -> list[HostPlan]:
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
        site = SITES[(i // 3) % 2]
        scenario = scenarios[i] if i < len(scenarios) else rng.choice(SCENARIOS)
        build = builds[i] if i < len(builds) else rng.choice(OS_BUILDS)
        plans.append(HostPlan(name, place.host_address(i), group, site, scenario, build))
    return plans


def seeded_values(scenario: str, rng: random.Random, proxy: str) -> tuple[bytes | None, bytes | None]:
    """The ``WinHttpSettings`` values (native, WOW6432Node) a host starting in ``scenario`` has."""
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
