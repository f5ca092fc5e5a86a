"""A fleet report with one host of every status, built by the real report writer (``_fleet_report``).

The module results inside the records have the keys of ``tls_probe`` and ``crl_retrieval_check`` that the
report reads (plugins/plugin_utils/_tls_probe.py, _crl_retrieval.py; roles/fix_crl/README.md "The host
record"). One host name and its reason carry HTML on purpose: host data is untrusted and must stay text.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import diagnose
from ansible_collections.crlfix.windows.plugins.plugin_utils._report._document import build_report

MOMENT = dt.datetime(2026, 11, 26, 5, 1, 2, tzinfo=dt.UTC)
CRL_URL = "http://crl.public-ca.test/lab-int.crl"
HOSTILE_HOST = 'evil<script>alert("x")</script>.lab.test'
HOSTILE_REASON = '<img src=x onerror="alert(1)"> & </td></tr><tr><td>injected'


def tls(worst: float | None, *, passed: bool, threshold: int = 1000) -> dict[str, t.Any]:
    verdict = "pass" if passed else "slow"
    results = [] if worst is None else [
        {"peer": "lync-fe02.lab.test:5061", "max_ms": worst, "median_ms": worst, "verdict": verdict}
    ]
    return {"results": results, "all_pass": passed, "worst_ms": worst, "max_handshake_ms": threshold}


def crl(reachable: bool, url: str = CRL_URL, *, status: int | None = None,
        proxy_error: str | None = None) -> dict[str, t.Any]:
    """A CRL check of one URL: fetched, timed out, or (``status``) answered by the proxy with an error."""
    error = None if reachable else f"HTTP {status}" if status else "The operation timed out"
    return {
        "results": [{"url": url, "reachable": reachable, "usable": reachable,
                     "http_status": 200 if reachable else status, "error": error, "proxy_error": proxy_error}],
        "all_reachable": reachable, "all_usable": reachable,
    }


def views(proxy: str | None) -> dict[str, t.Any]:
    native = {"present": proxy is not None, "mode": "proxy" if proxy else "direct", "proxy": proxy or "",
              "bypass": ["<local>"] if proxy else [], "raw_b64": None}
    return {"views": {"native": native, "wow6432": dict(native)}}


def record(host: str, status: str, **extra: t.Any) -> dict[str, t.Any]:
    base = {
        "schema": 1, "host": host, "status": status, "reason": extra.pop("reason", None), "check_mode": False,
        "desired": {"state": "present", "proxy": "127.0.0.1:3128", "bypass": ["<local>"], "views": ["native"]},
        "before": views(None), "planned": {"change": status != "compliant"}, "after": views(None),
        "certificates": [], "flags": {},
        "endpoints": [{"url": CRL_URL, "kind": "crl", "scheme": "http", "certificates": ["AB12"]}],
        "checks": {}, "rollback": None, "errors": [],
    }
    base.update(extra)
    return base


def evidence(before: int, since: int, *, fixed_at: str | None, written: str | None = None) -> dict[str, t.Any]:
    """A record's ``evidence`` (_fix_crl/_evidence.py): 33019s per hour before the fix, and ``since`` after it."""
    hourly = {f"2026-11-26T0{hour}:00:00Z": count for hour, count in ((0, before // 2), (1, before - before // 2))}
    if since:
        hourly["2026-11-26T04:00:00Z"] = since
    fixed = fixed_at is not None
    return {"error": None, "read_at": "2026-11-26T05:01:00Z", "hours": 24, "fixed_at": fixed_at,
            "marker": {"previous": None, "written": written},
            "events": [{"log": "Lync Server", "provider": "LS IM MCU", "id": 33019, "count": before + since,
                        "first": "2026-11-26T00:10:00Z", "last": "2026-11-26T04:10:00Z",
                        "message": "Lync Server IM MCU failed to connect to the SIP Front End. ... Message: TLS "
                                   "Negotiation took too long to complete.",
                        "before": before if fixed else None, "since": since if fixed else None}],
            "hourly": hourly, "logs": [], "queries": [], "chain_engine": None}


def fleet_records(check_mode: bool = False) -> dict[str, dict[str, t.Any]]:
    records = {
        "lync-fe01.lab.test": record(
            "lync-fe01.lab.test", "compliant", before=views("127.0.0.1:3128"), after=views("127.0.0.1:3128"),
            checks={"before": {"crl": crl(True), "tls": tls(12, passed=True), "passed": True}},
            evidence=evidence(47, 0, fixed_at="2026-11-26T02:30:00Z")),
        "lync-fe02.lab.test": record(
            "lync-fe02.lab.test", "changed", after=views("127.0.0.1:3128"),
            checks={"before": {"crl": crl(False), "tls": tls(15012, passed=False), "passed": False},
                    "after": {"crl": crl(True), "tls": tls(14, passed=True), "passed": True}},
            evidence=evidence(12, 2, fixed_at=None, written="2026-11-26T05:00:40Z")),
        "lync-fe03.lab.test": record(
            "lync-fe03.lab.test", "rolled_back", reason="verification failed after setting proxy 127.0.0.1:3128",
            planned={"change": True, "views": ["native", "wow6432"]},
            checks={"before": {"crl": crl(False), "tls": tls(15020, passed=False), "passed": False},
                    "after": {"crl": crl(False, status=503, proxy_error="ERR_DNS_FAIL"), "tls": tls(900, passed=False),
                              "passed": False},
                    "after_rollback": {"crl": crl(False), "tls": tls(15030, passed=False), "passed": False}},
            rollback={"performed": True, "ok": True, "restored": {"native": None}}),
        "exch-mbx01.lab.test": record(
            "exch-mbx01.lab.test", "would_change",
            checks={"before": {"crl": crl(False), "tls": tls(4100, passed=False), "passed": False}}),
        "adfs01.lab.test": record(
            "adfs01.lab.test", "unreachable", reason="gather: connection refused", before=None, after=None,
            errors=[{"step": "gather", "msg": "connection refused", "unreachable": True}]),
        HOSTILE_HOST: record(
            HOSTILE_HOST, "failed", reason=HOSTILE_REASON,
            endpoints=[{"url": 'http://crl.test/"><script>alert(2)</script>', "kind": "crl"}],
            errors=[{"step": "<b>verify</b>", "msg": "<script>alert(3)</script>"}],
            checks={"before": {"tls": tls(250, passed=True), "passed": False}}),
    }
    for item in records.values():
        item["check_mode"] = check_mode
        item["diagnosis"] = diagnose(item)  # as the record's file holds it (_fix_crl/_record.py)
    return records


def sample_report(*, run_id: str = "fix-crl-20261126T050102Z-4242", moment: dt.datetime = MOMENT,
                  check_mode: bool = False, hosts: list[str] | None = None,
                  records: dict[str, dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """The report of a run over ``hosts`` (default: the whole sample fleet plus one host never reached)."""
    records = fleet_records(check_mode) if records is None else records
    targeted = hosts if hosts is not None else [*records, "adfs02.lab.test"]
    return build_report(targeted, {name: records[name] for name in targeted if name in records},
                        check_mode=check_mode, run_id=run_id, moment=moment,
                        context={"limit": "lync_servers", "playbook": "playbooks/fix-crl.yml", "awx_job_id": None})
