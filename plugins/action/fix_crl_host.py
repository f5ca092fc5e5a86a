# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.fix_crl_host: one host's whole fix_crl run in one task."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions, Inventory
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import FAILING_STATUSES
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._run import run_fix_crl_host


class ActionModule(CrlfixActionBase):
    MODULE = "fix_crl_host"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        options = FixCrlOptions.from_args(args)
        wanted = [options.peer_group] if options.peer_group else list(options.peer_groups)
        inventory = Inventory.from_task_vars(task_vars, wanted)
        record = run_fix_crl_host(self._connection, options, inventory, check_mode=bool(self._task.check_mode),
                                  task_action=self._task.action)
        result: dict[str, t.Any] = {**record, "changed": record["status"] in ("changed", "would_change")
                                    or bool(record["rollback"] and record["rollback"].get("performed"))}
        diff = record["planned"]["diff"]
        if self._task.diff and diff:
            result["diff"] = diff
        if record["status"] == "unreachable":
            # Say so to Ansible too, so that event consumers (AWX's host events, callbacks) see the host as
            # unreachable; the role's task ignores it (ignore_unreachable) and keeps the record.
            result.update(unreachable=True, msg=f"fix_crl: unreachable: {record['reason']}")
        elif options.fail_host and record["status"] in FAILING_STATUSES:
            result.update(failed=True, msg=f"fix_crl: {record['status']}: {record['reason']}")
        return result
