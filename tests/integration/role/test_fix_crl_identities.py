"""fix_crl proves the host as its services' identities: the admin_ie_only scenario end to end.

``admin_ie_only`` (tests/lab/fleet/scenarios.py): netsh direct in both views, the connecting admin has a working IE
proxy, the service accounts have none. The twin's CryptoAPI picks its proxy as the account that runs it (KB 2623724,
tests/twin/identities.py), so the admin's TLS probes pass through the IE proxy while NETWORK SERVICE (the Lync
front end's RTCSRV) would go direct. The run must say so (finding ``identity_path_differs``) and, after the fix,
every identity goes through the netsh proxy.
"""

from __future__ import annotations

import pytest

from ._runs import FAST, run_fix_crl, seed_scenario

pytestmark = pytest.mark.lab

NS = "NT AUTHORITY\\NETWORK SERVICE"
IDENTITY_CODES = ("identity_path_differs", "proxy_rejects_agent")


def test_admin_ie_only_is_found_as_the_services_identity_and_fixed_for_it(fleet, tmp_path) -> None:
    name, proxy = seed_scenario(fleet, "admin_ie_only")

    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name, extra_vars=FAST)
    host = audit.host(name)
    assert host["status"] == "would_change", host["reason"]
    # The admin's own CryptoAPI check passes (its IE proxy); the service identity would go direct.
    assert host["verification"]["before"]["tls_ok"] is True, host["verification"]
    assert host["caller"]["effective_proxy"] == {"source": "ie", "proxy": proxy}
    assert host["identities"][NS]["effective_proxy"] == {"source": "direct", "proxy": None}
    assert host["identities"][NS]["services"] == ["RTCSRV", "RTCMEDSRV"]
    # Only the identity's path differs (other findings, e.g. the evidence's capi2_log_disabled, are not about it).
    assert [(f["code"], f["identity"]) for f in host["findings"] if f["code"] in IDENTITY_CODES] == [
        ("identity_path_differs", NS)]
    # The chain built as NETWORK SERVICE (a one-shot scheduled task in the same command) does not finish.
    assert host["identities"][NS]["chain_ok"] is False, host["identities"][NS]
    assert host["verification"]["before"]["passed"] is False
    assert "as NT AUTHORITY\\NETWORK SERVICE" in host["verification"]["before"]["summary"]
    assert host["commands"] == 1
    state = fleet.state(name)
    assert state["counters"]["netsh_writes"] == 0
    assert state["counters"]["scheduled_tasks"] == 1 and state["scheduled_tasks"] == []  # created and removed
    assert state["counters"]["urlcache_deletes"] == 0  # check mode purges nothing
    assert state["counters"].get("chain_resyncs", 0) == 0 and host["chain_cache_resync"] is None

    fix = run_fix_crl(fleet, tmp_path / "fix", "-l", name, extra_vars=FAST)
    host = fix.host(name)
    assert host["status"] == "changed", host["reason"]
    assert host["identities"][NS]["effective_proxy"] == {"source": "netsh", "proxy": proxy}
    assert host["identities"][NS]["chain_ok"] is True and host["identities"][NS]["cache_purged"] is True
    assert host["verification"]["after"]["passed"] is True
    assert [f for f in host["findings"] if f["code"] in IDENTITY_CODES] == []
    assert host["commands"] == 3
    # NETWORK SERVICE's own URL cache now holds the CRLs it fetched through the proxy.
    state = fleet.state(name)
    assert state["accounts"]["S-1-5-20"]["url_cache"]
    # The chain engines were told to drop what they cached before the fix; the previous value is kept to restore.
    assert host["chain_cache_resync"]["written_b64"] == state["chain_engine_resync"]
    assert host["chain_cache_resync"]["previous_b64"] is None and state["counters"]["chain_resyncs"] == 1
