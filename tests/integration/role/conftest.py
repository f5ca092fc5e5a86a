"""Fixtures of the role's lab tests."""

from __future__ import annotations

import pytest

from ._runs import reset_fleet


@pytest.fixture
def fleet(lab):
    """The lab with every host back at its seeded state, before and after the test (tests change hosts)."""
    reset_fleet(lab)
    yield lab
    reset_fleet(lab)
