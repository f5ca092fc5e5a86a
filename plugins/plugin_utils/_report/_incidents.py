# PRIVATE to the crlfix.windows collection; may change without notice.
"""Across the fleet: the hosts' diagnoses grouped into incidents, and what changed since the last report.

An incident is one cause and what its hosts share: the URL that fails (a CRL expired at its publisher, a delta CRL
refused), the proxy they go through (a proxy asking for authentication), or only the cause (a host setting). Where the
hosts fetch a failing URL through their proxies decides whose it is: one URL failing through every path it was tried
on is the source's (the cause's owner, PKI for a publisher); failing only through one proxy while other hosts fetched
it through another is that proxy's (network). The incidents lead the summary and the page; ``set_stats`` carries the
counts per cause and per owner so that an AWX notification can route them.
"""

from __future__ import annotations

import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import BY_CODE, CATALOGUE


def _as_list(value: t.Any) -> list[t.Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _as_dict(value: t.Any) -> dict[str, t.Any]:
    return dict(value) if isinstance(value, t.Mapping) else {}


def host_path(host: t.Mapping[str, t.Any]) -> str:
    """How the host reaches the internet for its revocation fetches: its native view's proxy, else direct."""
    native = _as_dict(_as_dict(_as_dict(host.get("before")).get("views")).get("native"))
    return str(native.get("proxy")) if native.get("mode") == "proxy" and native.get("proxy") else "direct"


def _fetched_fine(hosts: t.Sequence[t.Mapping[str, t.Any]], url: str) -> set[str]:
    """The paths (proxies, or direct) through which some host got a usable answer from ``url``."""
    paths = set()
    for host in hosts:
        for endpoint in _as_list(host.get("endpoints")):
            result = _as_dict(_as_dict(endpoint).get("result"))
            if result.get("url") == url and result.get("usable"):
                paths.add(host_path(host))
    return paths


_ORDER = {cause.code: index for index, cause in enumerate(CATALOGUE)}


def build_incidents(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The report's ``incidents``: per cause and what its hosts share, the biggest first."""
    groups: dict[tuple[str, str, str], dict[str, t.Any]] = {}
    for host in hosts:
        for entry in _as_list(host.get("diagnosis")):
            entry = _as_dict(entry)
            cause = str(entry.get("cause"))
            by_url = [("url", url) for url in _as_list(entry.get("urls"))]
            by_proxy = [("proxy", proxy) for proxy in _as_list(entry.get("proxies"))]
            # A proxy's refusal is one incident per proxy, whatever URLs it refused; a publisher's, one per URL.
            keys = (by_proxy or by_url if entry.get("owner") == "network" else by_url or by_proxy) or [("", "")]
            for kind, value in keys:
                incident = groups.setdefault((cause, kind, value), {
                    "cause": cause, "title": entry.get("title"), "owner": entry.get("owner"), "fix": entry.get("fix"),
                    "fixable_here": entry.get("fixable_here"), "key": {kind: value} if kind else {}, "hosts": [],
                    "groups": set(), "paths": set(), "evidence": None})
                incident["hosts"].append(host.get("host"))
                incident["groups"].update(str(group) for group in _as_list(host.get("groups")))
                incident["paths"].add(host_path(host))
                evidence = _as_list(entry.get("evidence"))
                if incident["evidence"] is None and evidence:
                    incident["evidence"] = evidence[0]
    incidents = [_finish(incident, hosts) for incident in groups.values()]
    return sorted(incidents, key=lambda i: (-len(i["hosts"]), _ORDER.get(i["cause"], len(_ORDER)), str(i["key"])))


def _finish(incident: dict[str, t.Any], hosts: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """Whose the incident is and its one line: a URL failing only through one proxy while other paths fetched it is
    that proxy's; otherwise it is the cause's owner's."""
    paths = sorted(incident.pop("paths"))
    incident["groups"] = sorted(incident["groups"])
    incident["hosts"] = sorted(set(incident["hosts"]))
    incident["paths"] = paths
    url = incident["key"].get("url")
    scope = "hosts"
    if url:
        fine = _fetched_fine(hosts, url) - set(paths)
        scope = "proxy" if len(paths) == 1 and paths[0] != "direct" and fine else "source"
        if scope == "proxy":
            incident["owner"] = "network"
            incident["fix"] = f"{paths[0]} fails this URL while {', '.join(sorted(fine))} fetched it: fix that proxy"
    incident["scope"] = scope
    where = {"source": f"through {len(paths)} path(s) ({', '.join(paths)})", "proxy": f"only through {paths[0]}",
             "hosts": f"behind {len(paths)} path(s)"}[scope]
    key = url or incident["key"].get("proxy")
    count = len(incident["hosts"])
    groups = f" in {len(incident['groups'])} group(s)" if incident["groups"] else ""
    seen = f" ({incident['evidence']})" if incident["evidence"] and not key else ""
    incident["text"] = (f"{key + ': ' if key else ''}{incident['title']}{seen}: {count} host(s){groups} {where}; "
                        f"owner {incident['owner']}; fix: {incident['fix']}")
    return incident


def cause_counts(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """(hosts per cause, hosts per owner) over every cause that holds on a host, for ``set_stats``."""
    causes: dict[str, int] = {}
    owners: dict[str, set[str]] = {}
    for host in hosts:
        for entry in _as_list(host.get("diagnosis")):
            entry = _as_dict(entry)
            cause = str(entry.get("cause"))
            causes[cause] = causes.get(cause, 0) + 1
            owner = str(entry.get("owner") or BY_CODE.get(cause, BY_CODE["undetermined"]).owner)
            owners.setdefault(owner, set()).add(str(host.get("host")))
    return dict(sorted(causes.items())), {owner: len(names) for owner, names in sorted(owners.items())}


def risk_counts(hosts: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, int]:
    """Hosts per cause among the risks of hosts whose proof passes (``totals.risks``)."""
    counts: dict[str, int] = {}
    for host in hosts:
        for cause in {str(_as_dict(entry).get("cause")) for entry in _as_list(host.get("risks"))}:
            counts[cause] = counts.get(cause, 0) + 1
    return dict(sorted(counts.items()))


def since_last_run(hosts: t.Sequence[t.Mapping[str, t.Any]], previous: t.Mapping[str, t.Any] | None,
                   previous_path: str | None) -> dict[str, t.Any] | None:
    """What changed since ``previous`` (the last report in the same place): hosts newly failing and newly fixed, causes
    that appeared and cleared (per cause, the hosts). None without a previous report."""
    if not previous:
        return None
    problems = {"rolled_back", "failed", "unreachable", "not_run", "would_change"}
    before = {str(h.get("host")): _as_dict(h) for h in _as_list(previous.get("hosts"))}
    now = {str(h.get("host")): _as_dict(h) for h in hosts}

    def causes_of(host: t.Mapping[str, t.Any]) -> set[str]:
        return {str(_as_dict(d).get("cause")) for d in _as_list(host.get("diagnosis"))}

    appeared: dict[str, list[str]] = {}
    cleared: dict[str, list[str]] = {}
    for name in sorted(set(before) | set(now)):
        was, is_ = causes_of(before.get(name, {})), causes_of(now.get(name, {}))
        for cause in sorted(is_ - was):
            appeared.setdefault(cause, []).append(name)
        if name in now:
            for cause in sorted(was - is_):
                cleared.setdefault(cause, []).append(name)
    run = _as_dict(previous.get("run"))
    return {
        "previous": {"run_id": run.get("id"), "time": run.get("time"), "path": previous_path},
        "newly_failing": sorted(n for n, h in now.items() if h.get("status") in problems
                                and _as_dict(before.get(n)).get("status") not in problems),
        "newly_fixed": sorted(n for n, h in now.items() if h.get("status") not in problems
                              and _as_dict(before.get(n)).get("status") in problems),
        "causes_appeared": appeared,
        "causes_cleared": cleared,
    }


__all__ = ["build_incidents", "cause_counts", "host_path", "risk_counts", "since_last_run"]
