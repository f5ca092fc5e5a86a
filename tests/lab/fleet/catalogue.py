"""Every scenario a lab host can be put in by name: the registry behind ``scripts/lab.py scenarios`` and ``seed``.

Four sources, read when asked, so a scenario added to any of them is listed and seeded without touching lab.py:

- the starting states of ``plan.SCENARIOS`` (the WinHTTP values a host of the seeded rotation starts with), described
  in ``STARTING_STATES``;
- the extra scenarios of ``scenarios.py`` (``scenarios.EXTRA_SCENARIOS``, applied by ``scenarios.apply_scenario``),
  each described by its bullet in that module's docstring (``- ``name``: text``; its first sentence);
- the TLS axis of ``tls_scenarios.py`` (``tls10_peer``), which changes the host's class, so its twin restarts;
- the cause catalogue's scenarios of ``cause_scenarios.py`` (``cause_scenarios.CAUSE_SCENARIOS``, described by their
  bullets as the extra ones), named by the cause's code; a code that already names a scenario is listed once.

``seed`` turns a host's state into the scenario's: a starting state is the host as the lab would have built it in
that state (its services started after the value was written: a new service process, nothing in memory, the lab's
certificates, clock and chain-engine timeouts); an extra or cause scenario is applied on that; a scenario that changes
the OS (the host class) needs the twin restarted. Several names combine, applied in order on one starting state (at
most one of them a starting state, or a cause that stands for one).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab.fleet import cause_scenarios, plan, scenarios, tls_scenarios
from tests.twin import event_logs, service_process
from tests.twin.state import utc_text

STARTING_STATES = {
    "correct": "netsh holds the site's proxy in both views: the state the fix leads to",
    "direct": "netsh direct access in both views: every revocation retrieval waits out its timeout",
    "wrong_proxy": f"netsh names a proxy that never answers ({plan.WRONG_PROXY}) in both views",
    "views_disagree": "the site's proxy in the 64-bit view, direct access in WOW6432Node (only one netsh was run)",
    "missing": "no WinHttpSettings value in either view (a host netsh never touched)",
    "bypass": "the site's proxy with a bypass list (<local>;*.lab.test) in both views",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "starting state", "extra", "tls", "cause"
    description: str


def _extra_descriptions(module: Any = scenarios) -> dict[str, str]:
    """Each scenario's first sentence, from its bullet in the module's docstring."""
    found = {}
    for match in re.finditer(r"^- ``(\w+)``: (.+?)(?=^- ``|\Z)", module.__doc__ or "", re.M | re.S):
        text = " ".join(match.group(2).replace("``", "").split())
        found[match.group(1)] = re.split(r"(?<=\.)\s", text, maxsplit=1)[0].rstrip(".")
    return found


def catalogue() -> dict[str, Scenario]:
    """Every scenario by name, in the order lab.py lists them."""
    found = {name: Scenario(name, "starting state", STARTING_STATES.get(name, "a starting state of plan.py"))
             for name in plan.SCENARIOS}
    described = _extra_descriptions()
    for name in scenarios.EXTRA_SCENARIOS:
        found[name] = Scenario(name, "extra", described.get(name, "an extra scenario of scenarios.py"))
    found[tls_scenarios.TLS10_PEER] = Scenario(
        tls_scenarios.TLS10_PEER, "tls",
        "a Lync Server 2010 front end on Windows Server 2008 R2 SP1 with WMF 5.1: Schannel speaks TLS 1.0 only")
    causes = _extra_descriptions(cause_scenarios)
    for name in cause_scenarios.CAUSE_SCENARIOS:
        found.setdefault(name, Scenario(name, "cause", causes.get(name, "a cause scenario of cause_scenarios.py")))
    return found


def unknown_scenario(name: str) -> str:
    return f"unknown scenario {name!r}; the scenarios are: {', '.join(catalogue())}"


def names_of(requested: str | list[str] | tuple[str, ...]) -> list[str]:
    """The scenario names of a request: one name, a comma-separated list, or a list of either."""
    items = [requested] if isinstance(requested, str) else list(requested)
    names = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    if not names:
        raise ValueError(f"scenario: expected a name or a list of names, got {requested!r}")
    return names


def _starting_state(names: list[str]) -> str:
    """The one starting state a combination begins from (``correct`` when none of its names is one)."""
    wanted = [cause_scenarios.ALIASES.get(n, n) for n in names]
    starting = [n for n in wanted if n in plan.SCENARIOS]
    if len(starting) > 1:
        raise ValueError(f"scenario: {', '.join(names)} names more than one starting state ({', '.join(starting)})")
    return starting[0] if starting else plan.SCENARIOS[0]


def seed(state: dict[str, Any], name: str | list[str], *, proxy: str, group: str, os_build: int,
         now: float | None = None, lab_dir: Path | None = None) -> tuple[dict[str, Any], bool]:
    """(the host's state in scenario ``name``, whether its twin must restart); ValueError for an unknown name.

    ``name`` may be several (a list, or names joined with commas), applied in order. ``proxy`` is the host's site
    proxy, ``group``/``os_build`` the host's role and build in the fleet (a host seeded out of ``tls10_peer`` gets its
    build back), ``lab_dir`` the lab (its PKI: the host's certificates are put back, the cause scenarios add theirs)."""
    names = names_of(name)
    for one in names:
        if one not in catalogue():
            raise ValueError(unknown_scenario(one))
    now = time.time() if now is None else now
    seeded = copy.deepcopy(state)
    base = _starting_state(names)
    native, wow = plan.seeded_values(base, random.Random(f"{state.get('fqdn')}:{base}"), proxy)
    # As the lab builds a host: the value written, then the host boots and starts its services.
    seeded["os"] = {key: value for key, value in seeded["os"].items() if key != "overrides"}
    seeded["os"]["build"] = os_build
    written = utc_text(now - 60)
    for view, value in (("native", native), ("wow6432", wow)):
        seeded["registry"][view]["WinHttpSettings"] = None if value is None else base64.b64encode(value).decode()
        seeded.setdefault("registry_write_times", {})[view] = written
    seeded["ie_proxy"] = None
    for account in seeded["accounts"].values():
        account["ie"] = None
    cause_scenarios.reset(seeded, lab_dir, {"ChainUrlRetrievalTimeoutMilliseconds": plan.LAB_URL_TIMEOUT_MS,
                                            "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds":
                                            plan.LAB_CHAIN_TIMEOUT_MS})
    seeded["service_process"] = service_process.new_process(seeded, now)
    seeded["booted"] = now
    seeded.setdefault("lab", {})["scenario"] = base
    if group == "lync_servers":
        seeded["event_logs"][event_logs.LYNC] = []
        if base in plan.SYMPTOM_SCENARIOS:
            event_logs.seed_symptoms(seeded, count=20, now=dt.datetime.fromtimestamp(now, dt.UTC))
    for one in names:
        wanted = cause_scenarios.ALIASES.get(one, one)
        if wanted in scenarios.EXTRA_SCENARIOS:
            seeded = scenarios.apply_scenario(seeded, wanted, proxy)
        elif wanted == tls_scenarios.TLS10_PEER:
            seeded = tls_scenarios.seed_tls10_peer(seeded)
        elif wanted not in plan.SCENARIOS:
            seeded = cause_scenarios.apply_cause(seeded, wanted, proxy=proxy, lab_dir=lab_dir)
    seeded["lab"]["scenario"] = ",".join(names)
    return seeded, seeded["os"] != state["os"]


__all__ = ["STARTING_STATES", "Scenario", "catalogue", "names_of", "seed", "unknown_scenario"]
