"""plugin_utils/_fix_crl/_causes.py: the cause catalogue; every cause is reached by a record showing its evidence.

The records are shaped as ``HostRecord.as_dict`` makes them (the fields each rule reads: ``before.views``, the checks'
CRL and TLS results as ``crl_retrieval_check``/``tls_probe`` return them, ``flags``, ``endpoints``, ``evidence``,
``findings``, ``identities``, ``trust_store``).
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils._winhttp_settings import (
    build_winhttp_settings,
    bytes_to_reg_hex,
    encode_winhttp_settings,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _causes

CRL = "http://pki.contoso.com/Issuing.crl"
PROXY = "proxy.contoso.com:8080"
PROXIED = {"native": {"mode": "proxy", "proxy": PROXY}, "wow6432": {"mode": "proxy", "proxy": PROXY}}
DIRECT = {"native": {"mode": "direct", "proxy": None}, "wow6432": {"mode": "direct", "proxy": None}}


def gpp_item(proxy: str = "", bypass: str = "") -> dict[str, t.Any]:
    """A Group Policy Preferences registry item for WinHttpSettings, its value as Registry.xml holds it (hex)."""
    value = bytes_to_reg_hex(encode_winhttp_settings(build_winhttp_settings(proxy=proxy, bypass=bypass, counter=7)))
    return {"gpo": "{31B2F340}", "gpo_name": "Proxy (old)", "action": "U", "name": "WinHttpSettings", "value": value}


def url(**result: t.Any) -> dict[str, t.Any]:
    return {"url": CRL, "kind": "crl", "reachable": True, "usable": True, "http_status": 200, "error": None,
            **result}


def record(*, status: str = "failed", views: dict | None = None, crl: list | None = None, tls: list | None = None,
           **fields: t.Any) -> dict[str, t.Any]:
    return {"status": status, "before": {"views": PROXIED if views is None else views},
            "desired": {"state": "present", "proxy": PROXY}, "planned": {"views": []},
            "checks": {"before": {"passed": False, "summary": "CRL: 0/1 endpoints reachable",
                                  "crl": {"results": crl or []}, "tls": {"results": tls or []}}},
            "flags": {}, "endpoints": [], "evidence": {}, "findings": [], "identities": {}, **fields}


def finding(code: str, detail: str = "seen", identity: str | None = None) -> dict[str, t.Any]:
    return {"code": code, "detail": detail, "identity": identity}


TIMED_OUT = url(reachable=False, usable=False, http_status=None, error="The operation timed out", winhttp_error=12002)
CASES: dict[str, dict[str, t.Any]] = {
    "clock_skew": record(evidence={"clock": {"host_at": "2026-12-07T21:00:00Z", "controller_at": "2026-12-07T18:00:00Z",
                                             "skew_s": 10800.0}}),
    "gpo_overwrites_proxy": record(evidence={"gpp_registry": [gpp_item()]}),
    "no_proxy": record(status="would_change", views=DIRECT, crl=[TIMED_OUT]),
    "views_disagree": record(status="would_change", views={"native": PROXIED["native"], "wow6432": DIRECT["wow6432"]}),
    "proxy_unreachable": record(crl=[url(reachable=False, usable=False, http_status=None, winhttp_error=12029,
                                         error="A connection with the server could not be established")]),
    "proxy_requires_auth": record(crl=[url(usable=False, http_status=407, error="HTTP status 407")]),
    "proxy_denies_agent": record(crl=[url(usable=False, http_status=403, error="HTTP status 403")]),
    "proxy_cannot_reach_endpoint": record(crl=[url(reachable=False, usable=False, http_status=503,
                                                   proxy_error="ERR_DNS_FAIL 0")]),
    "identity_path": record(identities={"NT AUTHORITY\\NETWORK SERVICE": {"chain_ok": False}},
                            findings=[finding("identity_path_differs", "CryptoAPI as NETWORK SERVICE goes direct",
                                              "NT AUTHORITY\\NETWORK SERVICE")]),
    "crl_expired_at_source": record(crl=[url(usable=False, stale=True, next_update="2026-12-06T04:00:00Z")]),
    "endpoint_missing_at_source": record(crl=[url(usable=False, http_status=404, error="HTTP status 404")]),
    "delta_crl_blocked": record(crl=[url(), url(url="http://pki.contoso.com/Issuing+.crl", kind="delta_crl",
                                                usable=False, http_status=404)]),
    "crl_rejected": record(crl=[url(usable=False, rejected="the CRL signature does not verify with the issuer's key")]),
    "ocsp_responder_failing": record(crl=[url(url="http://ocsp.contoso.com/", kind="ocsp", usable=False,
                                              ocsp_status="unauthorized")]),
    "ldap_only_cdp": record(flags={"ldap_only": ["AB" * 20]}),
    "https_cdp": record(endpoints=[{"url": "https://pki.contoso.com/Issuing.crl", "kind": "crl"}]),
    "stale_service": record(findings=[finding("service_stale", "the service process started before the change")]),
    "slow_chain_timeouts": record(findings=[finding("slow_chain_timeouts", "ChainUrlRetrievalTimeoutMilliseconds")]),
    "non_self_signed_root": record(trust_store={"non_self_signed": [{"subject": "CN=Issuing", "issuer": "CN=Root",
                                                                     "thumbprint": "CD" * 20}]}),
    "trusted_issuer_list_too_large": record(trust_store={"count": 400, "issuer_list_bytes": 31000}),
    "root_autoupdate_blocked": record(evidence={"root_autoupdate": {"DisableRootAutoUpdate": 1}},
                                      tls=[{"peer": "fe02:5061", "chain_status": ["UntrustedRoot"]}]),
    "protocol_mismatch": record(findings=[finding("protocol_mismatch", "fe02:5061: no TLS protocol in common")]),
}


def test_every_cause_of_the_catalogue_has_a_case() -> None:
    assert set(CASES) == {cause.code for cause in _causes.CATALOGUE}
    assert len({cause.code for cause in _causes.CATALOGUE}) == len(_causes.CATALOGUE)
    assert {cause.owner for cause in _causes.CATALOGUE} <= set(_causes.OWNERS)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_cause_is_diagnosed_from_its_evidence_with_its_owner_and_fix(code: str) -> None:
    diagnosis = _causes.diagnose(CASES[code])
    assert code in [entry["cause"] for entry in diagnosis], diagnosis
    entry = next(e for e in diagnosis if e["cause"] == code)
    cause = _causes.BY_CODE[code]
    assert (entry["owner"], entry["fix"], entry["fixable_here"]) == (cause.owner, cause.fix, cause.fixable_here)
    assert entry["evidence"] and all(entry["evidence"])


def test_a_compliant_changed_or_unreachable_host_has_no_diagnosis() -> None:
    for status in ("compliant", "changed", "unreachable"):
        assert _causes.diagnose(record(status=status, views=DIRECT, crl=[TIMED_OUT])) == []


def test_nothing_that_fits_is_undetermined_with_what_was_seen() -> None:
    [entry] = _causes.diagnose(record(findings=[finding("capi2_log_disabled")]))
    assert entry["cause"] == "undetermined"
    assert entry["evidence"] == ["CRL: 0/1 endpoints reachable; findings capi2_log_disabled"]


def test_a_host_that_needs_a_change_while_its_proof_passes_has_nothing_to_explain() -> None:
    # The inventory asks for another bypass list: the proxy works, every check passes, no cause holds.
    drift = record(status="would_change", crl=[url()])
    drift["checks"]["before"].update(passed=True, summary="CRL: 1/1 endpoints reachable")
    assert _causes.diagnose(drift) == []
    # ... but a cause that holds is still named, and a failing proof with no cause is still undetermined.
    drift["trust_store"] = {"non_self_signed": [{"subject": "CN=I", "issuer": "CN=R", "thumbprint": "EF" * 20}]}
    assert [entry["cause"] for entry in _causes.diagnose(drift)] == ["non_self_signed_root"]
    assert _causes.diagnose(record(status="would_change", crl=[url()]))[0]["cause"] == "undetermined"


def test_the_primary_cause_comes_first_and_several_causes_hold_together() -> None:
    both = record(status="would_change", views=DIRECT, crl=[TIMED_OUT],
                  trust_store={"non_self_signed": [{"subject": "CN=I", "issuer": "CN=R", "thumbprint": "EF" * 20}]})
    assert [entry["cause"] for entry in _causes.diagnose(both)] == ["no_proxy", "non_self_signed_root"]


def test_an_answer_that_worked_is_no_evidence() -> None:
    assert _causes.diagnose(record(crl=[url(http_status=404, usable=True, kind="ocsp")]))[0]["cause"] == "undetermined"
    assert _causes.diagnose(record(crl=[url(stale=True)]))[0]["cause"] == "undetermined"  # usable: not expired


def test_after_a_rolled_back_change_the_views_are_the_ones_the_run_set() -> None:
    rolled_back = record(status="rolled_back", views=DIRECT, planned={"views": ["native", "wow6432"]})
    refused = url(reachable=False, usable=False, http_status=None,
                  error="A connection with the server could not be established")
    rolled_back["checks"]["after"] = {"passed": False, "summary": "CRL: 0/1", "crl": {"results": [refused]},
                                      "tls": {"results": []}}
    assert _causes.diagnose(rolled_back)[0]["cause"] == "proxy_unreachable"


def test_a_group_policy_that_writes_the_desired_proxy_is_no_cause() -> None:
    writes = {"desired": {"state": "present", "proxy": PROXY, "bypass": ["<local>"]}}
    enforcing = record(evidence={"gpp_registry": [gpp_item(PROXY, "<local>")]}, **writes)
    assert "gpo_overwrites_proxy" not in [e["cause"] for e in _causes.diagnose(enforcing)]
    other = record(evidence={"gpp_registry": [gpp_item("old-proxy:3128", "<local>")]}, **writes)
    [entry] = [e for e in _causes.diagnose(other) if e["cause"] == "gpo_overwrites_proxy"]
    assert "(proxy old-proxy:3128)" in entry["evidence"][0]
    direct = record(evidence={"gpp_registry": [gpp_item()]}, **writes)
    assert "(direct access)" in _causes.diagnose(direct)[0]["evidence"][0]


def test_a_cause_on_a_passing_host_is_a_risk_not_a_diagnosis() -> None:
    responder = url(url="http://ocsp.contoso.com/", kind="ocsp", reachable=True, usable=False,
                    ocsp_status="unauthorized")
    passing = record(status="compliant", crl=[url(), responder],
                     trust_store={"non_self_signed": [{"subject": "CN=I", "issuer": "CN=R", "thumbprint": "EF" * 20}]})
    assert _causes.diagnose(passing) == []
    assert [e["cause"] for e in _causes.risks(passing)] == ["ocsp_responder_failing", "non_self_signed_root"]
    assert _causes.risks({**passing, "status": "failed"}) == []  # a failing host's causes are its diagnosis
    assert _causes.risks(record(status="compliant", crl=[url()])) == []
