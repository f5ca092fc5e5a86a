# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters crlfix.windows.winhttp_settings and crlfix.windows.winhttp_settings_value (docs in the .yml sidecars)."""

from __future__ import annotations

import base64
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import (
    split_bypass,
    validate_bypass,
    validate_proxy,
)
from ansible_collections.crlfix.windows.plugins.module_utils._winhttp_settings import (
    FLAG_ALWAYS,
    FLAG_PROXY,
    VERSION_NETSH,
    WinHttpSettings,
    bytes_to_reg_hex,
    encode_winhttp_settings,
    parse_winhttp_settings,
    value_to_bytes,
)


def winhttp_settings(data: t.Any, encoding: str = "auto") -> dict[str, t.Any]:
    """The ``WinHttpSettings`` value (base64, ``reg query`` hex, ``.reg`` hex or bytes) → its decoded dict."""
    try:
        return parse_winhttp_settings(value_to_bytes(data, encoding=encoding)).to_dict()
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"winhttp_settings: {exc}") from exc


def _int_option(name: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise AnsibleFilterError(f"winhttp_settings_value: {name} must be an integer from 0 to 4294967295, "
                                 f"got {value!r}")
    return value


def _settings_from(data: t.Any, overrides: dict[str, t.Any], validate: bool) -> WinHttpSettings:
    if data is None or data == "":
        fields: dict[str, t.Any] = {}
    elif isinstance(data, str):
        fields = {"proxy": data}
    elif isinstance(data, t.Mapping):
        fields = dict(data)
    else:
        raise AnsibleFilterError(f"winhttp_settings_value: input must be a dict, a proxy string or empty, "
                                 f"got {type(data).__name__}")
    fields.update({key: value for key, value in overrides.items() if value is not None})
    proxy = fields.get("proxy") or ""
    bypass = fields.get("bypass") or []
    entries = split_bypass(bypass) if isinstance(bypass, str) else bypass
    if not isinstance(proxy, str) or not isinstance(entries, (list, tuple)):
        raise AnsibleFilterError(f"winhttp_settings_value: proxy must be a string and bypass a list, got "
                                 f"{proxy!r} and {bypass!r}")
    if validate:
        if proxy:
            validate_proxy(proxy, field="winhttp_settings_value proxy")
        validate_bypass(list(entries), field="winhttp_settings_value bypass")
    mode = fields.get("mode")
    if mode not in (None, "direct", "proxy"):
        raise AnsibleFilterError(f"winhttp_settings_value: mode must be direct or proxy, got {mode!r}")
    if fields.get("flags") is not None:
        flags = _int_option("flags", fields["flags"])
        if mode is not None and (mode == "proxy") != bool(flags & FLAG_PROXY):
            raise AnsibleFilterError(f"winhttp_settings_value: mode {mode} contradicts flags {flags}")
    else:
        flags = FLAG_ALWAYS | (FLAG_PROXY if (mode == "proxy" or (mode is None and proxy)) else 0)
    if flags & FLAG_PROXY and not proxy:
        raise AnsibleFilterError("winhttp_settings_value: mode proxy needs a proxy")
    trailing = fields.get("trailing_b64") or ""
    return WinHttpSettings(
        version=_int_option("version", fields.get("version", VERSION_NETSH)),
        counter=_int_option("counter", fields.get("counter", 0)),
        flags=flags,
        proxy=proxy.strip(),
        bypass=";".join(entry.strip() for entry in entries),
        trailing=base64.b64decode(trailing, validate=True),
    )


def winhttp_settings_value(data: t.Any = None, proxy: str | None = None, bypass: t.Any = None,
                           counter: int | None = None, version: int | None = None,
                           validate: bool = True) -> dict[str, str]:
    """A decoded dict (or a proxy string) → the registry value as ``base64`` and ``reg add``-ready ``hex``."""
    try:
        settings = _settings_from(data, {"proxy": proxy, "bypass": bypass, "counter": counter, "version": version},
                                  validate)
        raw = encode_winhttp_settings(settings)
    except AnsibleFilterError:
        raise
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"winhttp_settings_value: {exc}") from exc
    return {"base64": base64.b64encode(raw).decode("ascii"), "hex": bytes_to_reg_hex(raw)}


class FilterModule:
    """WinHTTP proxy registry value filters of crlfix.windows."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"winhttp_settings": winhttp_settings, "winhttp_settings_value": winhttp_settings_value}
