"""Fixtures of the plugin integration tests: two lab hosts of the plain HTTP profile, left as they were found."""

from __future__ import annotations

import pytest

from ._adhoc import http_profile_hosts


@pytest.fixture
def pair(lab):
    """A prober and a peer; the CRL server's faults are cleared first and the prober's state is reset after."""
    prober, peer = http_profile_hosts(lab)[:2]
    lab.clear_crl_faults()
    yield prober, peer
    lab.reset_state(prober)
