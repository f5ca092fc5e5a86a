# PRIVATE to the crlfix.windows collection; may change without notice.
"""Argument specs read from the modules' DOCUMENTATION, so that each option is written once.

The modules of this collection are action plugins; ``plugins/modules/<name>.py`` only documents them. The
action validates its arguments with the spec derived here from that documentation (the pattern of
ansible.utils' ``check_argspec``). What the documentation format cannot say (``mutually_exclusive``,
``required_if``, ``no_log``) stays in code, on the action class.
"""

from __future__ import annotations

import copy
import functools
import importlib
import typing as t

from ansible.module_utils.common.yaml import yaml_load
from ansible.utils.plugin_docs import merge_fragment

COLLECTION = "crlfix.windows"
_PACKAGE = "ansible_collections.crlfix.windows.plugins"
# Documentation keys that mean the same in an argument spec; the rest (description, version_added) is prose.
SPEC_KEYS = ("type", "elements", "default", "choices", "required", "aliases")


class DocumentationError(ValueError):
    """A module's documentation cannot give an argument spec; the message names the module and the option."""


def argument_spec_of_options(options: t.Mapping[str, t.Any] | None, *, where: str = "options") -> dict[str, t.Any]:
    """The argument spec of documented ``options``: the spec keys of each, ``suboptions`` as ``options``.

    ``choices`` given as a mapping (choice -> description) become the list of its keys.
    """
    spec: dict[str, t.Any] = {}
    for name, option in (options or {}).items():
        if not isinstance(option, dict):
            raise DocumentationError(f"{where}.{name}: expected a mapping, got {option!r}")
        entry = {key: copy.deepcopy(option[key]) for key in SPEC_KEYS if key in option}
        if isinstance(entry.get("choices"), dict):
            entry["choices"] = list(entry["choices"])
        if "suboptions" in option:
            entry["options"] = argument_spec_of_options(option["suboptions"], where=f"{where}.{name}.suboptions")
        spec[name] = entry
    return spec


def _own_fragment(name: str) -> dict[str, t.Any] | None:
    """A ``crlfix.windows.<file>[.<var>]`` doc fragment, parsed; ``None`` for another collection's fragment."""
    if not name.startswith(f"{COLLECTION}."):
        return None
    file_name, dot, variable = name[len(COLLECTION) + 1:].partition(".")
    try:
        fragment_class = importlib.import_module(f"{_PACKAGE}.doc_fragments.{file_name}").ModuleDocFragment
        text = getattr(fragment_class, (variable if dot else "documentation").upper())
    except (ImportError, AttributeError) as exc:
        raise DocumentationError(f"extends_documentation_fragment: no doc fragment {name!r} ({exc})") from exc
    return yaml_load(text)


def resolve_documentation(documentation: str) -> dict[str, t.Any]:
    """DOCUMENTATION parsed, with this collection's doc fragments merged in as ansible-doc merges them.

    Fragments of other collections are left out: the ones these modules use
    (``ansible.builtin.action_common_attributes``) only describe attributes and add no option.
    """
    # ansible-core's safe loader, libyaml's when present: the longest DOCUMENTATION parses in ~2 ms, not ~40.
    doc = yaml_load(documentation)
    for name in doc.get("extends_documentation_fragment") or []:
        fragment = _own_fragment(name)
        for key in ("options", "attributes"):
            if fragment and fragment.get(key):
                merge_fragment(doc.setdefault(key, {}), fragment[key])
    return doc


@functools.cache
def module_documentation(module: str) -> dict[str, t.Any]:
    """The resolved DOCUMENTATION of ``plugins/modules/<module>.py``, parsed once per process."""
    return resolve_documentation(importlib.import_module(f"{_PACKAGE}.modules.{module}").DOCUMENTATION)


def module_argument_spec(module: str) -> dict[str, t.Any]:
    """The argument spec of ``crlfix.windows.<module>``, from its documentation (a fresh copy each call)."""
    return argument_spec_of_options(module_documentation(module).get("options"), where=f"{module}: options")


def module_defaults(module: str) -> dict[str, t.Any]:
    """Every top-level option of ``crlfix.windows.<module>`` with its documented default, ``None`` without one."""
    return {name: option.get("default") for name, option in module_argument_spec(module).items()}


__all__ = ["DocumentationError", "argument_spec_of_options", "module_argument_spec", "module_defaults",
           "module_documentation", "resolve_documentation"]
