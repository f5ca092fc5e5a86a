"""Fixtures for the revocation-world tests: one lab directory, CRL server and squid per pytest worker.

The CRL server and squid take a free place of the pytest range (``tests/lab/fleet/addresses.py``: 127.9.K.80-82
and 127.0.0.1:31000+K), so parallel workers, parallel runs and every other lab never collide. 127.9.0.0/16 is
outside the modelled intranet, like the lab's 127.0.9.x: a direct connection there is dropped.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.lab import crl_server, pki
from tests.lab.fleet import addresses
from tests.lab.squid import Squid

HOSTS = ["fe01.contoso.test", "fe02.contoso.test", "edge-delta.contoso.test", "edge-ldaponly.contoso.test"]


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
def place() -> addresses.Place:
    """Where this worker's CRL server and squid live (no twins: ``hosts=0``)."""
    return addresses.allocate("pytest", 0)


@pytest.fixture(scope="session")
def crl_http(lab_dir: Path, place: addresses.Place) -> crl_server.CrlServer:
    """The CRL server on this worker's 127.9.<K>.80-82:80 (the root certificate list's host on the CRL host's)."""
    names = {**dict(zip(pki.PUBLIC_NAMES, place.crl_addresses, strict=True)), pki.CTL_HOST: place.crl_addresses[0]}
    server = crl_server.CrlServer(lab_dir, names).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lab_addresses(crl_http) -> dict[str, str]:
    return dict(crl_http.addresses)


@pytest.fixture(scope="session")
def squid(lab_dir: Path, lab_addresses: dict[str, str], place: addresses.Place) -> Squid:
    """A real squid; fails (never skips) with the install hint when squid is missing."""
    proxy = Squid(lab_dir, port=place.squid_port, hosts=lab_addresses)
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
    return addresses.unused_port()
