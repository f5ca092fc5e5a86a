# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.fix_crl_restart: the role's step restarting a stale service, a host at a time."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import judge_restart
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._service import restart_service
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import (
    read_registered,
    write_record_file,
)


class ActionModule(CrlfixActionBase):
    MODULE = "fix_crl_restart"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        host = str(task_vars.get("inventory_hostname", ""))
        registered = args["record"]
        data = read_registered(host, registered)
        if not isinstance(data, dict) or data.get("host") != host or "status" not in data:
            raise ExpectedFailure(f"record: not the fix_crl_host record of {host!r}")
        record = HostRecord.from_dict(data)
        path = registered.get("record_path") if registered.get("result_detail") == "summary" else None
        service = record.service or {}
        stale = bool(service.get("stale"))
        if stale and not self._task.check_mode:
            restart, measurement = restart_service(
                self._connection, service, wait_ms=args["wait_ms"], samples=args["probe_samples"],
                timeout_ms=args["probe_timeout_ms"], max_handshake_ms=args["max_handshake_ms"],
                check_revocation=args["check_revocation"], task_action=self._task.action)
            verdict = judge_restart(restart, measurement, services=service.get("services") or [],
                                    max_handshake_ms=args["max_handshake_ms"])
            record = record.with_restart(restart, measurement, verdict)
            if path is not None:
                write_record_file(record.as_dict(), os.path.dirname(str(path)))
        result = record.task_result(fail_host=False, diff=False, record_path=str(path) if path is not None else None)
        # A restart is a change of the host (its services' processes), whatever it proved.
        return {**result, "changed": stale and not self._task.check_mode}
