"""write_text_atomic: whole file or nothing, readable by others, no temp file left behind."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._report import _atomic_file


def test_writes_utf8_with_mode(tmp_path) -> None:
    target = tmp_path / "report.json"
    _atomic_file.write_text_atomic(str(target), "é\n")
    assert target.read_bytes() == "é\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["report.json"]


def test_replaces_an_existing_file(tmp_path) -> None:
    target = tmp_path / "page.html"
    target.write_text("old")
    _atomic_file.write_text_atomic(str(target), "new", mode=0o600)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_rename_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch) -> None:
    target = tmp_path / "page.html"
    target.write_text("old")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(_atomic_file.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        _atomic_file.write_text_atomic(str(target), "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["page.html"]
