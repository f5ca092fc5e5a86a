"""Fixtures shared by the plugin tests: one generated lab PKI per test session, the WinHTTP fake host."""

from __future__ import annotations

import datetime
import typing as t

import pytest

from tests.unit.plugins.fixtures.host import FakeHost
from tests.unit.plugins.fixtures.winhttp.replay import replay_host
from tests.unit.plugins.pki_factory import LabPki, build_lab_pki


@pytest.fixture(scope="session")
def pki() -> LabPki:
    # Whole seconds: X.509 times have no fractions, so comparisons against pki.now stay exact.
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return build_lab_pki(now)


@pytest.fixture(scope="session")
def host_stores(pki: LabPki) -> dict[str, list]:
    """A host like LAB-FE01: machine certificates in My, the issuing CA (old and renewed) in CA, roots in Root."""
    return {
        "My": [(pki.leaf, True), (pki.ldap_leaf, True), (pki.bare_leaf, False), (pki.expired_leaf, True),
               (pki.expiring_leaf, True), (pki.self_signed, True), (pki.orphan_leaf, True)],
        "CA": [pki.issuing_old, pki.issuing],
        "Root": [pki.root],
    }


@pytest.fixture
def winhttp_host(monkeypatch) -> t.Callable[..., FakeHost]:
    """Installs a fake host replaying fixtures/winhttp files per script name: ``winhttp_host(winhttp_state=[...])``."""
    def install(**answers: t.Any) -> FakeHost:
        return replay_host(monkeypatch, **answers)
    return install
