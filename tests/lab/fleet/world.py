"""A lab's revocation world as processes: the CRLs published, the CRL server and squid started and stopped by PID.

Where they listen comes from ``fleet.json``'s ``revocation`` section (``build.py``): the CRL server's names and
addresses, squid's address and port. squid missing is an error: there is no proxy-less fallback.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from tests.lab import crl_server, pki
from tests.lab.fleet import LabError
from tests.lab.fleet.addresses import DOCUMENTED_SQUID_PORT, SQUID_ADDRESS, AddressInUse
from tests.lab.fleet.plan import CRL_NEXT_UPDATE
from tests.lab.fleet.process import answers
from tests.lab.squid import Squid, no_dns_squid


def _section(lab_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((lab_dir / "fleet.json").read_text()).get("revocation") or {}
    except (FileNotFoundError, ValueError):
        return {}


def start_world(lab_dir: Path, *, next_update: dt.timedelta = CRL_NEXT_UPDATE) -> dict[str, Any]:
    """Publish CRLs (NextUpdate ``next_update`` from now), start the CRL server and squid by PID.

    Returns ``{"crl_server_pid", "squid_pid", "no_dns_squid_pid", "proxy"}``: the lab's squid and the second one
    whose resolver fails (tests/lab/squid.py).
    """
    lab_dir = lab_dir.resolve()
    world = _section(lab_dir)
    pki.publish(lab_dir, next_update=next_update)
    crl_server.clear_faults(lab_dir)
    addresses = world["names"]
    squid = Squid(lab_dir, port=world["squid"]["port"], address=world["squid"]["address"], hosts=addresses)
    # Checked again here, not only before the build: another lab may have taken one since.
    for address, port in [(a, crl_server.DEFAULT_PORT) for a in addresses.values()] + [(squid.address, squid.port)]:
        if answers(address, port):
            raise AddressInUse(address, port, "it answers connections")
    crl_pid = crl_server.start_background(lab_dir, addresses, crl_server.DEFAULT_PORT)
    no_dns = no_dns_squid(lab_dir, port=squid.port, nameserver=crl_server.resolver_address(addresses))
    try:
        squid_pid = squid.start()
        no_dns_pid = no_dns.start()
    except Exception as exc:
        squid.stop()
        crl_server.stop_background(lab_dir)
        raise LabError(f"squid: {exc}") from exc
    return {"crl_server_pid": crl_pid, "squid_pid": squid_pid, "no_dns_squid_pid": no_dns_pid, "proxy": squid.proxy}


def stop_world(lab_dir: Path) -> list[str]:
    """Stop squid and the CRL server this lab dir started (by their PID files); returns what was stopped."""
    lab_dir = lab_dir.resolve()
    squid_at = _section(lab_dir).get("squid", {"address": SQUID_ADDRESS, "port": DOCUMENTED_SQUID_PORT})
    stopped = []
    if Squid(lab_dir, port=squid_at["port"], address=squid_at["address"]).stop():
        stopped.append("squid")
    if no_dns_squid(lab_dir, port=squid_at["port"]).stop():
        stopped.append("squid (no DNS)")
    if crl_server.stop_background(lab_dir):
        stopped.append("crl-server")
    return stopped
