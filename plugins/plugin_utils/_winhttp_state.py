# PRIVATE to the crlfix.windows collection; may change without notice.
"""The WinHTTP proxy state of a host: both registry views' ``WinHttpSettings`` values, decoded and compared.

What ``winhttp_state`` (and ``winhttp_apply``'s read-back, and ``host_audit``'s winhttp part) answered, as a
:class:`HostState`; or values a caller read earlier (``current``, :func:`state_from_raw`). The ``WinHttpSettings``
value is the source of truth. Two values are *equal* when WinHTTP would act the same (see
``module_utils/_proxy_values.py``): an absent value and a direct-access value are both direct access; a proxy value
compares its proxy and bypass list normalised.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import typing as t
from dataclasses import dataclass

from ansible_collections.crlfix.windows.plugins.module_utils._netsh_winhttp import (
    ADVPROXY_FIELDS,
    NetshOutputError,
    parse_show_advproxy,
)
from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import bypass_key, proxy_key
from ansible_collections.crlfix.windows.plugins.module_utils._winhttp_settings import (
    WinHttpSettings,
    WinHttpSettingsError,
    parse_winhttp_settings,
)

VIEWS = ("native", "wow6432")
_UTC_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class ViewValue:
    """One registry view's ``WinHttpSettings``: absent, decoded, or present but undecodable (``error``)."""

    present: bool
    raw: bytes | None = None
    settings: WinHttpSettings | None = None
    error: str | None = None
    # When the view's Connections key was last written (RegQueryInfoKey: netsh's write of WinHttpSettings moves it; so
    # does any other value written or deleted under that key), aware UTC; None when the host could not read it or
    # the state was not read from a host (docs/dev/host-scripts.md, winhttp_state).
    last_write: dt.datetime | None = None

    @classmethod
    def from_raw(cls, raw: bytes | None, *, last_write: dt.datetime | None = None) -> ViewValue:
        if raw is None:
            return cls(present=False, last_write=last_write)
        try:
            return cls(present=True, raw=raw, settings=parse_winhttp_settings(raw), last_write=last_write)
        except WinHttpSettingsError as exc:
            return cls(present=True, raw=raw, error=str(exc), last_write=last_write)

    def effective(self) -> tuple[t.Any, ...]:
        """What WinHTTP acts on; equal tuples mean equal behaviour."""
        if self.error is not None:
            return ("invalid", self.raw)
        if self.settings is None or self.settings.mode == "direct":
            return ("direct",)
        return ("proxy", proxy_key(self.settings.proxy), bypass_key(self.settings.bypass))

    def summary(self) -> dict[str, t.Any]:
        """``present``, ``mode``, ``proxy``, ``bypass`` (list), ``raw_b64`` (null when absent or only predicted)."""
        settings = self.settings
        return {
            "present": self.present,
            "mode": None if self.error else (settings.mode if settings else "direct"),
            "proxy": settings.proxy if settings else ("" if not self.error else None),
            "bypass": settings.bypass_list if settings else [],
            "raw_b64": base64.b64encode(self.raw).decode("ascii") if self.raw is not None else None,
        }

    def info(self) -> dict[str, t.Any]:
        """:meth:`summary` plus ``version``, ``counter``, ``flags`` and ``error`` (null when decoded)."""
        settings = self.settings
        return {
            **self.summary(),
            "version": settings.version if settings else None,
            "counter": settings.counter if settings else None,
            "flags": settings.flags if settings else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class HostState:
    """A decoded ``winhttp_state`` document (or the state part of a ``winhttp_apply`` document)."""

    computer_name: str
    os_build: int | None
    os_caption: str
    is_64bit: bool
    views: dict[str, ViewValue | None]
    advproxy: dict[str, t.Any] | None

    @property
    def views_disagree(self) -> bool:
        existing = [value.effective() for value in self.views.values() if value is not None]
        return len(set(existing)) > 1


def b64_value(value: t.Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected base64 text, got {value!r:.80}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"{where}: {value!r:.80} is not valid base64") from None


def parse_utc(value: t.Any, where: str) -> dt.datetime | None:
    """A host's ``yyyy-MM-ddTHH:mm:ssZ`` time (or null) as an aware UTC datetime; ValueError naming ``where``."""
    if value is None:
        return None
    if not isinstance(value, str) or not _UTC_TEXT.match(value):
        raise ValueError(f"{where}: expected a UTC time like 2026-11-26T03:57:40Z or null, got {value!r:.80}")
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def parse_state(document: t.Mapping[str, t.Any], *, script: str = "winhttp_state") -> HostState:
    """Decode the state keys of a host document; raises ValueError naming the bad key."""
    views_doc = document.get("views")
    if not isinstance(views_doc, dict) or not isinstance(views_doc.get("native"), dict):
        raise ValueError(f"host script {script}: 'views' must hold a 'native' object, got {views_doc!r:.120}")
    os_doc = document.get("os") if isinstance(document.get("os"), dict) else {}
    views: dict[str, ViewValue | None] = {}
    for view in VIEWS:
        entry = views_doc.get(view)
        if entry is None:
            views[view] = None
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("present"), bool):
            raise ValueError(f"host script {script}: views.{view} must be an object with a boolean 'present'")
        where = f"host script {script}: views.{view}.value_b64"
        last_write = parse_utc(entry.get("last_write"), f"host script {script}: views.{view}.last_write")
        views[view] = ViewValue.from_raw(b64_value(entry.get("value_b64"), where) if entry["present"] else None,
                                         last_write=last_write)
    build = os_doc.get("build")
    return HostState(
        computer_name=str(document.get("computer_name") or ""),
        os_build=build if isinstance(build, int) else None,
        os_caption=str(os_doc.get("caption") or "").strip(),
        is_64bit=bool(os_doc.get("is_64bit", views["wow6432"] is not None)),
        views=views,
        advproxy=document.get("advproxy") if isinstance(document.get("advproxy"), dict) else None,
    )


def state_from_raw(raw: t.Mapping[str, bytes | str | None], *, where: str = "current") -> HostState:
    """A :class:`HostState` from values the caller read earlier (no remote command).

    ``raw`` maps ``native`` (required) and ``wow6432`` (omitted on a 32-bit OS) to the value's bytes, its
    base64 text, or None for "no value". Computer name and OS are unknown (empty / None); ``advproxy`` is None.
    """
    unknown = sorted(set(raw) - set(VIEWS))
    if unknown:
        raise ValueError(f"{where}: unknown view {unknown[0]!r}; expected {' or '.join(VIEWS)}")
    if "native" not in raw:
        raise ValueError(f"{where}: the native view is required (only wow6432 may be left out, on a 32-bit OS)")
    views: dict[str, ViewValue | None] = {}
    for view in VIEWS:
        if view not in raw:
            views[view] = None
            continue
        value = raw[view]
        if isinstance(value, str):
            value = b64_value(value, f"{where}.{view}")
        elif value is not None and not isinstance(value, bytes):
            raise ValueError(f"{where}.{view}: expected base64 text or null, got {value!r:.80}")
        views[view] = ViewValue.from_raw(value)
    return HostState(computer_name="", os_build=None, os_caption="", is_64bit=views["wow6432"] is not None,
                     views=views, advproxy=None)


def current_from_args(current: t.Any) -> HostState:
    """Validate the ``current`` option into a :class:`HostState`.

    Accepted per view: base64 text or null ("no value"), as RV(previous_raw) gives them; or the view object
    of ``winhttp_proxy_info`` (``views.<view>``: ``present`` + ``raw_b64``), of ``cert_revocation_info``
    (``winhttp.views.<view>``: ``present`` + ``value_b64``) or of this module's RV(before). In the object form
    null means what those modules mean by it: the view does not exist (a 32-bit OS), so it is dropped.
    """
    if not isinstance(current, dict) or not current:
        raise ValueError(f"current must map native (and wow6432) to base64, null or a view object, got {current!r:.80}")
    if any(isinstance(value, dict) for value in current.values()):
        raw: dict[str, bytes | str | None] = {}
        for view, entry in current.items():
            if entry is None:
                continue
            where = f"current.{view}"
            if not isinstance(entry, dict) or not isinstance(entry.get("present"), bool):
                raise ValueError(f"{where}: expected a view object with a boolean 'present' (do not mix objects "
                                 f"with base64 text), got {entry!r:.80}")
            text = entry.get("raw_b64", entry.get("value_b64"))
            if entry["present"] and text is None:
                raise ValueError(f"{where}: present but without raw_b64/value_b64; a check-mode prediction is not "
                                 "a value that was read")
            raw[view] = text if entry["present"] else None
        return state_from_raw(raw)
    return state_from_raw(current)


def decode_advproxy(advproxy: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    """The ``advproxy`` return value: null below build 20348, else parsed settings plus ``rc``/``output``/``error``."""
    if advproxy is None:
        return None
    output = str(advproxy.get("output") or "")
    result: dict[str, t.Any] = {"rc": advproxy.get("rc"), "output": output, "error": None}
    try:
        result.update(parse_show_advproxy(output))
    except NetshOutputError as exc:
        result.update({key: None for key in ADVPROXY_FIELDS}, raw=None, error=str(exc))
    return result


def proxy_info(state: HostState) -> dict[str, t.Any]:
    """What ``winhttp_proxy_info`` returns for ``state`` (without ``changed``); host_audit's winhttp part too."""
    return {
        "computer_name": state.computer_name,
        "os_build": state.os_build,
        "is_64bit": state.is_64bit,
        "views": {view: (value.info() if value else None) for view, value in state.views.items()},
        "views_disagree": state.views_disagree,
        "advproxy": decode_advproxy(state.advproxy),
    }


__all__ = ["VIEWS", "HostState", "ViewValue", "b64_value", "current_from_args", "decode_advproxy", "parse_state",
           "parse_utc", "proxy_info", "state_from_raw"]
