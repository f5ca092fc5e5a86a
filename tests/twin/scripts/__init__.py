"""Registry of the collection's host scripts the twin implements (docs/dev/host-scripts.md).

One module per script; each exposes ``NAME``, ``SCHEMAS`` (the schema numbers it implements) and
``run(ctx, args) -> dict`` returning the document (without ``script``/``schema``, which the caller adds).
A script that cannot produce its document raises ``ScriptError`` (stderr + non-zero exit, as the contract says).
To add a script: add a module here and list it in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tests.twin.state import HostState

_MODULES = ("winhttp_state", "winhttp_apply", "cert_inventory", "crl_fetch", "tls_probe", "host_audit",
            "service_restart")


class ScriptError(Exception):
    """The script could not produce its document; the message goes to stderr as a PowerShell error."""


@dataclass
class ScriptContext:
    state: HostState
    schema: int | None = None  # the schema the script's header asked for (None: the newest the stand-in knows)


def registry() -> dict[str, ModuleType]:
    modules = {}
    for name in _MODULES:
        module = importlib.import_module(f"tests.twin.scripts.{name}")
        modules[module.NAME] = module
    return modules


def require(args: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    """Argument ``key`` of type ``kind``; a wrong type is a ScriptError naming field and value."""
    value = args.get(key, default)
    if not isinstance(value, kind):
        raise ScriptError(f"argument '{key}': expected {kind.__name__}, got {value!r}")
    return value
