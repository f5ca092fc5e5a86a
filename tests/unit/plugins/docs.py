"""Module documentation as ansible-doc resolves it: the module's own text plus this collection's doc fragments."""

from __future__ import annotations

import importlib
import typing as t

import yaml
from ansible.utils.plugin_docs import merge_fragment

_PREFIX = "crlfix.windows."


def resolved_documentation(documentation: str) -> dict[str, t.Any]:
    """Parse DOCUMENTATION and merge the collection's fragments into it the way ansible-core does.

    ansible.builtin fragments only add descriptions; they are left out so the test needs no plugin loader.
    """
    doc = yaml.safe_load(documentation)
    for name in doc.get("extends_documentation_fragment", []):
        if not name.startswith(_PREFIX):
            continue
        fragment_module = name[len(_PREFIX):]
        module = importlib.import_module(f"ansible_collections.crlfix.windows.plugins.doc_fragments.{fragment_module}")
        fragment = yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)
        for key in ("options", "attributes"):
            if fragment.get(key):
                merge_fragment(doc.setdefault(key, {}), fragment[key])
    return doc
