# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.tls_probe: the host handshakes, the controller judges."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import run_tls_probe


class ActionModule(CrlfixActionBase):
    MODULE = "tls_probe"

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # Read-only: probes run in check mode too, and never report a change.
        return run_tls_probe(self._connection, args, task_action=self._task.action)
