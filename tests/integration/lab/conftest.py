"""Fixtures for the revocation-world tests: one lab directory, CRL server and squid per pytest worker.

The CRL server gets a free 127.9.<n>.80-82 triple and squid a free port, so parallel workers, parallel runs
and a lab started by ``make lab-up`` (127.0.9.80-82:80, 127.0.0.1:3128) never collide. 127.9.0.0/16 is
outside the modelled intranet, like the lab's 127.0.9.x: a direct connection there is dropped.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.lab import crl_server, pki
from tests.lab.squid import Squid

HOSTS = ["fe01.contoso.test", "fe02.contoso.test", "edge-delta.contoso.test", "edge-ldaponly.contoso.test"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab_dir() -> Path:
    # Not pytest's tmp_path: its parents are mode 0700 and squid (user proxy) must traverse to its logs.
    path = Path(tempfile.mkdtemp(prefix="crlfix-lab-test-"))
    path.chmod(0o755)
    pki.issue_host_certificates(path, HOSTS)
    pki.publish(path, next_update=dt.timedelta(hours=1))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def crl_http(lab_dir: Path) -> crl_server.CrlServer:
    """The CRL server on 127.9.<n>.80-82:80, <n> random and retried until free (several runs may share a box)."""
    rng = random.Random(os.getpid())
    for _attempt in range(20):
        n = rng.randrange(1, 255)
        addresses = {pki.CRL_HOST: f"127.9.{n}.80", pki.AIA_HOST: f"127.9.{n}.81", pki.OCSP_HOST: f"127.9.{n}.82"}
        try:
            server = crl_server.CrlServer(lab_dir, addresses, port=80).start()
            break
        except RuntimeError:
            continue
    else:
        raise RuntimeError("no free 127.9.<n>.80-82:80 triple for the test CRL server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lab_addresses(crl_http) -> dict[str, str]:
    return dict(crl_http.addresses)


@pytest.fixture(scope="session")
def squid(lab_dir: Path, lab_addresses: dict[str, str]) -> Squid:
    """A real squid; fails (never skips) with the install hint when squid is missing."""
    proxy = Squid(lab_dir, port=_free_port(), hosts=lab_addresses)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    yield
    if "lab_dir" in request.fixturenames:
        crl_server.clear_faults(request.getfixturevalue("lab_dir"))


@pytest.fixture()
def stores(lab_dir: Path) -> dict:
    """The cert stores of fe01 (My/CA/Root), in cert_inventory form."""
    return pki.issue_host_certificates(lab_dir, ["fe01.contoso.test"])["fe01.contoso.test"]


@pytest.fixture()
def free_port() -> int:
    """A loopback port where nothing listens (for a proxy that is down)."""
    return _free_port()
