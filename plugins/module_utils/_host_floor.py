# PRIVATE to the crlfix.windows collection; may change without notice.
"""The collection's minimum host versions (README, "Requirements"; docs/dev/host-scripts.md, "The floor").

The floor is what the host scripts use, not what Windows ships: Windows PowerShell 5.1 (the scripts call
``[type]::new()``, PowerShell 5.0 and later, and WMF 5.1 is the only 5.x Microsoft still ships, for 2008 R2 SP1 and
2012 R2 too), .NET Framework 4.5 (``SslProtocols.Tls12``, ``TcpClient.ConnectAsync``; ``Release`` 378389, Microsoft
Learn "How to: Determine which .NET Framework versions are installed"), FullLanguage (Constrained Language Mode
blocks COM, runspaces and ``SslStream``) and Windows Server 2008 R2 SP1 (build 7601). ``_ps1/_host_floor.ps1`` holds
the same numbers (a unit test keeps them equal) and reports the host's facts as ``floor`` in host_audit's document;
:func:`parse_floor` reads them and :func:`below_floor_reason` names what is missing.
"""

from __future__ import annotations

import dataclasses
import typing as t

POWERSHELL = (5, 1)
DOTNET_RELEASE = 378389
DOTNET_TEXT = "4.5"
OS_BUILD = 7601
MISSING_CODES = ("powershell", "dotnet", "language_mode", "os_build")


@dataclasses.dataclass(frozen=True)
class HostFloor:
    """A host's facts at first contact and what of the floor it misses (codes of ``MISSING_CODES``, in that order)."""

    powershell: str
    dotnet_release: int | None
    language_mode: str
    os_build: int
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, t.Any]:
        return {"powershell": self.powershell, "dotnet_release": self.dotnet_release,
                "language_mode": self.language_mode, "os_build": self.os_build, "missing": list(self.missing)}


def _int(value: t.Any, field: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"floor.{field}: expected a non-negative integer{' or null' if nullable else ''}, "
                         f"got {value!r}")
    return value


def parse_floor(value: t.Any) -> HostFloor:
    """The ``floor`` object of a host_audit document.

    Raises:
        ValueError: ``value`` is not a floor object; the message names the field and the value.
    """
    if not isinstance(value, dict):
        raise ValueError(f"floor: expected an object, got {value!r:.80}")
    powershell, mode, missing = value.get("powershell"), value.get("language_mode"), value.get("missing")
    if not isinstance(powershell, str) or not powershell:
        raise ValueError(f"floor.powershell: expected a version text, got {powershell!r}")
    if not isinstance(mode, str) or not mode:
        raise ValueError(f"floor.language_mode: expected a language mode's name, got {mode!r}")
    if not isinstance(missing, list) or any(code not in MISSING_CODES for code in missing):
        raise ValueError(f"floor.missing: expected a list of {list(MISSING_CODES)}, got {missing!r}")
    return HostFloor(powershell=powershell, dotnet_release=_int(value.get("dotnet_release"), "dotnet_release",
                                                                nullable=True),
                     language_mode=mode, os_build=t.cast(int, _int(value.get("os_build"), "os_build")),
                     missing=tuple(code for code in MISSING_CODES if code in missing))


def below_floor_reason(floor: HostFloor) -> str:
    """One sentence naming each missing requirement and what the host has instead."""
    found = {
        "powershell": f"Windows PowerShell {POWERSHELL[0]}.{POWERSHELL[1]} (found {floor.powershell}; install WMF 5.1)",
        "dotnet": f".NET Framework {DOTNET_TEXT} (Release {DOTNET_RELEASE}; found "
                  f"{'none' if floor.dotnet_release is None else floor.dotnet_release})",
        "language_mode": f"FullLanguage (found {floor.language_mode}: AppLocker or WDAC)",
        "os_build": f"Windows Server 2008 R2 SP1, build {OS_BUILD} (found {floor.os_build})",
    }
    return ("the host is below the collection's minimum versions, nothing was measured; it needs "
            + "; ".join(found[code] for code in floor.missing))


class HostBelowFloor(ValueError):
    """The host answered with its floor document only: it misses a minimum version; ``floor`` says which."""

    def __init__(self, floor: HostFloor) -> None:
        super().__init__(below_floor_reason(floor))
        self.floor = floor


def check_floor(document: t.Mapping[str, t.Any]) -> HostFloor | None:
    """The floor facts of a host_audit document (None from a script without the check).

    Raises:
        HostBelowFloor: the host misses a requirement (the message names each, with what the host has).
        ValueError: the floor object is malformed (the message names the field and the value).
    """
    if document.get("floor") is None:
        return None
    try:
        floor = parse_floor(document["floor"])
    except ValueError as exc:
        raise ValueError(f"host script host_audit: {exc}") from None
    if not floor.ok:
        raise HostBelowFloor(floor)
    return floor


__all__ = ["DOTNET_RELEASE", "DOTNET_TEXT", "MISSING_CODES", "OS_BUILD", "POWERSHELL", "HostBelowFloor", "HostFloor",
           "below_floor_reason", "check_floor", "parse_floor"]
