"""The run's record files: where they go, how a summary is read back, what an unusable file becomes; every file
the report writes is whole or absent (write_text_atomic)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible import constants as C  # noqa: N812

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord
from ansible_collections.crlfix.windows.plugins.plugin_utils._report import _record_files
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import (
    AREA_NAME,
    read_registered,
    record_file,
    run_area,
    write_record_file,
)


def _record(host: str) -> dict:
    return HostRecord.failed(host=host, step="t", msg="why", check_mode=True).as_dict()


def test_the_area_is_inside_ansibles_own_tmp_of_this_process() -> None:
    # ansible-core makes DEFAULT_LOCAL_TMP with mkdtemp once per process and removes it at exit.
    assert run_area() == os.path.join(C.DEFAULT_LOCAL_TMP, AREA_NAME)
    assert os.path.basename(C.DEFAULT_LOCAL_TMP).startswith(f"ansible-local-{os.getpid()}")


def test_a_host_name_never_leaves_the_area(tmp_path) -> None:
    assert record_file(str(tmp_path), "../etc/passwd") == str(tmp_path / "..%2Fetc%2Fpasswd.json")
    assert record_file(str(tmp_path), "fe01.contoso.com") == str(tmp_path / "fe01.contoso.com.json")


def test_a_summary_is_read_from_its_file_anything_else_as_it_is(tmp_path) -> None:
    path = write_record_file(_record("fe01"), str(tmp_path / "area"))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    summary = HostRecord.failed(host="fe01", step="t", msg="why", check_mode=True).summary(path)
    assert read_registered("fe01", summary) == json.loads(json.dumps(_record("fe01")))
    full = _record("fe01")
    assert read_registered("fe01", full) is full
    failed_task = {"failed": True, "msg": "undefined variable"}
    assert read_registered("fe01", failed_task) is failed_task


def test_a_file_gone_or_of_another_host_is_a_failed_record_that_says_so(tmp_path) -> None:
    path = write_record_file(_record("fe02"), str(tmp_path))
    other = HostRecord.failed(host="fe01", step="t", msg="x", check_mode=True).summary(path)
    record = read_registered("fe01", other)
    assert record["status"] == "failed" and record["host"] == "fe01" and record["check_mode"] is True
    assert record["reason"] == f"report: the host record file {path!r} is not the record of 'fe01'"
    gone = HostRecord.failed(host="fe01", step="t", msg="x", check_mode=False).summary(str(tmp_path / "gone.json"))
    assert "cannot be read: [Errno 2]" in read_registered("fe01", gone)["reason"]


def test_writes_utf8_with_mode(tmp_path) -> None:
    target = tmp_path / "report.json"
    _record_files.write_text_atomic(str(target), "é\n")
    assert target.read_bytes() == "é\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["report.json"]


def test_replaces_an_existing_file(tmp_path) -> None:
    target = tmp_path / "page.html"
    target.write_text("old")
    _record_files.write_text_atomic(str(target), "new", mode=0o600)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_rename_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch) -> None:
    target = tmp_path / "page.html"
    target.write_text("old")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(_record_files.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        _record_files.write_text_atomic(str(target), "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["page.html"]
