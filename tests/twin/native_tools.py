"""``reg query`` of the WinHTTP keys, ``certutil -urlcache``, ``hostname``: the other Windows tools modelled.

reg.exe output layout (blank line, key, ``    <name>    REG_BINARY    <HEX>``, blank line) and its error text
"ERROR: The system was unable to find the specified registry key or value." follow reg.exe's documented
behaviour (Microsoft Learn "reg query"). certutil's URL-cache text is modelled on certutil's
``-URLCache`` output; the per-entry lines are simplified (see README).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.twin.state import HostState

CONNECTIONS_NATIVE = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
CONNECTIONS_WOW = (
    r"HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
)
REG_NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value.\n"
# certutil exits with the HRESULT; WinRS reports it as an unsigned 32-bit exit code.
E_INVALIDARG_EXIT = 0x80070057
REG_INVALID = 'ERROR: Invalid syntax.\nType "REG QUERY /?" for usage.\n'


@dataclass
class ToolResult:
    stdout: str
    stderr: str
    rc: int


def _normalise_key(key: str) -> str:
    key = key.rstrip("\\")
    upper = key.upper()
    for short, full in (("HKLM\\", "HKEY_LOCAL_MACHINE\\"), ("HKLM:\\", "HKEY_LOCAL_MACHINE\\")):
        if upper.startswith(short):
            return full + key[len(short) :]
    return key


def reg(state: HostState, args: list[str], wow_process: bool) -> ToolResult:
    """``reg query <key> [/v WinHttpSettings] [/reg:32|/reg:64]``; only the two WinHTTP keys exist here."""
    if not args or args[0].lower() != "query" or len(args) < 2:
        return ToolResult("", REG_INVALID, 1)
    key = _normalise_key(args[1])
    value_name: str | None = None
    view_flag: str | None = None
    rest = args[2:]
    i = 0
    while i < len(rest):
        flag = rest[i].lower()
        if flag == "/v" and i + 1 < len(rest):
            value_name = rest[i + 1]
            i += 2
        elif flag in ("/reg:32", "/reg:64"):
            view_flag = flag
            i += 1
        else:
            return ToolResult("", REG_INVALID, 1)
    if key.lower() == CONNECTIONS_WOW.lower():
        view = "wow6432"
    elif key.lower() == CONNECTIONS_NATIVE.lower():
        # A 32-bit reg.exe (or /reg:32) is redirected to WOW6432Node, like any 32-bit process.
        view = "wow6432" if (view_flag == "/reg:32" or (wow_process and view_flag != "/reg:64")) else "native"
    else:
        return ToolResult("", REG_NOT_FOUND, 1)
    if view == "wow6432" and not state.is_64bit:
        return ToolResult("", REG_NOT_FOUND, 1)
    value = state.winhttp_value(view)
    if value_name is not None and value_name.lower() != "winhttpsettings":
        return ToolResult("", REG_NOT_FOUND, 1)
    if value is None and value_name is not None:
        return ToolResult("", REG_NOT_FOUND, 1)
    lines = ["", key]
    if value is not None:
        lines.append(f"    WinHttpSettings    REG_BINARY    {value.hex().upper()}")
    lines.append("")
    return ToolResult("\n".join(lines) + "\n", "", 0)


def certutil(state: HostState, args: list[str]) -> ToolResult:
    """``certutil -urlcache [* delete]``: list or purge the CryptoAPI URL cache kept in the state."""
    lowered = [a.lower() for a in args]
    if lowered[:1] not in (["-urlcache"], ["/urlcache"]):
        verb = args[0] if args else ""
        return ToolResult(f"CertUtil: Unknown arg: {verb}\n", "", E_INVALIDARG_EXIT)
    entries = list(state.data.get("url_cache", []))
    lines: list[str] = []
    if lowered[1:] in ([], ["*"]):
        for entry in entries:
            lines.append(entry.get("url", ""))
        lines.append(f"WinHttp Cache entries: {len(entries)}")
        lines.append("CertUtil: -URLCache command completed successfully.")
        return ToolResult("\n".join(lines) + "\n", "", 0)
    if lowered[1:] == ["*", "delete"]:
        for entry in entries:
            lines.append(f"{entry.get('url', '')}")
            lines.append("  Deleted")
        lines.append(f"WinHttp Cache entries: {len(entries)}")
        lines.append("CertUtil: -URLCache command completed successfully.")
        state.data["url_cache"] = []
        state.data["counters"]["urlcache_deletes"] = int(state.data["counters"].get("urlcache_deletes", 0)) + 1
        state.save()
        return ToolResult("\n".join(lines) + "\n", "", 0)
    return ToolResult(
        "CertUtil: -URLCache command FAILED: 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)\n"
        "CertUtil: The parameter is incorrect.\n",
        "",
        E_INVALIDARG_EXIT,
    )


def hostname(state: HostState, args: list[str]) -> ToolResult:
    if args:
        return ToolResult("", "sethostname: Use the Network Control Panel Applet to set hostname.\n", 1)
    return ToolResult(state.data["hostname"] + "\n", "", 0)
