"""host_audit's ``evidence`` part, as ``_ps1/_evidence.ps1`` builds it (docs/dev/host-scripts.md, host_audit).

Mirrors ``Get-CrlfixEvidence`` step for step over the twin's event logs (``tests/twin/event_logs.py``), its
ChainEngine keys (``chain_engine``: the policy key, ``chain_engine_config``: the non-policy key) and the fix marker
(``registry.crlfix.FixedAt``), the Group Policy Preferences items of its Group Policy history that write WinHttpSettings
(``group_policy_history``) and the root auto-update policy (``auth_root_policy``), all by the host's own clock
(``clock_offset_s``). One difference: the twin's events carry no insertion strings, so a Service Control
Manager event is "about" a service when its message names it (Windows: one of ``$event.Properties`` equals it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree

from tests.twin import event_logs
from tests.twin.scripts import ScriptError
from tests.twin.state import HostState

AUTH_ROOT_VALUES = ["DisableRootAutoUpdate", "EnableDisallowedCertAutoUpdate"]  # _evidence.ps1 $CrlfixAuthRootValues


def _marker(state: HostState, now: dt.datetime, write: bool) -> dict[str, Any]:
    with state.lock:
        registry = state.data.setdefault("registry", {})
        previous = (registry.get("crlfix") or {}).get("FixedAt")
        fixed_at = previous
        if write:
            fixed_at = event_logs.iso(now)
            registry["crlfix"] = {"FixedAt": fixed_at}
            state.save()
    return {"previous": previous, "fixed_at": fixed_at, "written": write}


def _registry_values(values: dict[str, Any] | None, names: list[str]) -> dict[str, Any]:
    present = values is not None
    values = values or {}
    return {"present": present,
            "values": {name: (values[name] if isinstance(values.get(name), int) else
                              None if values.get(name) is None else str(values[name])) for name in names}}


def _about_service(event: dict[str, Any], names: list[str]) -> bool:
    message = str(event.get("message", "")).lower()
    return any(name.lower() in message for name in names)


def _count(groups: dict[tuple, dict[str, Any]], event: dict[str, Any], log: str, window_start: dt.datetime,
           fixed_at: dt.datetime | None, hours: int, chars: int) -> None:
    time = event_logs.parse_time(event["time"])
    key = (log, str(event["provider"]), int(event["id"]))
    group = groups.setdefault(key, {"log": log, "provider": key[1], "id": key[2], "count": 0, "first": None,
                                    "last": None, "message": None, "before": None, "since": None, "hours": {}})
    if fixed_at is not None:
        if group["before"] is None:
            group["before"] = group["since"] = 0
        if time >= fixed_at:
            group["since"] += 1
        elif time >= fixed_at - dt.timedelta(hours=hours):
            group["before"] += 1
    hour = time.strftime("%Y-%m-%dT%H:00:00Z")
    group["hours"][hour] = group["hours"].get(hour, 0) + 1
    if time < window_start:
        return
    group["count"] += 1
    if group["first"] is None or time < group["first"]:
        group["first"] = time
    if group["last"] is None or time > group["last"]:
        group["last"] = time
        text = " ".join(str(event.get("message") or "").split())
        group["message"] = text[:chars] or "(no message text: the provider has no message table here)"


def _gpp_winhttp_items(state: HostState) -> tuple[list[dict[str, Any]], str | None]:
    """``Get-CrlfixGppWinHttpItems``: the Registry items of each GPO's history copy that write WinHttpSettings under
    ``...\\Internet Settings\\Connections`` (names and keys compared case-insensitively, as ``-ne``/``-like``), not
    disabled; (items, None), or ([], the error) when a file does not parse (the twin's text: .NET's differs)."""
    items: list[dict[str, Any]] = []
    for guid, gpo in (state.data.get("group_policy_history") or {}).items():
        text = (gpo or {}).get("registry_xml")
        if text is None:
            continue  # this GPO's history has no Registry.xml
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            return [], f"Registry.xml of {guid} is not XML: {exc}"
        for item in root.iter("Registry"):
            properties = item.find("Properties")
            if properties is None or item.get("disabled") == "1":
                continue
            key = properties.get("key") or ""
            if (properties.get("name") or "").casefold() != "winhttpsettings" or not key.casefold().endswith(
                    "\\internet settings\\connections"):
                continue
            items.append({"gpo": guid, "gpo_name": gpo.get("display_name"), "action": properties.get("action") or "",
                          "hive": properties.get("hive") or "", "key": key, "name": properties.get("name"),
                          "type": properties.get("type") or "", "value": properties.get("value") or "",
                          "changed": item.get("changed") or ""})
    return items, None


def evidence(state: HostState, spec: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ScriptError(f"argument 'evidence': expected an object or null, got {spec!r}")
    now = state.now()  # the host's clock: a host hours off reports its own time, and stamps its marker with it
    hours = int(spec.get("hours") or 24)
    max_events = int(spec.get("max_events") or 200)
    chars = int(spec.get("message_chars") or 300)
    marker = _marker(state, now, bool(spec.get("mark")))
    fixed_at = event_logs.parse_time(marker["fixed_at"]) if marker["fixed_at"] else None
    window_start = now - dt.timedelta(hours=hours)
    read_start = window_start
    if fixed_at is not None and fixed_at - dt.timedelta(hours=hours) < read_start:
        read_start = fixed_at - dt.timedelta(hours=hours)
    names = [str(name) for name in spec.get("services") or [] if name]
    for service in state.data.get("services") or []:
        if isinstance(service, dict) and service.get("name") in names and service.get("display_name"):
            names.append(str(service["display_name"]))
    groups: dict[tuple, dict[str, Any]] = {}
    queries, logs = [], {}
    for query in spec.get("queries") or []:
        log = str(query["log"])
        if log not in logs:
            logs[log] = {"log": log, **event_logs.list_log(state, log), "error": None}
        status, error, hits = "ok", None, []
        try:
            hits = event_logs.get_win_event(state, log, ids=[int(i) for i in query["ids"]], start=read_start,
                                            max_events=max_events, provider=query.get("provider"),
                                            levels=query.get("levels"))
        except event_logs.NoMatchingLogsFound as exc:
            status, error = "no_log", str(exc)
        except event_logs.Denied as exc:
            status, error = "denied", str(exc)
        counted = 0
        for event in hits:
            if query.get("services") and not _about_service(event, names):
                continue
            _count(groups, event, log, window_start, fixed_at, hours, chars)
            counted += 1
        queries.append({"log": log, "provider": query.get("provider"), "status": status, "error": error,
                        "read": len(hits), "counted": counted, "truncated": len(hits) >= max_events})
    events = []
    for group in groups.values():
        for key in ("first", "last"):
            if group[key] is not None:
                group[key] = event_logs.iso(group[key])
        events.append(group)
    names_wanted = [str(name) for name in spec.get("chain_engine") or []]
    chain_engine = None
    if names_wanted:
        chain_engine = {"policy": _registry_values(state.data.get("chain_engine"), names_wanted),
                        "config": _registry_values(state.data.get("chain_engine_config"), names_wanted)}
    enabled_log = None
    if spec.get("enable_log"):
        log = str(spec["enable_log"])
        state_now = event_logs.list_log(state, log)
        enabled_log = {"log": log, "previous": state_now["enabled"], "enabled": None, "error": None}
        if state_now["exists"]:
            event_logs.set_enabled(state, log, True)
            enabled_log["enabled"] = True
        else:
            enabled_log["error"] = f'There is not an event log on the localhost computer that matches "{log}".'
    gpp, gpp_error = _gpp_winhttp_items(state)
    return {"now": event_logs.iso(now), "hours": hours, "window_start": event_logs.iso(window_start),
            "read_start": event_logs.iso(read_start), "marker": marker, "logs": list(logs.values()),
            "queries": queries, "events": events, "chain_engine": chain_engine, "enabled_log": enabled_log,
            "gpp_registry": gpp, "gpp_registry_error": gpp_error,
            "root_autoupdate": _registry_values(state.data.get("auth_root_policy"), AUTH_ROOT_VALUES)["values"]}
