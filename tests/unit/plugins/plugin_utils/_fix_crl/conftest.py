"""The host_audit tests' lab PKI, CRL bodies and fake host (fixtures/audit_host.py), made once per module."""

from __future__ import annotations

import pytest

from tests.unit.plugins import pki_factory as pf
from tests.unit.plugins.fixtures.audit_host import NOW, audit_host
from tests.unit.plugins.fixtures.host import FakeHost
from tests.unit.plugins.fixtures.verify.verify_bodies import make_bodies


@pytest.fixture(scope="module")
def p() -> pf.LabPki:
    return pf.build_lab_pki(NOW)


@pytest.fixture(scope="module")
def bodies() -> dict[str, bytes]:
    return make_bodies(NOW)


@pytest.fixture
def host(monkeypatch, p, bodies) -> FakeHost:
    return audit_host(monkeypatch, p, bodies)
