"""Session fixtures for every integration test: a small lab of Windows twins on loopback.

``lab`` starts 6 twins (one of each seeded starting state, OS builds 14393/17763/20348, both sites) in
``build/lab-pytest-<pid>/`` at a free place of the pytest range (``tests/lab/fleet/addresses.py``), so it never
collides with a `make lab-up` lab, a benchmark, molecule or another session, and stops the lab at the end of
the session, even when tests fail (the directory is removed unless ``CRLFIX_KEEP_LAB=1``). What a test can do
with it: ``tests/lab/fleet/handle.py`` (``LabHandle``) and tests/lab/README.md ("In pytest").

With the lab comes its revocation world (docs/lab.md): CRLs published for the whole session (4 hours), the CRL
server on the place's ``127.9.<K>.80-82:80`` and squid on ``127.0.0.1:<31000+K>``; every site's
``fix_crl_proxy`` is that squid (``lab.proxy``). Each twin listens for TLS on ``<address>:5061`` and has
3 s / 4 s CryptoAPI retrieval timeouts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.lab.fleet import launcher
from tests.lab.fleet.handle import LabHandle
from tests.lab.fleet.plan import SESSION_CRL_VALIDITY
from tests.lab.fleet.process import REPO_ROOT

LAB_HOSTS = 6


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    # One lab per pytest process (xdist workers included), each at its own place.
    lab_dir = REPO_ROOT / "build" / f"lab-pytest-{os.getpid()}"
    try:
        # CRLs valid for the whole session (a publisher's are for days): a test that wants one past its NextUpdate
        # publishes it so (LabHandle.publish_crls).
        started = launcher.up_anywhere(lab_dir, LAB_HOSTS, "pytest", next_update=SESSION_CRL_VALIDITY)
        yield LabHandle(lab_dir, started.fleet)
    finally:
        launcher.down(lab_dir)
        if not os.environ.get("CRLFIX_KEEP_LAB"):
            shutil.rmtree(lab_dir, ignore_errors=True)
