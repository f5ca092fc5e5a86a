"""Scheduled tasks as other identities in the twin (tests/twin/identity_runs.py), without a network.

The revocation server is made unreachable (its name resolves to an address outside the intranet, so the lab drops
the packets) and the retrieval timeouts are short: each chain built as an identity ends offline
(``RevocationStatusUnknown`` + ``OfflineRevocation``, X509ChainStatusFlags for CRYPT_E_REVOCATION_OFFLINE;
microsoft/referencesource, x509chain.cs, and the CERT_TRUST_STATUS reference of wincrypt.h). What is checked: only
runnable accounts get a task, each task is counted and none is left, leftovers are removed, the purge empties that
identity's cache only, a late run gets the late text; what Task Scheduler does first (tests/twin/task_scheduler.py)
and the work folder's checks (tests/twin/work_folder.py) are in test_identity_tasks.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.lab import pki
from tests.lab.winhttp import OutboundPolicy
from tests.twin import identities, identity_runs, revocation
from tests.twin.state import HostState, new_state, write_json_atomic

NS_SID = "S-1-5-20"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict:
    return pki.issue_host_certificates(tmp_path_factory.mktemp("pki"), ["fe01.lab.test"])["fe01.lab.test"]


@pytest.fixture
def state(tmp_path: Path, stores: dict) -> HostState:
    data = new_state("fe01.lab.test", os_build=17763, user="ansible", password="p", cert_stores=stores)
    data["chain_engine"] = {revocation.URL_TIMEOUT_VALUE: 100, revocation.CHAIN_TIMEOUT_VALUE: 200}
    data["accounts"][NS_SID]["url_cache"] = [{"url": "http://x/old.crl", "kind": "crl"}]
    data["accounts"]["S-1-5-18"]["url_cache"] = [{"url": "http://x/system.crl", "kind": "crl"}]
    data["scheduled_tasks"] = ["\\crlfix\\crlfix-0123"]
    data["task_scheduler"] = {"start_ms": 20}  # the start latency (seconds by default) is test_identity_tasks.py's
    write_json_atomic(tmp_path / "host.json", data)
    return HostState.load(tmp_path / "host.json")


@pytest.fixture(autouse=True)
def unreachable_world():
    previous = revocation.world()
    names = dict.fromkeys(pki.PUBLIC_NAMES, "198.51.100.7")  # TEST-NET-2: outside the intranet, dropped
    revocation.configure(revocation.World(names=names, policy=OutboundPolicy()))
    yield
    revocation.configure(previous)


def part_for(state: HostState, *names: str) -> dict:
    return identities.identities_part(state, {"services": [], "accounts": list(names), "accounts_from_services": True})


def test_each_runnable_identity_builds_its_chain_offline_and_nothing_is_left(state: HostState) -> None:
    part = part_for(state, "NT AUTHORITY\\NETWORK SERVICE", "NT AUTHORITY\\SYSTEM")
    part["accounts"].append({"name": "LAB\\svc-user", "sid": "S-1-5-21-1-2-3-1200", "hive_loaded": True, "ie": None,
                             "error": None})
    runs = identity_runs.start(state, part, {"stores": ["My"], "purge_cache": True}, threading.Event())
    identity_runs.complete(state, runs, remaining_s=10, deadline=10000)
    assert part["leftovers_removed"] == 1 and state.data["scheduled_tasks"] == []
    assert state.data["counters"]["scheduled_tasks"] == 2  # the user account needs a password: no task
    ns, system, user = part["accounts"]
    assert "run" not in user
    for account in (ns, system):
        run = account["run"]
        assert run["error"] is None and run["task_result"] == 0 and run["outcome"] == "finished"
        assert run["purge"]["rc"] == 0
        [chain] = run["chains"]
        assert chain["status"] == ["RevocationStatusUnknown", "OfflineRevocation"]
        assert chain["subject"].startswith("CN=fe01.lab.test")
    # Each purge emptied its own identity's cache, never the admin's.
    assert state.data["accounts"][NS_SID]["url_cache"] == [] and state.data["accounts"]["S-1-5-18"]["url_cache"] == []
    assert state.data["counters"]["urlcache_deletes"] == 2


def test_a_run_not_done_by_the_deadline_is_late_with_the_scripts_text(state: HostState) -> None:
    state.data["chain_engine"] = {revocation.URL_TIMEOUT_VALUE: 3000, revocation.CHAIN_TIMEOUT_VALUE: 4000}
    part = part_for(state, "NT AUTHORITY\\NETWORK SERVICE")
    cancel = threading.Event()
    runs = identity_runs.start(state, part, {"stores": ["My"], "purge_cache": False}, cancel)
    identity_runs.complete(state, runs, remaining_s=0.2, deadline=1000)
    run = part["accounts"][0]["run"]
    assert run["outcome"] == "late" and run["chains"] == [] and run["task_result"] is None
    assert run["error"] == "not finished within the deadline of 1000 ms: the task was still running"
    assert cancel.is_set()  # the abandoned run's modelled waits end at once
    assert state.data["accounts"][NS_SID]["url_cache"] == [{"url": "http://x/old.crl", "kind": "crl"}]


def test_a_resync_writes_the_filetime_of_now_and_says_what_was_there(state: HostState) -> None:
    import base64
    import datetime as dt

    part = part_for(state, "NT AUTHORITY\\NETWORK SERVICE")
    runs = identity_runs.start(state, part, {"stores": [], "resync": True}, threading.Event())
    identity_runs.complete(state, runs, remaining_s=1, deadline=1000)
    first = part["resync"]
    assert first["previous_b64"] is None and first["rc"] == 0
    filetime = int.from_bytes(base64.b64decode(first["written_b64"]), "little")
    written = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=filetime // 10)
    assert abs((written - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    again = part_for(state, "NT AUTHORITY\\NETWORK SERVICE")
    identity_runs.start(state, again, {"stores": [], "resync": True}, threading.Event())
    assert again["resync"]["previous_b64"] == first["written_b64"]
    assert state.data["counters"]["chain_resyncs"] == 2 and state.data["counters"]["scheduled_tasks"] == 0
