"""Twins with their 5061 listeners on loopback, for the twin's TLS tests: the lab PKI's certificates in their stores,
each twin in an event loop of its own thread (as the lab server runs them), and a revocation world in which the CRL
server cannot be reached, so every revocation check fails fast, offline."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.lab import pki
from tests.lab.fleet import listener_certs
from tests.lab.winhttp import OutboundPolicy
from tests.twin import revocation
from tests.twin.host import HostSpec, Twin
from tests.twin.state import HostState, new_state, write_json_atomic


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def twin_of(lab_dir: Path, name: str, data: dict[str, Any], listener: dict[str, tuple[Path, Path]]) -> Twin:
    """A twin of the host state ``data``, written to ``lab_dir/hosts``, with its WinRM and 5061 listeners."""
    path = lab_dir / "hosts" / f"{name}.json"
    write_json_atomic(path, data)
    cert, key = listener[name]
    tls_cert = lab_dir / "pki" / "hosts" / f"{name}.crt"
    spec = HostSpec(name, "127.0.0.1", free_port(), free_port(), path, cert, key, free_port(), tls_cert,
                    tls_cert.with_suffix(".key"))
    return Twin(spec, HostState.load(path))


@contextlib.contextmanager
def running_twins(lab_dir: Path, names: list[str],
                  seed: Callable[[dict[str, Any]], None] | None = None) -> Iterator[dict[str, Any]]:
    """``{"twins": {name: Twin}, "stores": {name: cert_inventory stores}}`` of 2019 hosts (``seed`` may change each
    host's state first); stopped and the previous revocation world put back on exit."""
    stores = pki.issue_host_certificates(lab_dir, names)
    listener = listener_certs.winrm_listener_certs(lab_dir / "winrm-ca", [(n, "127.0.0.1") for n in names])
    (lab_dir / "hosts").mkdir()
    twins = {}
    for name in names:
        data = new_state(name, os_build=17763, user="ansible", password="p", cert_stores=stores[name])
        if seed is not None:
            seed(data)
        twins[name] = twin_of(lab_dir, name, data, listener)
    previous = revocation.world()
    revocation.configure(revocation.World(lab_dir, {}, OutboundPolicy(), None))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for twin in twins.values():
        asyncio.run_coroutine_threadsafe(twin.start(), loop).result(30)
    try:
        yield {"twins": twins, "stores": stores}
    finally:
        for twin in twins.values():
            asyncio.run_coroutine_threadsafe(twin.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        revocation.configure(previous)
