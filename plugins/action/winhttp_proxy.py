# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.winhttp_proxy; the work is in plugin_utils/_winhttp_proxy.py."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import ProxyKeysError
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import (
    MissingProxyError,
    manage_winhttp_proxy,
)


class ActionModule(CrlfixActionBase):
    """Reads the host unless `current` is given; in check mode predicts the result and runs nothing that writes."""

    MODULE = "winhttp_proxy"
    # Checked before defaults are filled in, so only options the user wrote count.
    MUTUALLY_EXCLUSIVE = [("restore", "proxy"), ("restore", "bypass"), ("restore", "state"), ("restore", "views"),
                          ("proxy", "source"), ("bypass", "source"), ("restore", "source"), ("current", "source")]

    def bad_arguments(self, message: str, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # A failed result, as a module's argument error is, so that failed_when and ignore_errors see it (a raised
        # AnsibleActionFail bypasses failed_when): ansible.windows.win_http_proxy's suite relies on that.
        return {"changed": False, "failed": True, "msg": message}

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        try:
            return manage_winhttp_proxy(self._connection, args, check_mode=bool(self._task.check_mode),
                                        diff=bool(self._task.diff), task_action=self._task.action)
        except (ProxyKeysError, MissingProxyError) as exc:
            # Argument errors in win_http_proxy's (and Ansible's validator's) words, without the action's prefix.
            return self.bad_arguments(str(exc), task_vars)
