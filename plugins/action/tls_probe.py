# Copyright: contributors to crlfix.windows
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of crlfix.windows.tls_probe: the host handshakes, the controller judges."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import CrlfixActionBase
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import (
    DEFAULT_MAX_HANDSHAKE_MS,
    DEFAULT_SAMPLES,
    DEFAULT_TIMEOUT_MS,
    run_tls_probe,
)


class ActionModule(CrlfixActionBase):
    # Kept in sync with DOCUMENTATION in plugins/modules/tls_probe.py (a unit test compares them).
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "peers": {"type": "list", "elements": "raw", "required": True},
        "samples": {"type": "int", "default": DEFAULT_SAMPLES},
        "timeout_ms": {"type": "int", "default": DEFAULT_TIMEOUT_MS},
        "max_handshake_ms": {"type": "int", "default": DEFAULT_MAX_HANDSHAKE_MS},
        "check_revocation": {"type": "bool", "default": True},
    }

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # Read-only: probes run in check mode too, and never report a change.
        return run_tls_probe(self._connection, args, task_action=self._task.action)
