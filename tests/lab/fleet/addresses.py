"""Where a lab lives on loopback: one table of disjoint ranges, one allocator for every way a lab is started.

A lab takes three kinds of place, all on one machine's loopback:

- its twins: host *i* on ``127.0.<K + i // 254>.<i % 254 + 1>``, each listening on 5985, 5986 and 5061;
- its squid on ``127.0.0.1:<port>``, and on the same port at its filtering addresses ``127.0.0.2``-``.5`` and its
  second squid (the proxy whose resolver fails) at ``127.0.0.6`` (tests/lab/squid.py);
- its CRL server on three addresses, port 80: ``127.9.<N>.80-82`` (outside every twin's /24, so "the internet").

A lab at **place K** has its twins from ``127.0.K.1``, squid on ``127.0.0.1:31000+K`` (below Linux's ephemeral
ports, so no outgoing connection holds it) and its CRL server on ``127.9.K.80-82``. Each kind of lab draws K
from its own range (``RANGES``), so two kinds never pick the same place; two labs of one kind (xdist workers,
two sessions) are kept apart by probing: a place is offered only when every address it needs binds, and a lab
that loses a race for one fails to start naming the address, leaving its caller to take the next place.
The documented lab (``make lab-up``, ``build/lab``) is the exception: ``127.0.1.x``, squid on 3128, the CRL
server on ``127.0.9.80-82`` (docs/lab.md).
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from tests.lab.fleet import LabError
from tests.lab.squid import FILTER_ADDRESSES, NO_DNS_ADDRESS

HOSTS_PER_SUBNET = 254
TWIN_PORTS = (5985, 5986, 5061)  # WinRM HTTP, WinRM HTTPS, the SIP-style TLS port
SQUID_ADDRESS = "127.0.0.1"
SQUID_PORT_BASE = 31000
CRL_PORT = 80
DOCUMENTED_SQUID_PORT = 3128
DOCUMENTED_CRL_ADDRESSES = ("127.0.9.80", "127.0.9.81", "127.0.9.82")
DOCUMENTED_CRL_SUBNET = 9

# K per kind of lab. 127.0.0.x is squid's and 127.0.9.x the documented CRL server's: no twins there.
RANGES: dict[str, range] = {
    "documented": range(1, 9),  # make lab-up / make demo in build/lab (K = 1 unless --subnet)
    "lab": range(10, 100),  # scripts/lab.py --lab-dir OTHER: a second lab beside the first
    "bench": range(100, 150),  # bench/lab_handle.py
    "molecule": range(150, 170),  # molecule/default/lab_helper.py
    "pytest": range(170, 255),  # tests/integration (the `lab` fixture, the lab CLI tests, the world tests)
}


class AddressInUse(LabError):
    """An address the lab needs is held by another process; the message names it."""

    def __init__(self, address: str, port: int, detail: str = "") -> None:
        self.address, self.port = address, port
        super().__init__(
            f"{address}:{port} is already in use by another process (another lab?){': ' + detail if detail else ''}"
        )


@dataclass(frozen=True)
class Place:
    """The addresses of one lab: its first twin subnet, squid's port, the CRL server's net (None: documented)."""

    subnet: int
    squid_port: int
    crl_net: int | None

    @classmethod
    def at(cls, k: int) -> Place:
        """Place K of a range: twins from 127.0.K.1, squid on 31000+K, CRL server on 127.9.K.80-82."""
        return cls(k, SQUID_PORT_BASE + k, k)

    @classmethod
    def documented(cls, subnet: int = 1) -> Place:
        return cls(subnet, DOCUMENTED_SQUID_PORT, None)

    def host_address(self, index: int) -> str:
        third = self.subnet + index // HOSTS_PER_SUBNET
        if third > 255:
            raise ValueError(f"hosts: index {index} with subnet {self.subnet} runs past 127.0.255.254")
        if self.crl_net is None and self.subnet < DOCUMENTED_CRL_SUBNET <= third:
            # The documented lab's CRL server lives in 127.0.9.x: its twins stop below it.
            raise ValueError(f"hosts: the lab at 127.0.{self.subnet}.1 holds at most "
                             f"{(DOCUMENTED_CRL_SUBNET - self.subnet) * HOSTS_PER_SUBNET} twins (127.0.9.x is its CRL "
                             "server); start a bigger lab in another --lab-dir")
        return f"127.0.{third}.{index % HOSTS_PER_SUBNET + 1}"

    @property
    def crl_addresses(self) -> tuple[str, str, str]:
        """The CRL server's three addresses, for ``crl.``, ``aia.`` and ``ocsp.public-ca.test`` in that order."""
        if self.crl_net is None:
            return DOCUMENTED_CRL_ADDRESSES
        if not 1 <= self.crl_net <= 254:
            raise ValueError(f"crl_net: expected 1-254, got {self.crl_net!r}")
        return (f"127.9.{self.crl_net}.80", f"127.9.{self.crl_net}.81", f"127.9.{self.crl_net}.82")

    def listeners(self, hosts: int) -> Iterator[tuple[str, int]]:
        """Every address and port a lab of ``hosts`` twins here listens on."""
        yield SQUID_ADDRESS, self.squid_port
        for address in (*FILTER_ADDRESSES, NO_DNS_ADDRESS):  # squid's filtering listeners, the one without DNS
            yield address, self.squid_port
        for address in self.crl_addresses:
            yield address, CRL_PORT
        for index in range(hosts):
            for port in TWIN_PORTS:
                yield self.host_address(index), port


def max_hosts(kind: str) -> int:
    """The most twins one lab of range ``kind`` can hold: every /24 of the range (the documented lab: below 127.0.9.x).
    No other limit: a lab of 2,000 twins starts in seconds (tests/lab/README.md)."""
    if kind not in RANGES:
        raise ValueError(f"kind: expected one of {sorted(RANGES)}, got {kind!r}")
    stop = DOCUMENTED_CRL_SUBNET if kind == "documented" else RANGES[kind].stop
    return (stop - RANGES[kind].start) * HOSTS_PER_SUBNET


def subnets_for(hosts: int) -> int:
    """How many /24s the twins of a lab of ``hosts`` span."""
    return max(1, -(-hosts // HOSTS_PER_SUBNET))


def check_free(place: Place, hosts: int) -> None:
    """Raise ``AddressInUse`` for the first address:port of ``place`` that another process listens on."""
    for address, port in place.listeners(hosts):
        with socket.socket() as probe:
            # The lab's listeners set SO_REUSEADDR too: a TIME_WAIT left by an earlier lab is no conflict.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
                probe.listen(1)
            except OSError as exc:
                raise AddressInUse(address, port, "nothing was written or started") from exc


def places(kind: str, hosts: int, *, seed: int | None = None) -> Iterator[Place]:
    """The places of range ``kind`` that are free now, in an order of this process's own (seeded by its pid).

    Two processes drawing from one range at once thus start at different places; take the next one when a
    start still fails with ``AddressInUse``.
    """
    if kind not in RANGES:
        raise ValueError(f"kind: expected one of {sorted(RANGES)}, got {kind!r}")
    span = subnets_for(hosts)
    candidates = list(range(RANGES[kind].start, RANGES[kind].stop - span + 1))
    random.Random(os.getpid() if seed is None else seed).shuffle(candidates)
    for k in candidates:
        place = Place.at(k)
        try:
            check_free(place, hosts)
        except AddressInUse:
            continue
        yield place


def unused_port(address: str = SQUID_ADDRESS) -> int:
    """A port nothing listens on now, chosen by the kernel: where a test wants a proxy that is down."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def allocate(kind: str, hosts: int, *, seed: int | None = None) -> Place:
    """A free place of range ``kind`` for ``hosts`` twins (0: only squid and the CRL server)."""
    for place in places(kind, hosts, seed=seed):
        return place
    last = RANGES[kind].stop - 1
    raise LabError(f"no free place for {hosts} twins between 127.0.{RANGES[kind].start}.x and 127.0.{last}.x")
