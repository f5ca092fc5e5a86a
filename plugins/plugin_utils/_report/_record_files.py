# PRIVATE to the crlfix.windows collection; may change without notice.
"""The run's record files: fix_crl_host writes each host's full record here, fix_crl_report reads them back.

Why files: a task result travels from the worker to the strategy, is kept as the registered variable, seen by every
callback and stored by AWX as a job event per host. The record (10 KB and growing) goes to the controller's disk
instead, and the task result is its summary with ``record_path`` (``HostRecord.summary``).

The run's area is ``<ansible local tmp>/crlfix-fix_crl-records/`` (:func:`run_area`). ansible-core makes its local
tmp (``DEFAULT_LOCAL_TMP``, ``~/.ansible/tmp/ansible-local-<pid><random>``) once per ansible-playbook process with
``mkdtemp``, before it forks a worker, and removes it when the process ends. So each run has its own area by
construction: two AWX jobs or two terminals never share one (no name to agree on, nothing to clean up), and a
``--limit`` slice is a run of its own that writes its own report; ``scripts/crlfix_report.py merge`` joins the
reports. The files last as long as the run; the report is what stays.
"""

from __future__ import annotations

import json
import os
import tempfile
import typing as t
import urllib.parse

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord

AREA_NAME = "crlfix-fix_crl-records"


def write_text_atomic(path: str, text: str, *, mode: int = 0o644) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that a reader never sees half of it: a temp file in the same directory
    (the rename never crosses file systems), ``mode`` applied (mkstemp creates 0600), then ``os.replace``; the temp
    file is removed when anything fails. The record files and the report pages are written this way."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_area() -> str:
    """This run's record area: under ansible-core's per-process local tmp, which the workers inherit."""
    from ansible import constants as C  # noqa: N812 (ansible's own name); imported here: the rest is pure

    return os.path.join(C.DEFAULT_LOCAL_TMP, AREA_NAME)


def record_file(area: str, host: str) -> str:
    """``<area>/<host>.json``, the host name percent-encoded so that no name leaves the area or hides a file."""
    return os.path.join(area, urllib.parse.quote(host, safe="") + ".json")


def write_record_file(record: t.Mapping[str, t.Any], area: str) -> str:
    """Write ``record`` (a ``HostRecord.as_dict``) as its host's file, atomically, readable by the owner only."""
    os.makedirs(area, mode=0o700, exist_ok=True)
    path = record_file(area, str(record["host"]))
    write_text_atomic(path, json.dumps(record, separators=(",", ":"), default=str), mode=0o600)
    return path


def _unreadable(host: str, summary: t.Mapping[str, t.Any], why: str) -> dict[str, t.Any]:
    return HostRecord.failed(host=host, step="report", msg=f"the host record file {summary['record_path']!r} {why}",
                             check_mode=summary.get("check_mode")).as_dict()


def read_registered(host: str, value: t.Any) -> t.Any:
    """What ``fix_crl_record`` of ``host`` holds, with a summary replaced by the record in its file.

    Anything else (a full record, Ansible's failed result, no record) is returned as it is, for the report to read.
    A file that is gone, unreadable or of another host makes a failed record that says so, not an error: one
    host's file must not cost the fleet its report.
    """
    if not isinstance(value, t.Mapping) or value.get("result_detail") != "summary" or "record_path" not in value:
        return value
    path = value["record_path"]
    try:
        with open(str(path), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError) as exc:
        return _unreadable(host, value, f"cannot be read: {exc}")
    if not isinstance(record, dict) or record.get("host") != host:
        return _unreadable(host, value, f"is not the record of {host!r}")
    return record


__all__ = ["write_text_atomic", "AREA_NAME", "read_registered", "record_file", "run_area", "write_record_file"]
