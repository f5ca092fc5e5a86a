# PRIVATE to the crlfix.windows collection; may change without notice.
"""Base class of the collection's action plugins (validate, call one helper, shape the result) and the argument
specs they validate against, read from the modules' DOCUMENTATION so that each option is written once.

The modules of this collection are action plugins; ``plugins/modules/<name>.py`` only documents them. The
action validates its arguments with the spec derived here from that documentation (the pattern of
ansible.utils' ``check_argspec``). What the documentation format cannot say (``mutually_exclusive``,
``required_if``, ``no_log``) stays in code, on the action class.
"""

from __future__ import annotations

import copy
import functools
import importlib
import traceback
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.yaml import yaml_load
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.plugin_docs import merge_fragment

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure

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


class CrlfixActionBase(ActionBase):
    """Validates the arguments against the module's documented options and delegates to :meth:`run_helper`.

    Subclasses name the module they implement in ``MODULE`` (its ``plugins/modules/<MODULE>.py`` documents the
    options; ``ARGUMENT_SPEC`` is derived from it when the class is defined, so once per process), optionally
    set ``MUTUALLY_EXCLUSIVE``, ``REQUIRED_IF``, ``REQUIRED_TOGETHER``, and implement :meth:`run_helper`,
    which returns the module-specific result keys. Expected failures (``ExpectedFailure``, or a ``ValueError``
    naming a bad value) become the result of :meth:`failed_result`, never tracebacks; a broken transport marks the
    host ``unreachable`` so the play goes on with the rest of the fleet.
    """

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    MODULE: t.ClassVar[str] = ""
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {}
    MUTUALLY_EXCLUSIVE: t.ClassVar[list[tuple[str, ...]]] = []
    REQUIRED_IF: t.ClassVar[list[tuple[t.Any, ...]]] = []
    REQUIRED_TOGETHER: t.ClassVar[list[tuple[str, ...]]] = []

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.MODULE:
            cls.ARGUMENT_SPEC = module_argument_spec(cls.MODULE)

    def run_helper(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        """Do the work; return the result keys (``changed`` included)."""
        raise NotImplementedError

    def task_arguments(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """The arguments to validate when they are not only the task's own (None: the task's, as Ansible gave them).

        Raises ``ExpectedFailure`` for arguments that cannot even be gathered (a variable that does not template).
        """
        return None

    def _validate(self, arguments: dict[str, t.Any] | None) -> dict[str, t.Any]:
        """The arguments validated, coerced and completed with their defaults, once.

        The task's own arguments go through ``ActionBase.validate_argument_spec``; arguments a subclass gathered
        (:meth:`task_arguments`) go through the same ``ArgumentSpecValidator`` call, since that method reads only
        ``self._task.args`` and the task is not ours to change.
        """
        options = {"mutually_exclusive": self.MUTUALLY_EXCLUSIVE or None, "required_if": self.REQUIRED_IF or None,
                   "required_together": self.REQUIRED_TOGETHER or None}
        if arguments is None:
            return self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **options)[1]
        validation = ArgumentSpecValidator(self.ARGUMENT_SPEC, **options).validate(dict(arguments))
        try:
            error = validation.errors[0]
        except IndexError:
            error = None
        if error is not None:
            message = validation.errors.msg
            if isinstance(error, UnsupportedError):
                message = f"Unsupported parameters for ({self._load_name}) module: {message}"
            raise AnsibleActionFail(message, obj=arguments)
        return {**arguments, **validation.validated_parameters}

    def bad_arguments(self, message: str, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        """The result for arguments that fail ``ARGUMENT_SPEC``: by default the task fails as any module's would."""
        raise AnsibleActionFail(message, obj=self._task.args)

    def failed_result(self, failure: ExpectedFailure, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        """The task result of an expected failure: its fields, ``failed`` and the message prefixed with the action."""
        return {"changed": False, **failure.fields, "failed": True, "msg": f"{self._task.action}: {failure}"}

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        self._supports_check_mode = True
        self._supports_async = False
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}

        try:
            args = self._validate(self.task_arguments(task_vars))
        except AnsibleActionFail as exc:
            result.update(self.bad_arguments(exc.message, task_vars))
            return result
        except ExpectedFailure as exc:
            result.update(self.failed_result(exc, task_vars))
            return result
        try:
            result.update(self.run_helper(args, task_vars))
        except AnsibleConnectionFailure as exc:
            result.update(unreachable=True, changed=False, msg=f"{self._task.action}: {exc}")
        except ExpectedFailure as exc:
            result.update(self.failed_result(exc, task_vars))
        except AnsibleActionFail:
            raise
        except (ValueError, TypeError) as exc:
            # Parsers raise ValueError subclasses with the field and the value in
            # the message; surface them as a clean failure, keep the trace for -vvv.
            result.update(self.failed_result(ExpectedFailure(str(exc), exception=traceback.format_exc()), task_vars))
        return result


__all__ = ["CrlfixActionBase", "DocumentationError", "argument_spec_of_options", "module_argument_spec",
           "module_defaults", "module_documentation", "resolve_documentation"]
