"""The twin's host classes: what a Windows Server release brings out of the box (tests/twin/README.md, "Host classes").

A host's class is chosen by its state's ``os.build`` (``HostState.host_class``); a build the table does not know is a
2022 (20348) host, which is what the twin modelled before the table existed. ``os.overrides`` in the state changes one
host's facts (WMF 5.1 installed on a 2012 R2, TLS 1.2 enabled on a 2008 R2, Constrained Language Mode): an admin's
doing, not the release's.

Each column and its source (the README repeats them with their grade):

- ``powershell``: the Windows PowerShell that ships with the release (Microsoft Learn, "Windows PowerShell System
  Requirements": 2008 R2 ships 2.0, 2012 R2 4.0, 2016 and later 5.1).
- ``dotnet_release``: the ``Release`` DWORD of ``HKLM\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full`` of the
  .NET Framework 4.x that ships with the release (Microsoft Learn, "How to: Determine which .NET Framework versions are
  installed": 378675 = 4.5.1 on 2012 R2, 394802 = 4.6.2 on 2016, 461814 = 4.7.2 on other OS than 1803 (2019 is 1809),
  528449 = 4.8 on Server 2022); None where no 4.x ships (2008 R2: .NET 3.5.1).
- ``tls_protocols``: the TLS versions Schannel enables by default, as ``SslProtocols`` names (Microsoft Learn,
  "Protocols in TLS/SSL (Schannel SSP)": on 2008 R2 TLS 1.1 and 1.2 are supported but disabled by default; 2012 R2 to
  2019 enable 1.0-1.2; TLS 1.3 is enabled by default from Windows Server 2022). The twin's TLS listener and prober offer
  exactly these (``tls_versions``).
- ``proxy_order``: how CryptoAPI (cryptnet) picks the proxy for a CRL download (KB 2623724):
  ``three_step`` before Windows 10 (netsh value, then the executing identity's IE
  settings, then WPAD, then direct; the KB names Vista to 2008 R2, 2012 R2 is *inferred* to behave alike) and
  ``automatic_proxy`` from Windows 10 / Server 2016 (``WinHttpOpen(WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY)``: the netsh
  value first, then the per-user IE settings).
- ``scheduled_tasks_module``: whether the ScheduledTasks module (``Register-ScheduledTask`` and the rest) ships with the
  release: Windows Server 2012 and later (Microsoft Learn, ScheduledTasks module); WMF 5.1 does not add it to 2008 R2
  SP1 (ansible-modules-extras#1830; Invoke-CommandAs#9, #15). Task Scheduler 2.0's COM API (``Schedule.Service``) is on
  every class (Windows Vista / Server 2008 and later). Not overridable: no installation adds the module.
"""

from __future__ import annotations

import re
import ssl
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_BUILD = 20348
THREE_STEP = "three_step"
AUTOMATIC_PROXY = "automatic_proxy"
PROXY_ORDERS = (THREE_STEP, AUTOMATIC_PROXY)
# SslProtocols member name -> the stdlib's TLS version (what the twin's ssl contexts are limited to).
TLS_VERSIONS = {
    "Tls": ssl.TLSVersion.TLSv1,
    "Tls11": ssl.TLSVersion.TLSv1_1,
    "Tls12": ssl.TLSVersion.TLSv1_2,
    "Tls13": ssl.TLSVersion.TLSv1_3,
}
# OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level (they sign the handshake with MD5+SHA-1): a context
# that may negotiate them needs security level 0, which is also what lets it talk to a Windows peer that speaks them.
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"


@dataclass(frozen=True)
class HostClass:
    name: str
    build: int
    caption: str
    powershell: str
    dotnet_release: int | None
    tls_protocols: tuple[str, ...]
    proxy_order: str
    language_mode: str = "FullLanguage"
    scheduled_tasks_module: bool = True

    def tls_versions(self) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
        """(lowest, highest) TLS version this class enables; Schannel's enabled set is a contiguous range here."""
        versions = sorted(TLS_VERSIONS[name] for name in self.tls_protocols)
        return versions[0], versions[-1]

    def limit(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Limit ``context`` (client or server) to the protocols this class enables, as Schannel would."""
        low, high = self.tls_versions()
        if low < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers(LEGACY_CIPHERS)
        with warnings.catch_warnings():  # the stdlib deprecates TLS 1.0/1.1; Windows 2008 R2 speaks nothing else
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version, context.maximum_version = low, high
        return context


HOST_CLASSES: dict[int, HostClass] = {c.build: c for c in (
    HostClass("2008r2", 7601, "Windows Server 2008 R2 Enterprise", "2.0", None, ("Tls",), THREE_STEP,
              scheduled_tasks_module=False),
    HostClass("2012r2", 9600, "Windows Server 2012 R2 Datacenter", "4.0", 378675,
              ("Tls", "Tls11", "Tls12"), THREE_STEP),
    HostClass("2016", 14393, "Windows Server 2016 Datacenter", "5.1", 394802,
              ("Tls", "Tls11", "Tls12"), AUTOMATIC_PROXY),
    HostClass("2019", 17763, "Windows Server 2019 Datacenter", "5.1", 461814,
              ("Tls", "Tls11", "Tls12"), AUTOMATIC_PROXY),
    HostClass("2022", 20348, "Windows Server 2022 Datacenter", "5.1", 528449,
              ("Tls", "Tls11", "Tls12", "Tls13"), AUTOMATIC_PROXY),
)}
OVERRIDABLE = ("powershell", "dotnet_release", "tls_protocols", "language_mode")


def class_for_build(build: int) -> HostClass:
    """The class of an OS build; an unknown build is a 2022 host (the twin's behaviour before host classes)."""
    return HOST_CLASSES.get(int(build), HOST_CLASSES[DEFAULT_BUILD])


def host_class(os_section: dict[str, Any]) -> HostClass:
    """The class of a host from its state's ``os`` section: its build's class with the host's ``overrides``."""
    base = class_for_build(os_section.get("build", DEFAULT_BUILD))
    overrides = dict(os_section.get("overrides") or {})
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"os.overrides: unknown keys {unknown}; allowed: {list(OVERRIDABLE)}")
    if "tls_protocols" in overrides:
        overrides["tls_protocols"] = tuple(overrides["tls_protocols"])
        bad = [name for name in overrides["tls_protocols"] if name not in TLS_VERSIONS]
        if bad or not overrides["tls_protocols"]:
            raise ValueError(f"os.overrides.tls_protocols: expected names of {list(TLS_VERSIONS)}, got {bad or '[]'}")
    return replace(base, **overrides)


# The floor host_audit checks first (plugins/plugin_utils/_host/_ps1/_host_floor.ps1): the twin reads the script's own
# numbers, so the stand-in and the script cannot disagree.
FLOOR_SCRIPT = Path(__file__).resolve().parents[2] / "plugins/plugin_utils/_host/_ps1/_host_floor.ps1"


def floor_numbers() -> dict[str, int]:
    """``$CrlfixFloor<Name> = <int>`` of the floor script: PowerShellMajor, PowerShellMinor, DotNetRelease, OsBuild."""
    found = re.findall(r"^\$CrlfixFloor(\w+) = ([0-9]+)$", FLOOR_SCRIPT.read_text(encoding="ascii"), re.MULTILINE)
    return {name: int(value) for name, value in found}


def floor_report(known: HostClass, build: int) -> dict[str, Any]:
    """What ``_host_floor.ps1`` reports on a host of class ``known`` and OS ``build``: facts and ``missing`` codes."""
    numbers = floor_numbers()
    major, minor = (int(part) for part in known.powershell.split(".")[:2])
    missing = []
    if (major, minor) < (numbers["PowerShellMajor"], numbers["PowerShellMinor"]):
        missing.append("powershell")
    if known.dotnet_release is None or known.dotnet_release < numbers["DotNetRelease"]:
        missing.append("dotnet")
    if known.language_mode != "FullLanguage":
        missing.append("language_mode")
    if build < numbers["OsBuild"]:
        missing.append("os_build")
    return {"powershell": f"{major}.{minor}", "dotnet_release": known.dotnet_release,
            "language_mode": known.language_mode, "os_build": build, "missing": missing}


def proxy_order(build: int) -> str:
    """CryptoAPI's proxy order on this OS build: ``three_step`` (KB 2623724, pre-Windows 10) or ``automatic_proxy``."""
    return class_for_build(build).proxy_order


__all__ = ["AUTOMATIC_PROXY", "DEFAULT_BUILD", "HOST_CLASSES", "LEGACY_CIPHERS", "PROXY_ORDERS", "THREE_STEP",
           "HostClass", "class_for_build", "floor_report", "host_class", "proxy_order"]
