# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.fix_crl_restart: the role's step restarting a stale service, a host at a time."""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord, Status
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._service import restart_stale_service
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import (
    read_registered,
    write_record_file,
)


def _as_record(record: t.Mapping[str, t.Any]) -> HostRecord:
    """A record (``HostRecord.as_dict``) back as a HostRecord, so its task result is made the one way."""
    fields = {f.name: record.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
              for f in dataclasses.fields(HostRecord)}
    return HostRecord(**{**fields, "status": Status(record["status"])})


class ActionModule(CrlfixActionBase):
    MODULE = "fix_crl_restart"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        host = str(task_vars.get("inventory_hostname", ""))
        registered = args["record"]
        record = read_registered(host, registered)
        if not isinstance(record, dict) or record.get("host") != host or "status" not in record:
            raise ExpectedFailure(f"record: not the fix_crl_host record of {host!r}")
        path = registered.get("record_path") if registered.get("result_detail") == "summary" else None
        stale = bool((record.get("service") or {}).get("stale"))
        if stale and not self._task.check_mode:
            record = restart_stale_service(self._connection, record, wait_ms=args["wait_ms"],
                                           samples=args["probe_samples"], timeout_ms=args["probe_timeout_ms"],
                                           max_handshake_ms=args["max_handshake_ms"],
                                           check_revocation=args["check_revocation"], task_action=self._task.action)
            if path is not None:
                write_record_file(record, os.path.dirname(str(path)))
        result = _as_record(record).task_result(fail_host=False, diff=False,
                                                record_path=str(path) if path is not None else None)
        # A restart is a change of the host (its services' processes), whatever it proved.
        return {**result, "changed": stale and not self._task.check_mode}
