# Copyright: contributors to the crlfix.windows collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of ``crlfix.windows.fix_crl_report``: validate, gather the records, call the fleet report."""

from __future__ import annotations

import os
import typing as t

from ansible.errors import AnsibleActionFail

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._fleet import FleetReportError, make_fleet_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._html import write_report_html
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import read_registered


class ActionModule(CrlfixActionBase):
    """Controller-only: reads host records, writes the report even in check mode (the audit is the point)."""

    MODULE = "fix_crl_report"

    def _records_from_hostvars(self, hosts: list[str], record_var: str,
                               task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        hostvars = task_vars.get("hostvars") or {}
        records: dict[str, t.Any] = {}
        for name in hosts:
            try:
                host = hostvars[name]
            except KeyError:
                continue  # not in the inventory any more: reported as not_run
            # The role's restart step (fix_crl_restart) leaves the record it changed in <record_var>_restarted; a
            # skipped step leaves Ansible's skipped result there, which is no record.
            restarted = host.get(f"{record_var}_restarted") if record_var in host else None
            if isinstance(restarted, t.Mapping) and "status" in restarted and "host" in restarted:
                records[name] = restarted
            elif record_var in host:
                records[name] = host[record_var]
        return records

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        hosts = args["hosts"]
        if args["records"] is not None:
            records = args["records"]
        else:
            records = self._records_from_hostvars(hosts, args["record_var"], task_vars)
        dest = args["dest"]
        if dest is None:
            # The playbook's default too (fix_crl_report_dir): reports/ where ansible-playbook runs.
            dest = "reports"
        # The summary prints this path: make it the one a user would type (no "playbooks/../reports").
        dest = os.path.abspath(dest)
        context = dict(args["context"])
        context.setdefault("limit", task_vars.get("ansible_limit"))
        context.setdefault("ansible_version", (task_vars.get("ansible_version") or {}).get("full"))
        # A registered summary names the file of its record (fix_crl_host's result_detail: summary): read it.
        records = {name: read_registered(name, value) for name, value in records.items()}
        try:
            return make_fleet_report(
                hosts,
                records,
                check_mode=bool(self._task.check_mode),
                dest=dest if args["write"] else None,
                run_id=args["run_id"],
                rollout_stopped=args["rollout_stopped"],
                context=context,
                page_writer=write_report_html,
                groups=task_vars.get("groups") or {},
                previous=args["previous_report"],
            )
        except FleetReportError as exc:
            raise AnsibleActionFail(f"{self._task.action}: {exc}") from exc
