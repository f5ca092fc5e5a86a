# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.cert_revocation_info; the work is in plugin_utils/_cert_revocation.py."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import gather_cert_revocation_info


class ActionModule(CrlfixActionBase):
    """Read-only: runs the same single read in check mode as in normal mode."""

    MODULE = "cert_revocation_info"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        return gather_cert_revocation_info(self._connection, args, task_action=self._task.action)
