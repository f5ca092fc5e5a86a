"""WPAD as a twin host meets it (tests/twin/README.md, "WPAD"): discovery, the PAC download, and what the PAC says.

Windows behaviour modelled here, each from its source (Microsoft Learn, "WinHTTP AutoProxy Functions",
WinHttpDetectAutoProxyConfigUrl, WinHttpGetProxyForUrl, "Error Messages (Winhttp.h)"):

- Discovery (``WinHttpDetectAutoProxyConfigUrl`` with DHCP and DNS_A) tries DHCP first, then DNS. DHCP: the host's
  option 252, ``state["wpad"]["dhcp_url"]`` (the lab runs no DHCP: none). DNS: ``http://wpad.<domain>/wpad.dat`` when
  ``wpad.<domain>`` resolves, ``<domain>`` being the host's FQDN without its first label, in the lab's name map.
  Discovery neither downloads nor runs the file. Nothing found: ERROR_WINHTTP_AUTODETECTION_FAILED (12180). *Not
  modelled*: Windows' devolution of the DNS name (``wpad.a.b.test`` then ``wpad.b.test``); the lab's domain has two
  labels, so there is nothing to devolve.
- The PAC (``WinHttpGetProxyForUrl`` with WINHTTP_AUTOPROXY_CONFIG_URL) is downloaded by WinHTTP on a session opened
  with WINHTTP_ACCESS_TYPE_NO_PROXY (the documented sample, and ``_wpad.ps1``): direct, under the host's outbound
  policy. A download that fails: ERROR_WINHTTP_UNABLE_TO_DOWNLOAD_SCRIPT (12167).
- Running it: **the twin has no JavaScript engine.** It runs one documented subset: a ``FindProxyForURL`` whose body
  is a single ``return "<constant>";``, the constant being ``DIRECT`` or ``PROXY host:port`` entries separated by ``;``
  (the PAC format, Netscape's "Navigator Proxy Auto-Config File Format"). Any other script is answered as Windows
  answers a script it cannot run, ERROR_WINHTTP_BAD_AUTO_PROXY_SCRIPT (12166): the twin's limit, not Windows'.
- The answer: the PROXY entries joined with ``;`` (``WINHTTP_PROXY_INFO.lpszProxy``); ``DIRECT`` is no proxy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.lab.winhttp import WinHttpProxy, http_get
from tests.twin import revocation
from tests.twin.state import HostState

AUTODETECTION_FAILED = "ERROR_WINHTTP_AUTODETECTION_FAILED (12180)"
UNABLE_TO_DOWNLOAD_SCRIPT = "ERROR_WINHTTP_UNABLE_TO_DOWNLOAD_SCRIPT (12167)"
BAD_AUTO_PROXY_SCRIPT = "ERROR_WINHTTP_BAD_AUTO_PROXY_SCRIPT (12166)"
DEFAULT_TIMEOUT_MS = 10000
# The one PAC the twin can run: function FindProxyForURL(url, host) { return "<constant>"; }
_CONSTANT_PAC = re.compile(
    r"^\s*function\s+FindProxyForURL\s*\(\s*\w+\s*,\s*\w+\s*\)\s*\{\s*return\s+(?P<q>[\"'])(?P<value>[^\"']*)(?P=q)\s*;?"
    r"\s*\}\s*$")
_PROXY_ENTRY = re.compile(r"^PROXY\s+(?P<proxy>[A-Za-z0-9.\-]+:[0-9]{1,5})$")


@dataclass(frozen=True)
class Answer:
    """One WinHttpGetProxyForUrl (with the discovery before it): the script's document entry, and the proxy used."""

    pac_url: str | None
    proxy: str | None
    error: str | None

    def entry(self) -> dict[str, Any]:
        return {"detected": self.pac_url is not None, "pac_url": self.pac_url, "proxy": self.proxy, "error": self.error}

    def winhttp_proxy(self) -> WinHttpProxy:
        """What CryptoAPI then fetches through: the proxy, or direct ("no proxy" when discovery fails, KB 2623724)."""
        return WinHttpProxy(self.proxy) if self.proxy else WinHttpProxy()


def discover(state: HostState) -> str | None:
    """The PAC URL WinHttpDetectAutoProxyConfigUrl finds: DHCP option 252, then ``wpad.<domain>`` in DNS."""
    dhcp = (state.data.get("wpad") or {}).get("dhcp_url")
    if dhcp:
        return str(dhcp)
    fqdn = str(state.data.get("fqdn") or "")
    if "." not in fqdn:
        return None
    name = "wpad." + fqdn.split(".", 1)[1]
    if {k.lower(): v for k, v in revocation.world().names.items()}.get(name.lower()) is None:
        return None
    return f"http://{name}/wpad.dat"


def run_pac(text: str) -> tuple[str | None, str | None]:
    """(proxy, error) of a PAC in the twin's subset: a constant FindProxyForURL answer."""
    match = _CONSTANT_PAC.match(text)
    if match is None:
        return None, BAD_AUTO_PROXY_SCRIPT
    entries = [e.strip() for e in match["value"].split(";") if e.strip()]
    if entries == ["DIRECT"]:
        return None, None
    proxies = [_PROXY_ENTRY.match(e) for e in entries]
    if not proxies or any(p is None for p in proxies):
        return None, BAD_AUTO_PROXY_SCRIPT  # a mix of DIRECT and PROXY, or another type: outside the subset
    return ";".join(p["proxy"] for p in proxies if p is not None), None


def ask(state: HostState, pac_url: str | None, *, detect: bool, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Answer:
    """Discovery (``detect``) or the given PAC URL, then the PAC downloaded and run."""
    if detect:
        pac_url = discover(state)
        if pac_url is None:
            return Answer(None, None, AUTODETECTION_FAILED)
    if pac_url is None:
        raise ValueError("pac_url: required when detect is false")
    world = revocation.world()
    fetched = http_get(pac_url, proxy=WinHttpProxy(), names=world.names, timeout=max(timeout_ms, 1) / 1000,
                       policy=world.policy, user_agent="crlfix-wpad")
    if fetched["error"] or fetched["http_status"] != 200:
        return Answer(pac_url, None, UNABLE_TO_DOWNLOAD_SCRIPT)
    proxy, error = run_pac(fetched["content"].decode("utf-8", "replace"))
    return Answer(pac_url, proxy, error)


def needs(part: dict[str, Any], request: dict[str, Any], build: int) -> tuple[bool, list[str]]:
    """(auto-detect, AutoConfigURLs) the identities part's paths can reach, as ``Get-CrlfixWpadNeeds`` decides."""
    below = int(request.get("unset_detects_below_build") or 0)
    entries = [part["caller"], *(a for a in part["accounts"] if a.get("error") is None)]
    detect, scripts = False, []
    for entry in entries:
        settings = entry.get("ie") if part.get("per_user") else part.get("machine_ie")
        if settings is None:
            detect = detect or build < below
            continue
        if isinstance(settings.get("connection_flags"), int) and settings["connection_flags"] & 0x08:
            detect = True
        script = str(settings.get("auto_config_url") or "")
        if re.match(r"^https?://", script, re.IGNORECASE) and script not in scripts:
            scripts.append(script)
    return detect and not part.get("wpad_disabled"), scripts


def discovery_part(state: HostState, part: dict[str, Any], request: dict[str, Any],
                   url: str | None) -> dict[str, Any] | None:
    """The identities part's ``wpad`` key (``Complete-CrlfixWpad``), or None when no path can reach discovery."""
    detect, scripts = needs(part, request, state.os_build)
    if not detect and not scripts:
        return None
    timeout_ms = int(request.get("timeout_ms") or DEFAULT_TIMEOUT_MS)
    doc: dict[str, Any] = {"url": url, "auto_detect": None, "scripts": [], "elapsed_ms": 0, "error": None}
    if not url:
        doc["error"] = "no http revocation URL to ask WPAD about"
        return doc
    if detect:
        doc["auto_detect"] = ask(state, None, detect=True, timeout_ms=timeout_ms).entry()
    doc["scripts"] = [ask(state, script, detect=False, timeout_ms=timeout_ms).entry() for script in scripts]
    return doc


__all__ = ["AUTODETECTION_FAILED", "BAD_AUTO_PROXY_SCRIPT", "UNABLE_TO_DOWNLOAD_SCRIPT", "Answer", "ask", "discover",
           "discovery_part", "needs", "run_pac"]
