# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.fix_crl_host: one host's whole fix_crl run in one task."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions, Inventory
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import FAILING_STATUSES
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._run import run_fix_crl_host

_LIST = {"type": "list", "elements": "str"}


class ActionModule(CrlfixActionBase):
    # Kept in sync with DOCUMENTATION in plugins/modules/fix_crl_host.py and with the role's
    # meta/argument_specs.yml (unit tests compare them).
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "proxy": {"type": "str"},
        "bypass": {**_LIST, "default": []},
        "views": {**_LIST, "choices": ["native", "wow6432"], "default": ["native", "wow6432"]},
        "cert_stores": {**_LIST, "default": ["My"]},
        "chain_stores": {**_LIST, "default": ["CA", "Root"]},
        "cert_thumbprints": {**_LIST, "default": []},
        "cert_subject": {"type": "str"},
        "cert_ekus": {**_LIST, "default": []},
        "expiry_warning_days": {"type": "int", "default": 30},
        "extra_endpoints": {"type": "list", "elements": "raw", "default": []},
        "endpoint_requirement": {"type": "str", "choices": ["reachable", "usable"], "default": "reachable"},
        "crl_timeout_ms": {"type": "int", "default": 15000},
        "flush": {"type": "bool", "default": True},
        "measure_before": {"type": "bool", "default": True},
        "measure_after_rollback": {"type": "bool", "default": False},
        "audit_time_box_ms": {"type": "int", "default": 2000},
        "peers": {"type": "list", "elements": "raw"},
        "peer_group": {"type": "str"},
        "peer_groups": {**_LIST, "default": ["lync_servers", "exchange_servers", "adfs_servers"]},
        "max_peers": {"type": "int", "default": 3},
        "peer_address_from": {"type": "str", "choices": ["inventory_hostname", "ansible_host"],
                              "default": "inventory_hostname"},
        "tls_port": {"type": "int", "default": 5061},
        "probe_samples": {"type": "int", "default": 3},
        "probe_timeout_ms": {"type": "int", "default": 20000},
        "max_handshake_ms": {"type": "int", "default": 1000},
        "check_revocation": {"type": "bool", "default": True},
        "rollback": {"type": "bool", "default": True},
        "fail_host": {"type": "bool", "default": True},
    }

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
