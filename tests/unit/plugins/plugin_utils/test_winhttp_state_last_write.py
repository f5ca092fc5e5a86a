"""The views' ``last_write`` (the Connections key's last write time, RegQueryInfoKey): parsed into aware UTC, null kept,
a malformed value refused with the field named (docs/dev/host-scripts.md, winhttp_state)."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import parse_state

VALUE = "GAAAAAAAAAABAAAAAAAAAAAAAAA="


def document(native_time, wow_time=None) -> dict:
    view = {"path": "HKLM:\\...", "present": True, "value_b64": VALUE}
    return {"computer_name": "X", "os": {"build": 17763, "is_64bit": True},
            "views": {"native": {**view, "last_write": native_time}, "wow6432": {**view, "last_write": wow_time}}}


def test_last_write_is_an_aware_utc_time_or_none() -> None:
    state = parse_state(document("2026-11-26T03:57:40Z"))
    assert state.views["native"].last_write == dt.datetime(2026, 11, 26, 3, 57, 40, tzinfo=dt.UTC)
    assert state.views["wow6432"].last_write is None


def test_an_older_document_without_it_reads_as_unknown() -> None:
    doc = document(None)
    del doc["views"]["native"]["last_write"]
    assert parse_state(doc).views["native"].last_write is None


@pytest.mark.parametrize("value", ["2026-11-26 03:57:40", "yesterday", 1700000000])
def test_a_malformed_time_names_the_field(value) -> None:
    with pytest.raises(ValueError, match=r"views\.native\.last_write: expected a UTC time"):
        parse_state(document(value))
