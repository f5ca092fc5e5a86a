"""tests/twin/event_logs.py and the evidence stand-in: Get-WinEvent's semantics, the writers, the fix marker."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.twin import event_logs
from tests.twin.scripts import _evidence
from tests.twin.state import HostState, new_state

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def host(tmp_path) -> HostState:
    data = new_state("lync-fe01.lab.test", os_build=17763, user="ansible", password="x")
    data["event_logs"][event_logs.LYNC] = []
    state = HostState(tmp_path / "fe01.json", data)
    state.save()
    return state


def add(state: HostState, log: str, event_id: int, hours_ago: float, provider: str = "LS IM MCU",
        level: int = 2, message: str = "m") -> None:
    state.data["event_logs"][log].append({"id": event_id, "provider": provider, "level": level, "message": message,
                                          "time": event_logs.iso(NOW - dt.timedelta(hours=hours_ago))})


def test_filter_hashtable_matches_ids_provider_level_and_start_newest_first_capped(host) -> None:
    for hours_ago in (30, 5, 3, 1):
        add(host, event_logs.LYNC, 33019, hours_ago)
    add(host, event_logs.LYNC, 32042, 2, provider="LS User Services")
    add(host, event_logs.LYNC, 33019, 2, level=4)
    hits = event_logs.get_win_event(host, "lync server", ids=[33019], start=NOW - dt.timedelta(hours=24),
                                    max_events=2, provider="ls im mcu", levels=[1, 2, 3])
    assert [h["time"] for h in hits] == [event_logs.iso(NOW - dt.timedelta(hours=h)) for h in (1, 3)]


def test_a_missing_log_is_no_matching_logs_found_and_a_disabled_log_answers_what_it_holds(host) -> None:
    with pytest.raises(event_logs.NoMatchingLogsFound, match='matches "Application and Services"'):
        event_logs.get_win_event(host, "Application and Services", ids=[1], start=NOW, max_events=5)
    add(host, event_logs.CAPI2, 53, 1, provider=event_logs.CAPI2_PROVIDER)
    assert event_logs.list_log(host, event_logs.CAPI2) == {"exists": True, "enabled": False}
    assert len(event_logs.get_win_event(host, event_logs.CAPI2, ids=[53], start=NOW - dt.timedelta(hours=2),
                                        max_events=5)) == 1


def test_capi2_53_is_written_only_while_the_log_is_enabled_and_33019_only_past_lyncs_limit(host) -> None:
    failed = {"retrievals": [{"url": "http://crl.public-ca.test/a.crl", "via": "direct", "from_cache": False,
                              "error": "timed out"},
                             {"url": "http://crl.public-ca.test/b.crl", "via": None, "from_cache": True,
                              "error": None}]}
    event_logs.chain_retrievals(host, failed)
    assert host.data["event_logs"][event_logs.CAPI2] == []
    event_logs.set_enabled(host, event_logs.CAPI2, True)
    event_logs.chain_retrievals(host, failed)
    assert [e["id"] for e in HostState.load(host.path).data["event_logs"][event_logs.CAPI2]] == [53]
    assert event_logs.lync_tls_negotiation(host, peer_fqdn="fe02", elapsed_ms=event_logs.LYNC_TLS_LIMIT_MS) is False
    assert event_logs.lync_tls_negotiation(host, peer_fqdn="fe02", elapsed_ms=3500) is True
    written = host.data["event_logs"][event_logs.LYNC][-1]
    assert (written["id"], written["provider"]) == (33019, "LS IM MCU")
    assert written["message"].endswith("TLS Negotiation took too long to complete.")


SPEC = {"hours": 24, "max_events": 200, "message_chars": 40, "services": ["MSExchangeTransport"], "mark": False,
        "queries": [{"log": event_logs.LYNC, "provider": None, "ids": [33019], "levels": None},
                    {"log": "System", "provider": "Service Control Manager", "ids": [7000, 7009], "levels": None,
                     "services": True},
                    {"log": "Nope", "provider": None, "ids": [1], "levels": None}],
        "chain_engine": ["ChainUrlRetrievalTimeoutMilliseconds"]}


def test_the_stand_in_counts_per_group_in_the_window_and_before_and_since_the_fix(host) -> None:
    for hours_ago in (30, 20, 10, 0.5):
        add(host, event_logs.LYNC, 33019, hours_ago, message="TLS Negotiation took too long to complete " * 3)
    add(host, "System", 7009, 1, provider="Service Control Manager", message="A timeout was reached (30000 "
        "milliseconds) while waiting for the MSExchangeTransport service to connect.")
    add(host, "System", 7009, 1, provider="Service Control Manager", message="... the Spooler service ...")
    host.data["registry"]["crlfix"] = {"FixedAt": event_logs.iso(NOW - dt.timedelta(hours=5))}
    host.data["chain_engine"] = {"ChainUrlRetrievalTimeoutMilliseconds": 3000}
    part = _evidence.evidence(host, SPEC)
    lync, scm = part["events"]
    # Read from 24 h before the fix (29 h ago): the event 30 h ago is not read at all.
    assert (lync["count"], lync["before"], lync["since"]) == (3, 2, 1)
    assert len(lync["message"]) == 40 and sum(lync["hours"].values()) == 3
    assert (scm["id"], scm["count"]) == (7009, 1)
    assert [q["status"] for q in part["queries"]] == ["ok", "ok", "no_log"]
    assert part["chain_engine"]["policy"]["values"] == {"ChainUrlRetrievalTimeoutMilliseconds": 3000}
    assert part["chain_engine"]["config"] == {"present": False,
                                              "values": {"ChainUrlRetrievalTimeoutMilliseconds": None}}


def test_the_marker_is_written_by_the_hosts_clock_and_survives_a_reload(host) -> None:
    part = _evidence.evidence(host, {"mark": True, "queries": [], "chain_engine": []})
    assert part["marker"]["written"] is True and part["marker"]["previous"] is None
    again = _evidence.evidence(HostState.load(host.path), {"queries": []})
    assert again["marker"] == {"previous": part["marker"]["fixed_at"], "fixed_at": part["marker"]["fixed_at"],
                               "written": False}


def test_enable_log_turns_capi2_on_and_answers_its_previous_state(host) -> None:
    part = _evidence.evidence(host, {"queries": [], "enable_log": event_logs.CAPI2})
    assert part["enabled_log"] == {"log": event_logs.CAPI2, "previous": False, "enabled": True, "error": None}
    assert event_logs.list_log(HostState.load(host.path), event_logs.CAPI2)["enabled"] is True
