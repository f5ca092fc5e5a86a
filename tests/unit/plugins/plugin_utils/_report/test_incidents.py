"""_report/_incidents.py: the hosts' diagnoses grouped into incidents, whose each is, and what changed since the last
run.

The host entries are shaped as the report document holds them (_report/_document.py ``_host_entry``); their
``diagnosis`` entries as ``_fix_crl/_causes.entry`` makes them.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import BY_CODE, Evidence, entry
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._fleet import previous_report
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._incidents import (
    build_incidents,
    cause_counts,
    risk_counts,
    since_last_run,
)

CRL = "http://pki.contoso.com/Issuing.crl"
EAST, WEST = "proxy-east.contoso.com:8080", "proxy-west.contoso.com:8080"


def host(name: str, proxy: str | None, *causes: tuple[str, list[Evidence]], status: str = "failed",
         usable: bool | None = None, groups: t.Sequence[str] = ()) -> dict[str, t.Any]:
    native = {"mode": "proxy", "proxy": proxy} if proxy else {"mode": "direct", "proxy": None}
    result = None if usable is None else {"url": CRL, "usable": usable}
    return {"host": name, "status": status, "before": {"views": {"native": native}}, "groups": list(groups),
            "endpoints": [{"url": CRL, "result": result}],
            "diagnosis": [entry(BY_CODE[code], seen) for code, seen in causes]}


EXPIRED = ("crl_expired_at_source", [Evidence(f"{CRL} is stale: NextUpdate 2026-12-06T04:00:00Z", url=CRL)])


def test_a_crl_expired_at_its_source_on_hosts_behind_two_proxies_is_one_incident_of_the_pki() -> None:
    hosts = [host("fe01", EAST, EXPIRED, groups=["site_east"]), host("fe02", EAST, EXPIRED, groups=["site_east"]),
             host("mbx01", WEST, EXPIRED, groups=["site_west"]), host("ok01", WEST, status="compliant")]
    [incident] = build_incidents(hosts)
    assert (incident["cause"], incident["owner"], incident["scope"]) == ("crl_expired_at_source", "pki", "source")
    assert incident["key"] == {"url": CRL} and incident["hosts"] == ["fe01", "fe02", "mbx01"]
    assert incident["groups"] == ["site_east", "site_west"] and incident["paths"] == [EAST, WEST]
    assert incident["text"].startswith(f"{CRL}: a CRL expired at its publisher: 3 host(s) in 2 group(s) through 2 "
                                       "path(s)")
    assert "owner pki; fix: republish the CRL" in incident["text"]


def test_a_url_failing_only_through_one_proxy_while_another_fetched_it_is_that_proxys() -> None:
    missing = ("endpoint_missing_at_source", [Evidence(f"{CRL} answered HTTP 404", url=CRL)])
    hosts = [host("fe01", EAST, missing, usable=False), host("fe02", EAST, missing, usable=False),
             host("mbx01", WEST, status="compliant", usable=True)]
    [incident] = build_incidents(hosts)
    assert (incident["scope"], incident["owner"]) == ("proxy", "network")
    assert f"only through {EAST}" in incident["text"] and f"while {WEST} fetched it" in incident["fix"]


def test_host_causes_group_by_cause_and_proxy_causes_by_proxy_biggest_first() -> None:
    # As the rule says it: each URL the proxy refused, with the proxy; one proxy is one incident, whatever the URLs.
    delta = CRL.replace(".crl", "+.crl")
    auth = ("proxy_requires_auth", [Evidence(f"{CRL} answered HTTP 407", url=CRL, proxy=EAST),
                                    Evidence(f"{delta} answered HTTP 407", url=delta, proxy=EAST)])
    root = ("non_self_signed_root", [Evidence("the Root store holds CN=Issuing issued by CN=Root")])
    hosts = [host("fe01", EAST, auth, root), host("fe02", EAST, auth), host("fe03", WEST, root)]
    incidents = build_incidents(hosts)
    assert [(i["cause"], i["key"], len(i["hosts"])) for i in incidents] == [
        ("proxy_requires_auth", {"proxy": EAST}, 2), ("non_self_signed_root", {}, 2)]
    assert incidents[1]["scope"] == "hosts" and "(the Root store holds CN=Issuing" in incidents[1]["text"]
    assert cause_counts(hosts) == ({"non_self_signed_root": 2, "proxy_requires_auth": 2}, {"network": 2, "server": 2})


def test_since_the_last_run_names_hosts_newly_failing_and_fixed_and_causes_appeared_and_cleared() -> None:
    previous = {"run": {"id": "fix-crl-1", "time": "2026-12-06T04:00:00Z"},
                "hosts": [host("fe01", None, ("no_proxy", [Evidence("netsh: direct")]), status="would_change"),
                          host("fe02", EAST, status="compliant")]}
    now = [host("fe01", EAST, status="compliant"), host("fe02", EAST, EXPIRED)]
    since = since_last_run(now, previous, "/r/fix-crl-1.json")
    assert since["previous"] == {"run_id": "fix-crl-1", "time": "2026-12-06T04:00:00Z", "path": "/r/fix-crl-1.json"}
    assert (since["newly_failing"], since["newly_fixed"]) == (["fe02"], ["fe01"])
    assert since["causes_appeared"] == {"crl_expired_at_source": ["fe02"]}
    assert since["causes_cleared"] == {"no_proxy": ["fe01"]}
    assert since_last_run(now, None, None) is None


def test_the_previous_report_is_the_newest_run_report_of_the_directory(tmp_path) -> None:
    def write(name: str, document: t.Any) -> None:
        (tmp_path / name).write_text(json.dumps(document))

    write("fix-crl-20261205T000000Z-1.json", {"kind": "crlfix.windows.fix_crl_report", "run": {"id": "old"}})
    write("fix-crl-20261206T000000Z-1.json", {"kind": "crlfix.windows.fix_crl_report", "run": {"id": "new"}})
    write("merged-20261207T000000Z.json", {"kind": "crlfix.windows.fix_crl_report", "run": {"id": "m", "merged": 1}})
    write("zz-other.json", {"kind": "something else"})
    (tmp_path / "zzz-broken.json").write_text("{")
    report, path = previous_report(str(tmp_path), None)
    assert report["run"]["id"] == "new" and path.endswith("fix-crl-20261206T000000Z-1.json")
    assert previous_report(str(tmp_path / "none"), None) == (None, None)


def test_risks_count_the_passing_hosts_per_cause() -> None:
    ocsp = entry(BY_CODE["ocsp_responder_failing"], [Evidence("http://ocsp.contoso.com/ answered unauthorized")])
    hosts = [{**host("fe01", EAST, status="compliant"), "risks": [ocsp]},
             {**host("fe02", EAST, status="changed"), "risks": [ocsp, ocsp]}, host("fe03", EAST, EXPIRED)]
    assert risk_counts(hosts) == {"ocsp_responder_failing": 2}
    assert build_incidents(hosts)[0]["cause"] == "crl_expired_at_source" and len(build_incidents(hosts)) == 1
