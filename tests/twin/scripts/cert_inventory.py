"""``cert_inventory``: certificates of LocalMachine stores, optionally with winhttp_state.

Schema 2 (``_stores.ps1``): each distinct certificate once in ``certificates``, the stores' entries point at it by
index (``cert``); schema 1: every entry carries its own ``der_b64``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.twin.scripts import ScriptContext, ScriptError, require
from tests.twin.scripts.winhttp_state import read_state

NAME = "cert_inventory"
SCHEMAS = {1, 2}
# _stores.ps1 $CrlfixStoreNamePattern (the controller's rule in _cert_revocation.py).
STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    stores = require(args, "stores", list, ["My"])
    chain_stores = require(args, "chain_stores", list, ["CA", "Root"])
    want_winhttp = require(args, "winhttp", bool, False)
    names: list[str] = []
    for field, name in [*(("stores", n) for n in stores), *(("chain_stores", n) for n in chain_stores)]:
        # _stores.ps1: the controller's pattern (-cnotmatch: case-sensitive classes), the value as compact JSON.
        if not isinstance(name, str) or not STORE_NAME.fullmatch(name):
            raise ScriptError(f"argument '{field}': {json.dumps(name, separators=(',', ':'))} is not a certificate "
                              "store name (letters, digits, space, . _ -)")
        if name.lower() not in (known_name.lower() for known_name in names):
            names.append(name)
    known = ctx.state.data.get("cert_stores", {})
    found: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    distinct: list[str] = []
    for name in names:
        # Cert:\LocalMachine\<name> store names are case-insensitive on Windows.
        match = next((key for key in known if key.lower() == name.lower()), None)
        if match is None:
            missing.append(name)
            continue
        found[match] = []
        for cert in known[match]:
            entry: dict[str, Any] = {"der_b64": cert["der_b64"]}
            if ctx.schema != 1:
                if cert["der_b64"] not in distinct:
                    distinct.append(cert["der_b64"])
                entry = {"cert": distinct.index(cert["der_b64"])}
            entry["has_private_key"] = bool(cert.get("has_private_key", False))
            found[match].append(entry)
    shared = {} if ctx.schema == 1 else {"certificates": distinct}
    return {
        "computer_name": ctx.state.data["hostname"],
        **shared,
        "stores": found,
        "missing_stores": missing,
        "winhttp": ({"script": "winhttp_state", "schema": 1, **read_state(ctx)} if want_winhttp else None),
    }


def store_ders(inventory: dict[str, Any]) -> dict[str, list[bytes]]:
    """Store name -> the DER of each entry, in order, from a document of either schema."""
    shared = inventory.get("certificates")
    return {name: [base64.b64decode(shared[e["cert"]] if shared is not None else e["der_b64"]) for e in entries]
            for name, entries in inventory["stores"].items()}
