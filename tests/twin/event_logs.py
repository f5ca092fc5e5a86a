"""A twin's event logs: what ``Get-WinEvent`` reads, and the writers of the symptoms the twin's services hit.

State (tests/twin/README.md, "Host state"): ``event_logs`` maps a Windows log name (``System``, ``Application``,
``Lync Server``, ``Microsoft-Windows-CAPI2/Operational``) to its events ``{"id", "provider", "level", "time",
"message"}`` (``time`` UTC ISO 8601, ``level`` 1 Critical ... 4 Information); a log that is not a key does not
exist on the host. ``event_log_enabled`` maps a log name to false when it is disabled (CAPI2's default: "off by
default", identity-evidence-research.md 6 [D] TechNet wiki 242); ``event_logs_denied`` lists logs whose read is
refused (``UnauthorizedAccessException``).

Modelled ``Get-WinEvent -FilterHashtable`` semantics [D] PowerShell-Docs Get-WinEvent (5.1), GetEventCommand.cs:
LogName and ProviderName compared case-insensitively (their wildcards are not modelled), Id and Level as lists (any
of), StartTime inclusive, newest first, ``-MaxEvents`` keeps the newest. A log that does not exist answers
``NoMatchingLogsFound``, no match ``NoMatchingEventsFound`` (both non-terminating); a disabled log still answers
what it holds ([I] identity-evidence-research.md 6). ``-ListLog`` gives IsEnabled. Not modelled: XPath, Keywords,
UserID, named data, EndTime, localized messages.

Writers (each from its source): CAPI2 53 when a retrieval of the host's chain engine fails, only while the log is
enabled ([D] GSA/piv-guides: "53 network retrieval error"; the message text is the generic one CAPI2 always gives,
[C] detection-wiki); LS IM MCU 33019 when a modelled mutual-TLS negotiation takes longer than Lync's limit ([C]
masteringmsuc 2012; Lync's own limit is unpublished, so ``LYNC_TLS_LIMIT_MS`` is the twin's choice).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.twin.state import HostState

SYSTEM, APPLICATION, LYNC, CAPI2 = "System", "Application", "Lync Server", "Microsoft-Windows-CAPI2/Operational"
CAPI2_PROVIDER = "Microsoft-Windows-CAPI2"
# The logs every Windows Server has; CAPI2's exists but is disabled until someone enables it.
DEFAULT_LOGS = (SYSTEM, APPLICATION, CAPI2)
DEFAULT_DISABLED = (CAPI2,)
LYNC_TLS_LIMIT_MS = 2000  # twin's choice: Lync's TLS negotiation limit is not published (cryptoapi-research.md 2.2)
CAPI2_MESSAGE = 'For more details for this event, please refer to the "Details" section'
MAX_EVENTS_KEPT = 5000  # per log, oldest dropped first (Windows: the log's maximum size, overwrite as needed)


class NoMatchingLogsFound(Exception):
    """``Get-WinEvent``: "There is not an event log on the localhost computer that matches "<log>"."""


class Denied(Exception):
    """``Get-WinEvent``: "Attempted to perform an unauthorized operation." (UnauthorizedAccessException)."""


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _log_key(state: HostState, log: str) -> str | None:
    return next((name for name in state.data.get("event_logs", {}) if name.lower() == log.lower()), None)


def list_log(state: HostState, log: str) -> dict[str, Any]:
    """``Get-WinEvent -ListLog <log>``: exists and IsEnabled."""
    key = _log_key(state, log)
    if key is None:
        return {"exists": False, "enabled": None}
    return {"exists": True, "enabled": state.data.get("event_log_enabled", {}).get(key, True) is not False}


def get_win_event(state: HostState, log: str, *, ids: list[int], start: dt.datetime, max_events: int,
                  provider: str | None = None, levels: list[int] | None = None) -> list[dict[str, Any]]:
    """``Get-WinEvent -FilterHashtable @{LogName; ProviderName; Id; Level; StartTime} -MaxEvents``, newest first.

    Raises NoMatchingLogsFound / Denied as the cmdlet reports them; no match is an empty list (the cmdlet's
    NoMatchingEventsFound, which the script reads as zero).
    """
    key = _log_key(state, log)
    if key is None:
        raise NoMatchingLogsFound(f'There is not an event log on the localhost computer that matches "{log}".')
    if key in state.data.get("event_logs_denied", []):
        raise Denied("Attempted to perform an unauthorized operation.")
    with state.lock:
        events = list(state.data["event_logs"][key])
    hits = [e for e in events
            if int(e["id"]) in ids and parse_time(e["time"]) >= start
            and (provider is None or str(e["provider"]).lower() == provider.lower())
            and (levels is None or int(e.get("level", 4)) in levels)]
    hits.sort(key=lambda e: e["time"], reverse=True)
    return hits[:max_events]


def write_event(state: HostState, log: str, *, event_id: int, provider: str, level: int, message: str,
                when: dt.datetime | None = None) -> bool:
    """Append one event to ``log`` if the log exists and is enabled (a disabled log drops it); True if written."""
    with state.lock:
        key = _log_key(state, log)
        if key is None or not list_log(state, key)["enabled"]:
            return False
        events = state.data["event_logs"][key]
        events.append({"id": event_id, "provider": provider, "level": level,
                       "time": iso(when or state.now()), "message": message})  # the host's clock
        del events[:-MAX_EVENTS_KEPT]
        state.save()
    return True


def set_enabled(state: HostState, log: str, enabled: bool) -> None:
    """``wevtutil sl <log> /e:true|false`` (the twin's enable, for fix_crl_enable_capi2_log and tests)."""
    with state.lock:
        state.data.setdefault("event_log_enabled", {})[log] = enabled
        state.save()


# -- writers: the symptoms the twin's modelled services hit -----------------------------------------------------------
def capi2_retrieval_failed(state: HostState, url: str, error: str) -> bool:
    """CAPI2 53 (Error) for a failed network retrieval by this host's chain engine, if the log is enabled."""
    del url, error  # Windows keeps them in the event's XML details, which the twin does not model
    return write_event(state, CAPI2, event_id=53, provider=CAPI2_PROVIDER, level=2, message=CAPI2_MESSAGE)


def chain_retrievals(state: HostState, revocation: dict[str, Any] | None) -> None:
    """The hook after a chain engine's revocation check (``tests.lab.cryptoapi.check_chain_revocation``'s result):
    CAPI2 53 for each network retrieval that failed."""
    for retrieval in (revocation or {}).get("retrievals") or []:
        if retrieval.get("error") and not retrieval.get("from_cache") and retrieval.get("via") is not None:
            capi2_retrieval_failed(state, str(retrieval.get("url")), str(retrieval["error"]))


def lync_tls_negotiation(state: HostState, *, peer_fqdn: str, elapsed_ms: float) -> bool:
    """LS IM MCU 33019 (Error) when a modelled MTLS negotiation of this Lync host took longer than Lync's limit."""
    if elapsed_ms <= LYNC_TLS_LIMIT_MS:
        return False
    local = str(state.data.get("fqdn", "")).upper()
    message = (f"Lync Server IM MCU failed to connect to the SIP Front End. Local Machine name: {local} FE hostname:"
               f" {peer_fqdn} Message: TLS Negotiation took too long to complete.")
    return write_event(state, LYNC, event_id=33019, provider="LS IM MCU", level=2, message=message)


def seed_symptoms(state: dict[str, Any], *, count: int, now: dt.datetime, hours: int = 24) -> None:
    """Seed ``count`` 33019 events over the ``hours`` before ``now`` into a Lync host's new state (a broken host)."""
    events = state.setdefault("event_logs", {}).setdefault(LYNC, [])
    peer = str(state.get("fqdn", "")).upper()
    for index in range(count):
        when = now - dt.timedelta(minutes=(index + 1) * hours * 60 // (count + 1))
        events.append({"id": 33019, "provider": "LS IM MCU", "level": 2, "time": iso(when),
                       "message": ("Lync Server IM MCU failed to connect to the SIP Front End. Local Machine name: "
                                   f"{peer} FE hostname: {peer} Message: TLS Negotiation took too long to "
                                   "complete.")})
    events.sort(key=lambda e: e["time"])
