# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host's minimum versions as host_audit's first lines report them (docs/dev/host-scripts.md, "The floor"):
a host below the floor answers with its floor document only, and its record says what is missing."""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._host_floor import (
    HostFloor,
    below_floor_reason,
    parse_floor,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure, HostScriptError

SCRIPT = "host_audit"


class HostBelowFloor(ExpectedFailure):
    """The host answered with its floor document only: it misses a minimum version; ``floor`` says which."""


def check_floor(document: t.Mapping[str, t.Any]) -> HostFloor | None:
    """The host's floor facts (None from a script without the check); raises when the host is below the floor.

    Raises:
        HostBelowFloor: the host misses a requirement (the message names each, with what the host has).
        HostScriptError: the floor object is malformed.
    """
    if document.get("floor") is None:
        return None
    try:
        floor = parse_floor(document["floor"])
    except ValueError as exc:
        raise HostScriptError(f"host script {SCRIPT}: {exc}") from None
    if not floor.ok:
        raise HostBelowFloor(below_floor_reason(floor), floor=floor.as_dict())
    return floor


__all__ = ["HostBelowFloor", "check_floor"]
