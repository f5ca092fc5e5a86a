# PRIVATE to the crlfix.windows collection; may change without notice.
"""The options of fix_crl_host read from the role's variables (``options_from_vars``), templated here, once each.

Why: Ansible templates every argument of a task for every host before the action starts. ~30 arguments of the form
``"{{ fix_crl_<option> }}"`` cost about 29 ms of controller CPU per host, a third of Ansible's whole work around a
``raw`` task (docs/performance.md). The variables' values are mostly plain (role defaults, inventory lists and
numbers); templating only the values skips the templates that merely name a variable. The values are then
validated against the module's argument spec exactly as task arguments are.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleError, AnsibleValueOmittedError


def options_from_variables(prefix: str, names: t.Iterable[str], variables: t.Mapping[str, t.Any],
                           template: t.Callable[[t.Any], t.Any]) -> tuple[dict[str, t.Any], list[str]]:
    """``{option: templated value of <prefix><option>}`` for every defined variable, and the errors.

    An undefined variable leaves its option out (the module's default applies), as does one that templates to
    ``omit``. A value that does not template is an error naming the variable and Ansible's message; the other
    options are still read, so that the host's failed record honours ``fail_host`` and ``result_detail``.
    """
    options: dict[str, t.Any] = {}
    errors: list[str] = []
    for name in names:
        variable = prefix + name
        if variable not in variables:
            continue
        try:
            options[name] = template(variables[variable])
        except AnsibleValueOmittedError:
            continue
        except AnsibleError as exc:
            errors.append(f"{variable}: {exc.message}")
    return options, errors


__all__ = ["options_from_variables"]
