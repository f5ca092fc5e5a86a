"""``cert_inventory`` schema 1: certificates of LocalMachine stores, optionally with winhttp_state."""

from __future__ import annotations

from typing import Any

from tests.twin.scripts import ScriptContext, ScriptError, require
from tests.twin.scripts.winhttp_state import read_state

NAME = "cert_inventory"
SCHEMAS = {1}


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    stores = require(args, "stores", list, ["My"])
    chain_stores = require(args, "chain_stores", list, ["CA", "Root"])
    want_winhttp = require(args, "winhttp", bool, False)
    names: list[str] = []
    for name in [*stores, *chain_stores]:
        if not isinstance(name, str) or not name:
            raise ScriptError(f"argument 'stores': store names must be non-empty strings, got {name!r}")
        if name not in names:
            names.append(name)
    known = ctx.state.data.get("cert_stores", {})
    found: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for name in names:
        # Cert:\LocalMachine\<name> store names are case-insensitive on Windows.
        match = next((key for key in known if key.lower() == name.lower()), None)
        if match is None:
            missing.append(name)
        else:
            found[match] = [
                {"der_b64": c["der_b64"], "has_private_key": bool(c.get("has_private_key", False))}
                for c in known[match]
            ]
    return {
        "computer_name": ctx.state.data["hostname"],
        "stores": found,
        "missing_stores": missing,
        "winhttp": ({"script": "winhttp_state", "schema": 1, **read_state(ctx)} if want_winhttp else None),
    }
