# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.winhttp_proxy_info; the work is in plugin_utils/_winhttp_proxy.py."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import gather_winhttp_proxy_info


class ActionModule(CrlfixActionBase):
    """Read-only: the same single read runs in check mode."""

    MODULE = "winhttp_proxy_info"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        return gather_winhttp_proxy_info(self._connection, task_action=self._task.action)
