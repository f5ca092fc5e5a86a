"""The evidence in the lab: a host's own symptom events, read in the audit's one command, before and after the fix.

The twins keep event logs in their state (tests/twin/event_logs.py); the test seeds a Lync host's 33019s the way
the lab seeds a broken host (``event_logs.seed_symptoms``) and reads everything back from the report and the state
file, never from the collection's parsers.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from tests.twin import event_logs, winhttp_value

from ._runs import FAST, comparable_state, run_fix_crl, site_proxies

pytestmark = pytest.mark.lab

HOST = "lync-fe01.lab.test"


def seed(lab, *, proxy: str | None, count: int, hours: int) -> None:
    """HOST with ``proxy`` in both views (None: no value, the incident) and ``count`` 33019s in the last ``hours``."""
    state = lab.reset_state(HOST)
    value = None if proxy is None else winhttp_value.encode(7, proxy, "")
    for view in ("native", "wow6432"):
        state["registry"][view]["WinHttpSettings"] = None if value is None else base64.b64encode(value).decode()
    state["event_logs"][event_logs.LYNC] = []
    event_logs.seed_symptoms(state, count=count, now=dt.datetime.now(dt.UTC), hours=hours)
    lab.write_state(HOST, state)


def event_33019(host: dict) -> dict:
    return next(e for e in host["evidence"]["events"] if (e["log"], e["id"]) == ("Lync Server", 33019))


def logged_33019(state: dict) -> list[str]:
    return sorted(e["time"] for e in state["event_logs"][event_logs.LYNC] if e["id"] == 33019)


def without_events_since(state: dict, since: str) -> dict:
    """The state without the Lync events logged from ``since`` on: the audit's own mutual-TLS handshake with a broken
    host's service takes longer than Lync's limit, and the service logs that 33019 itself (twin/sip_listener.py)."""
    state = comparable_state(state)
    state["event_logs"][event_logs.LYNC] = [e for e in state["event_logs"][event_logs.LYNC] if e["time"] < since]
    return state


def test_a_broken_lync_host_shows_its_33019s_then_none_since_the_fix(fleet, tmp_path) -> None:
    seed(fleet, proxy=None, count=47, hours=24)
    started = event_logs.iso(dt.datetime.now(dt.UTC))
    before = comparable_state(fleet.state(HOST))
    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", HOST, extra_vars=FAST)
    host = audit.host(HOST)
    assert (host["status"], host["commands"]) == ("would_change", 1), host
    seen = event_33019(host)
    assert (seen["provider"], seen["count"], seen["before"], seen["since"]) == ("LS IM MCU", 47, None, None)
    assert seen["message"].endswith("TLS Negotiation took too long to complete.")
    assert "capi2_log_disabled" in [f["code"] for f in host["findings"]]
    assert host["evidence"]["chain_engine"]["ChainUrlRetrievalTimeoutMilliseconds"]["source"] == "policy"
    assert without_events_since(fleet.state(HOST), started) == before  # --check wrote nothing, the marker included
    assert "hosts with symptoms: 1 in the last 24 h" in " ".join(audit.stdout.split())

    fix = run_fix_crl(fleet, tmp_path / "fix", "-l", HOST, extra_vars=FAST)
    assert fix.host(HOST)["status"] == "changed", fix.host(HOST)
    fixed_at = fleet.state(HOST)["registry"]["crlfix"]["FixedAt"]
    assert fix.host(HOST)["evidence"]["marker"] == {"previous": None, "written": fixed_at}

    later = run_fix_crl(fleet, tmp_path / "later", "--check", "-l", HOST, extra_vars=FAST)
    host = later.host(HOST)
    assert host["status"] == "compliant", host
    assert host["evidence"]["fixed_at"] == fixed_at
    seen = event_33019(host)
    # The 47 seeded, and those the audit's own handshakes with the broken service made it log, all before the fix.
    assert seen["before"] == len([t for t in logged_33019(fleet.state(HOST)) if t < fixed_at]) >= 47
    assert seen["since"] == 0
    assert not {"symptoms_since_fix", "symptoms_without_cause"} & {f["code"] for f in host["findings"]}
    assert (later.report["totals"]["symptoms_before"], later.report["totals"]["symptoms_since"]) == (1, 0)
    assert "hosts with symptoms: 1 before, 0 since the fix" in " ".join(later.stdout.split())


def test_fresh_33019s_on_a_host_whose_proxy_and_chain_checks_pass_are_symptoms_without_cause(fleet, tmp_path) -> None:
    seed(fleet, proxy=site_proxies(fleet)[fleet.hosts[HOST].site], count=5, hours=1)
    audit = run_fix_crl(fleet, tmp_path, "--check", "-l", HOST, extra_vars=FAST)
    host = audit.host(HOST)
    assert host["status"] == "compliant", host
    found = {f["code"]: f for f in host["findings"]}
    detail = found["symptoms_without_cause"]["detail"]
    # What was checked is named: the machine proxy's path, the handshakes, and each service identity's chain.
    assert detail.startswith(
        "LS IM MCU 33019 x5 while the revocation endpoints through the machine WinHTTP proxy and the TLS handshakes "
        "with revocation checking and the chain check as "), detail
    assert "the chain check as NT AUTHORITY\\NETWORK SERVICE" in detail and " pass: look elsewhere" in detail, detail
    assert found["symptoms_without_cause"]["identity"] is None
