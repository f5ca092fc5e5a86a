# PRIVATE to the crlfix.windows collection; may change without notice.
"""The logic of ``winhttp_proxy_info`` and ``winhttp_proxy``: read, compare, plan, apply, verify.

Host side (``_ps1/_common.ps1``, ``winhttp_state.ps1``, ``winhttp_apply.ps1``; contract in
docs/dev/host-scripts.md):

* Registry views are opened with ``RegistryKey.OpenBaseKey(LocalMachine, Registry64|Registry32)``, never
  through ``HKLM:\\SOFTWARE\\WOW6432Node``, so a 32-bit shell cannot be redirected to the wrong view.
* Each view is written by its own netsh: ``System32`` for ``native`` (``Sysnative`` when the shell itself is
  32-bit on a 64-bit OS, because ``System32`` would be redirected) and ``SysWOW64`` for ``wow6432``.
* netsh gets each value as one separate argument (``proxy-server=<proxy>``, ``bypass-list=<bypass>``) without
  quotes: the values were validated here and contain no whitespace or quotes, so netsh needs none, and no
  value is ever parsed as PowerShell. ``$ErrorActionPreference`` is ``Continue`` around native calls so that
  netsh's stderr becomes output, not a terminating error.
* Non-ASCII characters in the JSON document are escaped as ``\\uXXXX`` so that the console code page
  cannot garble them on the way back.
* ``winhttp_apply`` (schema 2) is a compare and swap: every operation carries ``expect_b64``, the value the
  plan was made from; the host checks them all before the first write and writes nothing when one differs
  (a Group Policy refresh or another tool wrote in between). That is what makes planning from values read
  one command earlier (``current``) as safe as reading here.
* The scripts are kept small (``_common`` + ``winhttp_apply`` about 3,000 characters); with its arguments
  an apply goes over stdin (``_host/_powershell.py``), still one remote command.

Controller side: the state read from the host and its comparisons are ``_winhttp_state.py``; this module decides
the operations per view, applies them in one round trip and checks the read-back.
"""

from __future__ import annotations

import base64
import typing as t
from dataclasses import dataclass

from ansible.utils.display import Display

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import (
    ProxyValueError,
    bypass_key,
    proxy_from_dict,
    proxy_key,
    split_bypass,
    validate_bypass,
    validate_proxy,
)
from ansible_collections.crlfix.windows.plugins.module_utils._winhttp_settings import (
    VERSION_NETSH,
    WinHttpSettingsError,
    build_winhttp_settings,
    next_counter,
    parse_winhttp_settings,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import (
    VIEWS,
    HostState,
    ViewValue,
    b64_value,
    current_from_args,
    parse_state,
    proxy_info,
)

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

display = Display()

NETSH = {"native": r"%windir%\System32\netsh.exe", "wow6432": r"%windir%\SysWOW64\netsh.exe"}
REG_PATH = {
    "native": r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
    "wow6432": r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
}


def gather_winhttp_proxy_info(connection: ConnectionBase, *, task_action: str) -> dict[str, t.Any]:
    """``winhttp_proxy_info``: one ``winhttp_state`` round trip, decoded."""
    state = parse_state(run_host_script(connection, "winhttp_state", {}, task_action=task_action))
    return {"changed": False, **proxy_info(state)}


@dataclass(frozen=True)
class Desired:
    """What the task asks for: ``present`` (proxy + bypass) or ``absent`` (direct access).

    ``source`` is ``ie`` when the values are the connecting user's IE settings as read from the host; the views
    are then written with ``netsh winhttp import proxy source=ie``, not with the values themselves.
    """

    state: str
    proxy: str = ""
    bypass: tuple[str, ...] = ()
    source: str | None = None

    def effective(self) -> tuple[t.Any, ...]:
        if self.state == "absent":
            return ("direct",)
        return ("proxy", proxy_key(self.proxy), bypass_key(self.bypass))


class MissingProxyError(ValueError):
    """``bypass`` without a proxy; the text is Ansible's ``required_by`` message, as win_http_proxy gives it."""


def _proxy_text(proxy: t.Any) -> str:
    """The ``proxy`` option as one string: a dict becomes per-scheme entries (win_http_proxy's order), None ''."""
    if proxy is None:
        return ""
    if isinstance(proxy, dict):
        return proxy_from_dict(proxy)
    if isinstance(proxy, str):
        return proxy.strip(" ")
    raise ProxyValueError(f"proxy: expected a string like 'proxy.example.com:8080' or a dict of schemes, got {proxy!r}")


def desired_from_args(args: t.Mapping[str, t.Any]) -> Desired:
    """Validate ``state``/``proxy``/``bypass``; errors name the option and the value.

    Without ``state`` the meaning is ansible.windows.win_http_proxy's: a proxy sets it, no proxy (left out, null or
    ``''``) means direct access. An explicit ``state=present`` still requires a proxy. ``source: ie`` is resolved by
    :func:`desired_from_ie` once the host's IE settings are read.
    """
    state = args.get("state")
    proxy = _proxy_text(args.get("proxy"))
    bypass = args.get("bypass") or []
    if state == "absent":
        if proxy or bypass:
            raise ValueError("proxy and bypass cannot be used with state=absent (direct access has neither)")
        return Desired(state="absent")
    if not proxy:
        if bypass:
            raise MissingProxyError("missing parameter(s) required by 'bypass': proxy")
        if state == "present":
            raise ValueError("proxy is required with state=present (or use state=absent, source=ie or restore)")
        return Desired(state="absent")
    return Desired(state="present", proxy=validate_proxy(proxy), bypass=tuple(validate_bypass(bypass)))


def desired_from_ie(ie_proxy: t.Any) -> Desired:
    """``source: ie``: the connecting user's IE settings as ``winhttp_state`` read them (``ie_proxy``).

    A proxy that is not enabled, or no settings at all, means direct access: what WinHttpGetIEProxyConfigForCurrentUser
    returns then has no proxy, and win_http_proxy writes direct access. The values are compared leniently and never
    pasted into a command: the write is ``netsh winhttp import proxy source=ie`` itself.
    """
    if ie_proxy is not None and not isinstance(ie_proxy, dict):
        raise ValueError(f"host script winhttp_state: 'ie_proxy' must be an object or null, got {ie_proxy!r:.120}")
    ie_proxy = ie_proxy or {}
    server = ie_proxy.get("proxy_server")
    if not ie_proxy.get("proxy_enable") or not isinstance(server, str) or not server.strip():
        return Desired(state="absent", source="ie")
    override = ie_proxy.get("proxy_override")
    return Desired(state="present", proxy=server.strip(), source="ie",
                   bypass=tuple(split_bypass(override if isinstance(override, str) else "")))


def restore_from_args(restore: t.Any) -> dict[str, bytes | None]:
    """Validate ``restore`` (view -> base64 or null); every value must decode as ``WinHttpSettings``."""
    if not isinstance(restore, dict) or not restore:
        raise ValueError(f"restore must map one or more of {', '.join(VIEWS)} to base64 or null, got {restore!r:.80}")
    result: dict[str, bytes | None] = {}
    for view, value in restore.items():
        if view not in VIEWS:
            raise ValueError(f"restore: unknown view {view!r}; expected {' or '.join(VIEWS)}")
        if value is None:
            result[view] = None
            continue
        raw = b64_value(value, f"restore.{view}")
        try:
            parse_winhttp_settings(raw)
        except WinHttpSettingsError as exc:
            raise ValueError(f"restore.{view}: refusing to write a malformed value: {exc}") from None
        result[view] = raw
    return result


def plan_operations(before: HostState, views: t.Sequence[str], *, desired: Desired | None,
                    restore: t.Mapping[str, bytes | None] | None) -> list[dict[str, t.Any]]:
    """The ``winhttp_apply`` operations (contract shape) for every view whose value differs, in view order."""
    operations: list[dict[str, t.Any]] = []
    for view in views:
        current = before.views[view]
        if current is None:
            continue
        if restore is not None:
            raw = restore[view]
            if current.raw != raw:  # byte-exact: a restore also puts back the counter
                operations.append({"view": view, "action": "restore",
                                   "value_b64": None if raw is None else base64.b64encode(raw).decode("ascii")})
        elif desired is not None and current.effective() != desired.effective():
            if desired.state == "absent":
                operations.append({"view": view, "action": "reset"})
            else:
                # source=ie: netsh copies the IE settings itself; proxy/bypass are what it is expected to write.
                operations.append({"view": view, "action": "import" if desired.source == "ie" else "set",
                                   "proxy": desired.proxy, "bypass": ";".join(desired.bypass)})
    return operations


def _describe_operation(op: dict[str, t.Any]) -> str:
    view, action = op["view"], op["action"]
    if action == "set":
        bypass = f' bypass-list="{op["bypass"]}"' if op["bypass"] else ""
        return f'{NETSH[view]} winhttp set proxy proxy-server="{op["proxy"]}"{bypass}'
    if action == "reset":
        return f"{NETSH[view]} winhttp reset proxy"
    if action == "import":
        return f"{NETSH[view]} winhttp import proxy source=ie"
    if op["value_b64"] is None:
        return rf"delete {REG_PATH[view]}\WinHttpSettings"
    return rf"write {REG_PATH[view]}\WinHttpSettings (REG_BINARY, {len(base64.b64decode(op['value_b64']))} bytes)"


def _predict(op: dict[str, t.Any], current: ViewValue) -> ViewValue:
    """The value an operation leaves behind (check mode); netsh-written bytes are not known exactly."""
    if op["action"] == "restore":
        return ViewValue.from_raw(None if op["value_b64"] is None else base64.b64decode(op["value_b64"]))
    version = current.settings.version if current.settings else VERSION_NETSH
    settings = build_winhttp_settings(proxy=op.get("proxy", ""), bypass=op.get("bypass", ""),
                                      counter=next_counter(current.settings), version=version)
    return ViewValue(present=True, raw=None, settings=settings)


def _diff_text(state: dict[str, ViewValue | None]) -> str:
    lines = []
    for view, value in state.items():
        if value is None:
            continue
        s = value.summary()
        text = f"error {value.error}" if value.error else s["mode"]
        if s["mode"] == "proxy":
            text += f" {s['proxy']}" + (f" bypass={';'.join(s['bypass'])}" if s["bypass"] else "")
        lines.append(f"{view}: {text}{'' if value.present else ' (no value)'}")
    return "\n".join(lines) + "\n"


def _expect(value: ViewValue | None) -> str | None:
    return None if value is None or value.raw is None else base64.b64encode(value.raw).decode("ascii")


def _conflict_message(conflicts: list[t.Any], wrote: bool) -> str:
    """The expected failure of a compare-and-swap that found another value than the plan was made from."""
    parts = []
    for entry in conflicts:
        entry = entry if isinstance(entry, dict) else {}
        expected, found = (entry.get(key) or "no value" for key in ("expected_b64", "found_b64"))
        parts.append(f"WinHttpSettings in view {entry.get('view')} changed since it was read "
                     f"(expected {expected}, found {found})")
    return "; ".join(parts) + ("; the host ran operations anyway" if wrote else "; nothing was written")


def manage_winhttp_proxy(connection: ConnectionBase, args: t.Mapping[str, t.Any], *, check_mode: bool, diff: bool,
                         task_action: str, current: HostState | None = None) -> dict[str, t.Any]:
    """``winhttp_proxy``: plan per view, apply and read back in one round trip unless unchanged.

    Without ``current`` the host is read first (``winhttp_state``, one more round trip). With it (values the
    caller read earlier, see :func:`state_from_raw`) nothing is read: check mode runs no remote command at
    all. Either way every operation carries ``expect_b64`` (``winhttp_apply`` schema 2), so a value that
    changed since it was read (another tool, a Group Policy refresh) makes the host write nothing and this
    function fail with the full result.
    """
    restore = restore_from_args(args["restore"]) if args.get("restore") is not None else None
    from_ie = restore is None and args.get("source") == "ie"
    desired = None if restore is not None or from_ie else desired_from_args(args)
    if from_ie and args.get("state") == "absent":
        raise ValueError("source=ie cannot be used with state=absent")
    asked = VIEWS if args.get("views") is None else args["views"]
    wanted_views = list(restore) if restore is not None else [view for view in VIEWS if view in asked]
    if not wanted_views:
        raise ValueError("views must name at least one of native, wow6432")

    if current is None and args.get("current") is not None:
        current = current_from_args(args["current"])
    before = current
    if from_ie:  # the IE settings are the connecting user's: read in the same command as the views
        document = run_host_script(connection, "winhttp_state", {"include_ie_proxy": True}, task_action=task_action)
        before, desired = parse_state(document), desired_from_ie(document.get("ie_proxy"))
    elif before is None:
        before = parse_state(run_host_script(connection, "winhttp_state", {}, task_action=task_action))
    views = [v for v in wanted_views if before.views[v] is not None]
    if restore is not None and len(views) < len(wanted_views):
        raise ValueError("restore names view wow6432, which a 32-bit Windows does not have"
                         + (" (current leaves it out)" if current is not None else ""))
    operations = plan_operations(before, views, desired=desired, restore=restore)
    display.vvv(f"{task_action}: {len(operations)} operation(s) planned for views {views}")

    result: dict[str, t.Any] = {
        "changed": bool(operations),
        "before": {view: (value.summary() if value else None) for view, value in before.views.items()},
        "previous_raw": {view: t.cast(ViewValue, before.views[view]).summary()["raw_b64"] for view in views},
        "operations": [{**op, "command": _describe_operation(op)} for op in operations],
    }
    after_views = dict(before.views)
    conflicts: list[t.Any] = []
    if operations and check_mode:
        for op in operations:
            after_views[op["view"]] = _predict(op, t.cast(ViewValue, before.views[op["view"]]))
    elif operations:
        sent = [{**op, "expect_b64": _expect(before.views[op["view"]])} for op in operations]
        document = run_host_script(connection, "winhttp_apply", {"operations": sent}, task_action=task_action)
        after_views = dict(parse_state(document, script="winhttp_apply").views)
        ran = document.get("results") if isinstance(document.get("results"), list) else []
        for entry, ran_op in zip(result["operations"], ran, strict=False):
            if isinstance(ran_op, dict):
                entry.update(rc=ran_op.get("rc"), output=ran_op.get("output"))
        result["changed"] = any(isinstance(r, dict) and r.get("rc") == 0 for r in ran)
        conflicts = document.get("conflicts") if isinstance(document.get("conflicts"), list) else []  # schema 1: none
    # Predicted netsh writes carry no raw bytes (version and counter are the host's business): raw_b64 is null.
    result["after"] = {view: (value.summary() if value else None) for view, value in after_views.items()}
    result["views_disagree"] = len({v.effective() for v in after_views.values() if v is not None}) > 1
    if diff:
        result["diff"] = {"before": _diff_text(before.views), "after": _diff_text(after_views),
                          "before_header": "WinHttpSettings (before)", "after_header": "WinHttpSettings (after)"}
    if operations and not check_mode:
        if conflicts:
            result["conflicts"] = conflicts
            raise ExpectedFailure(_conflict_message(conflicts, bool(ran)), **result)
        _verify(result, operations, after_views, desired, restore)
    return result


def _verify(result: dict[str, t.Any], operations: list[dict[str, t.Any]], after: dict[str, ViewValue | None],
            desired: Desired | None, restore: dict[str, bytes | None] | None) -> None:
    """Fail (with the full result) unless every operation ran and every view now holds what was asked."""
    for entry in result["operations"]:
        if entry.get("rc") != 0:
            detail = (entry.get("output") or "not run").strip()
            raise ExpectedFailure(f"{entry['action']} on view {entry['view']} failed (rc {entry.get('rc')}): {detail}",
                                  **result)
    for op in operations:
        value = after[op["view"]]
        ok = value is not None and (
            value.raw == restore[op["view"]] if restore is not None
            else value.effective() == t.cast(Desired, desired).effective()
        )
        if not ok:
            raise ExpectedFailure(f"view {op['view']} does not hold the requested setting after {op['action']}; "
                                  "a Group Policy or another tool may be rewriting it", **result)


__all__ = ["Desired", "MissingProxyError", "desired_from_args", "desired_from_ie", "gather_winhttp_proxy_info",
           "manage_winhttp_proxy", "plan_operations", "restore_from_args"]
