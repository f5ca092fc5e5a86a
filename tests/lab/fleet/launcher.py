"""A lab up or down in one step, as ``scripts/lab.py`` and the pytest ``lab`` fixture use it.

``up`` is all or nothing: it first checks that every address the lab needs is free and refuses, naming the
first one taken, before writing anything; then it builds the lab directory and starts the revocation world and
the lab server. When any of that fails it stops what it started and removes what it built (the logs stay),
so no inventory is left that names a lab which is not there. ``up_anywhere`` takes places of one range of
``addresses.RANGES`` in turn until a lab starts (another lab may win the race for a place it was offered).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.lab.fleet import LabError
from tests.lab.fleet.addresses import AddressInUse, Place, check_free, places
from tests.lab.fleet.build import build_lab, remove_built
from tests.lab.fleet.plan import CRL_NEXT_UPDATE, DEFAULT_SEED
from tests.lab.fleet.process import REPO_ROOT, running_pid, start_server, stop_server
from tests.lab.fleet.world import start_world, stop_world

DEFAULT_LAB_DIR = REPO_ROOT / "build" / "lab"
ATTEMPTS = 5


@dataclass
class Started:
    """A running lab: its fleet document, where it lives, its processes and how long it took."""

    fleet: dict[str, Any]
    place: Place
    pid: int
    world: dict[str, Any]
    built_seconds: float
    ready_seconds: float


def place_for(
    lab_dir: Path, *, subnet: int | None = None, squid_port: int | None = None, crl_net: int | None = None
) -> Place | None:
    """The place a lab dir asks for: the documented one for ``build/lab``, else the one the options name.

    ``None`` when nothing pins it (another lab dir, no ``subnet``): take a free one with ``up_anywhere``.
    """
    if lab_dir.resolve() == DEFAULT_LAB_DIR.resolve():
        documented = Place.documented(subnet or 1)
        return Place(documented.subnet, squid_port or documented.squid_port, crl_net)
    if subnet is None:
        return None
    derived = Place.at(subnet)
    return Place(subnet, squid_port or derived.squid_port, crl_net if crl_net is not None else derived.crl_net)


def stop_previous(lab_dir: Path) -> tuple[int | None, list[str]]:
    """Stop whatever this lab dir still runs (no leak on a second ``up``); returns (old server pid, world names)."""
    old = running_pid(lab_dir)
    if old is not None:
        stop_server(lab_dir)
    return old, stop_world(lab_dir)


def up(
    lab_dir: Path,
    hosts: int,
    place: Place,
    *,
    seed: int = DEFAULT_SEED,
    next_update: dt.timedelta = CRL_NEXT_UPDATE,
) -> Started:
    """Start a lab of ``hosts`` twins at ``place`` in ``lab_dir``; raises ``AddressInUse``/``LabError``."""
    lab_dir = lab_dir.resolve()
    check_free(place, hosts)
    began = time.monotonic()
    lab_dir.mkdir(parents=True, exist_ok=True)
    try:
        fleet = build_lab(lab_dir, hosts, place=place, seed=seed)
        built = time.monotonic() - began
        world = start_world(lab_dir, next_update=next_update)
        pid, ready = start_server(lab_dir)
    except BaseException:
        stop_server(lab_dir)
        stop_world(lab_dir)
        remove_built(lab_dir)
        raise
    return Started(fleet, place, pid, world, built, ready)


def up_anywhere(
    lab_dir: Path, hosts: int, kind: str, *, squid_port: int | None = None, crl_net: int | None = None, **options: Any
) -> Started:
    """``up`` at the first place of range ``kind`` where the lab starts (``options``: ``up``'s keywords).

    ``squid_port``/``crl_net`` pin those two parts of the place; the twins' subnet is still chosen.
    """
    pinned = {"squid_port": squid_port, "crl_net": crl_net}
    last: AddressInUse | None = None
    for attempt, offered in enumerate(places(kind, hosts)):
        if attempt == ATTEMPTS:
            break
        place = replace(offered, **{key: value for key, value in pinned.items() if value is not None})
        try:
            return up(lab_dir, hosts, place, **options)
        except AddressInUse as exc:
            last = exc
    raise LabError(f"no place of range {kind!r} let a lab of {hosts} twins start in {lab_dir}; last: {last}")


def down(lab_dir: Path) -> tuple[bool, list[str]]:
    """Stop the lab server, squid and CRL server of ``lab_dir`` by PID; returns (server was running, world)."""
    return stop_server(lab_dir), stop_world(lab_dir)
