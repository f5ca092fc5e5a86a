# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.fix_crl_host: one host's whole fix_crl run in one task."""

from __future__ import annotations

import typing as t

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import (
    FixCrlOptions,
    Inventory,
    options_from_variables,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._run import run_fix_crl_host
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._record_files import run_area, write_record_file


class ActionModule(CrlfixActionBase):
    MODULE = "fix_crl_host"
    # The arguments as gathered (the task's, or with the role's variables): a failed record still honours their
    # fail_host and result_detail.
    _gathered: dict[str, t.Any] | None = None

    def task_arguments(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """With ``options_from_vars``, the options not given as arguments come from the host's variables first."""
        prefix = self._task.args.get("options_from_vars")
        if not prefix or not isinstance(prefix, str):
            return None
        names = [name for name in self.ARGUMENT_SPEC if name != "options_from_vars"]
        options, errors = options_from_variables(prefix, names, task_vars, self._templar.template)
        self._gathered = {**options, **self._task.args}
        if errors:  # as a bad argument: the host's failed record says which variable and why, nothing runs
            raise ExpectedFailure("; ".join(errors))
        return self._gathered

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        options = FixCrlOptions.from_args(args)
        wanted = [options.peer_group] if options.peer_group else list(options.peer_groups)
        inventory = Inventory.from_task_vars(task_vars, wanted)
        record = run_fix_crl_host(self._connection, options, inventory, check_mode=bool(self._task.check_mode),
                                  task_action=self._task.action)
        return self.result_of(record, fail_host=options.fail_host, diff=bool(self._task.diff),
                              detail=options.result_detail)

    def result_of(self, record: HostRecord, *, fail_host: bool, diff: bool, detail: str) -> dict[str, t.Any]:
        """The record as the task result (``full``), or written to the run's area and summarised (``summary``).

        A record file that cannot be written (a full disk) leaves the whole record in the result, with a warning:
        the result is then bigger, but the report loses nothing.
        """
        if detail == "full":
            return record.task_result(fail_host=fail_host, diff=diff)
        try:
            path = write_record_file(record.as_dict(), run_area())
        except OSError as exc:
            return {**record.task_result(fail_host=fail_host, diff=diff),
                    "warnings": [f"fix_crl: the host record stays in the task result: cannot write its file: {exc}"]}
        return record.task_result(fail_host=fail_host, diff=diff, record_path=path)

    def bad_arguments(self, message: str, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        return self.failed_result(ExpectedFailure(message), task_vars)

    def failed_result(self, failure: ExpectedFailure, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        """A host the run could not start on still leaves its record (failed, with the reason), like any other."""
        record = HostRecord.failed(host=str(task_vars.get("inventory_hostname", "")), step="arguments",
                                   msg=str(failure), check_mode=bool(self._task.check_mode))
        arguments = self._gathered if self._gathered is not None else self._task.args
        try:  # the arguments were refused, perhaps this one: a value that is no boolean fails the host
            fail_host = boolean(arguments.get("fail_host", True))
        except TypeError:
            fail_host = True
        detail = "full" if arguments.get("result_detail") == "full" else "summary"
        return {**self.result_of(record, fail_host=fail_host, diff=False, detail=detail), **failure.fields}
