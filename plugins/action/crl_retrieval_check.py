# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.crl_retrieval_check: the host fetches, the controller judges."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import cryptography_missing_message
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import run_crl_retrieval_check
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure


class ActionModule(CrlfixActionBase):
    MODULE = "crl_retrieval_check"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        missing = cryptography_missing_message()
        if missing:
            raise ExpectedFailure(missing, changed=False)
        return run_crl_retrieval_check(self._connection, args, check_mode=bool(self._task.check_mode),
                                       task_action=self._task.action)
