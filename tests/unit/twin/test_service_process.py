"""The twin's running service (tests/twin/service_process.py), against its sources.

Memory cache and offline list per process, cleared by a restart (Exchange team blog, "Configuring Exchange Servers
Without Internet Access", 2010 [D]; archive/blogs/drnick, "Certificate Revocation Cache" [C]); a URL on the offline
list fails at once until its back-off ends (the same [C]; the figures are the twin's); ChainCacheResyncFiletime drops
what was cached before it (CERT_CHAIN_PARA pftCacheResync [D]); a new default proxy reaches new sessions only
(WinHttpSetDefaultProxyConfiguration [D]): a held session keeps its proxy until a restart.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tests.lab.fleet import scenarios
from tests.twin import identity_runs, service_process
from tests.twin.state import HostState, new_state, write_json_atomic

PROXY = struct.pack("<IIII", 0x18, 1, 3, 14) + b"127.0.0.1:3128" + struct.pack("<I", 0)
URL = "http://crl.public-ca.test/issuing-ca.crl"
FAILED = {"url": URL, "from_cache": False, "http_status": None, "error": "ERROR_WINHTTP_TIMEOUT (12002)"}


def make_state(tmp_path: Path) -> HostState:
    data = new_state("fe01.lab.test", os_build=17763, user="ansible", password="p", native=PROXY, wow6432=PROXY)
    scenarios.seed_services(data, "lync_servers")
    path = tmp_path / "host.json"
    write_json_atomic(path, data)
    return HostState.load(path)


def test_a_process_that_started_with_the_lab_holds_nothing_and_follows_netsh(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    assert service_process.process(state)["name"] == "RTCSRV"
    assert service_process.session_proxy(state).proxy == "127.0.0.1:3128"
    assert service_process.prepare(state, now=1000.0) == ({}, set())


def test_a_failed_wire_retrieval_puts_the_url_offline_with_a_growing_back_off(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    service_process.record(state, {}, {}, [FAILED], now=1000.0)
    assert service_process.process(state)["offline"][URL] == {"since": 1000.0, "until": 1060.0, "failures": 1}
    assert service_process.prepare(state, now=1030.0)[1] == {URL}  # fails at once inside the back-off
    assert service_process.prepare(state, now=1061.0)[1] == set()  # then back to the wire
    service_process.record(state, {}, {}, [FAILED], now=1061.0)
    assert service_process.process(state)["offline"][URL]["until"] == 1061.0 + 120
    for _failure in range(10):
        service_process.record(state, {}, {}, [FAILED], now=2000.0)
    assert service_process.process(state)["offline"][URL]["until"] == 2000.0 + service_process.MAX_BACKOFF_S


def test_an_offline_url_is_not_read_from_the_disk_cache_and_fails_at_once(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    state.data["url_cache"] = [{"url": URL, "content_b64": "AA==", "next_update": "2999-01-01T00:00:00Z"}]
    assert URL in service_process.prepare(state, now=1000.0)[0]
    service_process.record(state, {}, {}, [FAILED], now=1000.0)
    cache, failing = service_process.prepare(state, now=1001.0)
    assert URL not in cache and failing == {URL}
    # A URL failing at once was not retried: its back-off does not grow.
    service_process.record(state, {}, {}, [{**FAILED, "offline_list": True}], now=1002.0)
    assert service_process.process(state)["offline"][URL]["failures"] == 1


def test_a_success_goes_to_memory_and_clears_the_offline_entry(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    service_process.record(state, {}, {}, [FAILED], now=1000.0)
    entry = {"content_b64": "AA==", "next_update": "2999-01-01T00:00:00Z"}
    service_process.record(state, {}, {URL: entry}, [{**FAILED, "http_status": 200, "error": None}], now=1100.0)
    proc = service_process.process(state)
    assert proc["offline"] == {} and proc["memory_cache"][URL]["stored"] == 1100.0


def test_a_resync_drops_what_the_process_held_before_it(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    service_process.record(state, {}, {}, [FAILED], now=1.0)  # 1970: before any resync written now
    identity_runs.resync(state)
    assert service_process.resync_time(state) > 1.0
    assert service_process.prepare(state, now=2.0) == ({}, set())
    assert service_process.process(state)["offline"] == {}


def test_a_held_session_keeps_its_proxy_until_a_restart(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    scenarios.apply_scenario(state.data, "stale_service", "127.0.0.1:3128")
    assert service_process.session_proxy(state).is_direct  # opened when netsh was direct
    assert service_process.prepare(state)[0] == {}  # its offline entries' back-off has run out: the wire next
    assert service_process.restart(state, "rtcmedsrv") is False  # not the listener's process
    assert service_process.restart(state, "rtcsrv") is True
    assert service_process.session_proxy(state).proxy == "127.0.0.1:3128"
    assert service_process.process(state)["offline"] == {} and state.data["counters"]["service_restarts"] == 1
