"""``netsh winhttp`` as the twin models it, over the host state.

Sources: Microsoft Learn "Netsh Commands for Windows Hypertext Transfer Protocol (WINHTTP)" for syntax;
windows-facts.md "netsh winhttp" for the English output layout (blank lines and 4-space indent matter);
windows-facts.md "The WinHTTP proxy value" for the registry bytes. Each netsh binary writes its own view:
``%windir%\\System32\\netsh.exe`` the native view, ``%windir%\\SysWOW64\\netsh.exe`` the WOW6432Node view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.twin import winhttp_value
from tests.twin.state import HostState

ADVPROXY_MIN_BUILD = 20348

# Abbreviated netsh help for `set proxy`, printed when the arguments do not parse (Microsoft Learn netsh
# winhttp reference, "set proxy" syntax and examples; the exact help layout is not verified).
SET_PROXY_USAGE = (
    "\n"
    "Usage:  set proxy [proxy-server=]<server name> [bypass-list=]<hosts list>\n"
    "\n"
    "Parameters:\n"
    "\n"
    "  Tag              Value\n"
    "  proxy-server   - proxy server for use for http and/or https protocol\n"
    "  bypass-list    - a list of sites that should be visited bypassing the\n"
    '                   proxy (use "<local>" to bypass all short name hosts)\n'
    "\n"
    "Examples:\n"
    "\n"
    "  set proxy myproxy\n"
    '  set proxy myproxy:80 "<local>;bar"\n'
    '  set proxy proxy-server="http=myproxy;https=sproxy:88" bypass-list="*.foo.com"\n'
    "\n"
)

# Twin's choice (no recorded Windows output found): text when `import proxy source=ie` has no IE settings.
IMPORT_NO_IE_TEXT = "\nError updating proxy settings\n\nElement not found.\n\n"


@dataclass
class NetshResult:
    stdout: str
    rc: int


def show_text(value: bytes | None) -> str:
    """Body of `show proxy` (also echoed by `set`/`reset`/`import`); a missing value reads as direct access."""
    lines = ["", "Current WinHTTP proxy settings:", ""]
    settings = None
    if value is not None:
        try:
            settings = winhttp_value.decode(value)
        except ValueError:
            settings = None
    if settings is None or settings.is_direct:
        lines.append("    Direct access (no proxy server).")
    else:
        lines.append(f"    Proxy Server(s) :  {settings.proxy}")
        lines.append(f"    Bypass List     :  {settings.bypass or '(none)'}")
    lines.append("")
    return "\n".join(lines) + "\n"


def advproxy_text(value: bytes | None) -> str:
    """`show advproxy` (build 20348+): JSON reflecting the classic value; exact layout is NOT verified."""
    proxy, bypass = "", ""
    if value is not None:
        try:
            settings = winhttp_value.decode(value)
            if not settings.is_direct:
                proxy, bypass = settings.proxy, settings.bypass
        except ValueError:
            pass
    doc = {
        "ProxyIsEnabled": bool(proxy),
        "Proxy": proxy,
        "ProxyBypass": bypass,
        "AutoconfigIsEnabled": False,
        "AutoconfigUrl": "",
        "AutoDetect": False,
    }
    return "\nCurrent WinHTTP advanced proxy settings:\n\n" + json.dumps(doc, indent="\t") + "\n\n"


def run(state: HostState, args: list[str], view: str) -> NetshResult:
    """Run ``netsh <args>`` with the netsh of ``view`` ("native" or "wow6432")."""
    words = [a.lower() for a in args]
    if len(words) >= 3 and words[0] == "winhttp":
        verb, noun = words[1], words[2]
        rest = args[3:]
        if (verb, noun) == ("show", "proxy") and not rest:
            return NetshResult(show_text(state.winhttp_value(view)), 0)
        if (verb, noun) == ("show", "advproxy") and state.os_build >= ADVPROXY_MIN_BUILD:
            return NetshResult(advproxy_text(state.winhttp_value(view)), 0)
        if (verb, noun) == ("set", "proxy"):
            return _set_proxy(state, rest, view)
        if (verb, noun) == ("reset", "proxy") and not rest:
            return _write(state, view, "", "")
        if (verb, noun) == ("import", "proxy"):
            return _import_ie(state, rest, view)
    # netsh's own text for an unknown command in the current context.
    return NetshResult(f"The following command was not found: {' '.join(args)}.\n", 1)


def _set_proxy(state: HostState, args: list[str], view: str) -> NetshResult:
    proxy: str | None = None
    bypass = ""
    positional: list[str] = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lower() == "proxy-server":
            proxy = value
        elif sep and key.lower() == "bypass-list":
            bypass = value
        else:
            positional.append(arg)
    if positional:
        if proxy is None:
            proxy = positional.pop(0)
        if positional:
            bypass = positional.pop(0)
    if not proxy or positional:
        return NetshResult(SET_PROXY_USAGE, 1)
    try:
        proxy.encode("ascii")
        bypass.encode("ascii")
    except UnicodeEncodeError:
        return NetshResult(SET_PROXY_USAGE, 1)
    return _write(state, view, proxy, bypass)


def _import_ie(state: HostState, args: list[str], view: str) -> NetshResult:
    if [a.lower() for a in args] != ["source=ie"]:
        return NetshResult(f"The following command was not found: winhttp import proxy {' '.join(args)}.\n", 1)
    ie = state.data.get("ie_proxy")
    if not ie:
        return NetshResult(IMPORT_NO_IE_TEXT, 1)
    return _write(state, view, ie.get("proxy") or "", ie.get("bypass") or "")


def _write(state: HostState, view: str, proxy: str, bypass: str) -> NetshResult:
    counter = winhttp_value.next_counter(state.winhttp_value(view))
    value = winhttp_value.encode(counter, proxy, bypass)
    state.data["counters"]["netsh_writes"] = int(state.data["counters"].get("netsh_writes", 0)) + 1
    state.set_winhttp_value(view, value)  # writes through to disk before returning
    return NetshResult(show_text(value), 0)
