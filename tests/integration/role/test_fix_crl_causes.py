"""Every cause of the catalogue, seeded on the session lab's hosts by its code and diagnosed by an audit (--check).

Each cause code (plugins/plugin_utils/_fix_crl/_causes.py) is a lab scenario (tests/lab/fleet/cause_scenarios.py);
the causes are seeded in batches, one cause per host, on the hosts whose own certificate is not LDAP-only, and one
``--check -l`` of each batch's hosts and the healthy ``correct`` host audits them. Every seeded host probes the
healthy host (the ``protocol_mismatch`` host a ``tls10_peer`` one), so a seeded fault never shows on another host; a
host behind a cause's proxy gets that proxy as its site's ``fix_crl_proxy``. Each test checks the host's diagnosis
holds the cause as its primary one (after the one its scenario brings: ``cause_scenarios.expected``), with the
catalogue's owner and evidence naming what was seeded; a cause that fails nothing the audit measures leaves the host
compliant and is its risk. The healthy host has no diagnosis. The lab is put back after each batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import BY_CODE, CATALOGUE
from tests.lab.fleet import cause_scenarios
from tests.lab.pki import PROFILE_LDAP_ONLY, leaf_profile

from ._runs import FAST, PlaybookRun, run_fix_crl, site_proxies

pytestmark = pytest.mark.lab

# What the evidence of each cause names of its seed.
SEEN = {
    "clock_skew": "ahead of the controller", "gpo_overwrites_proxy": cause_scenarios.GPO_NAME,
    "no_proxy": "direct access", "views_disagree": "wow6432 direct", "proxy_unreachable": "10.255.0.1:8080",
    "proxy_requires_auth": "HTTP 407", "proxy_denies_agent": "HTTP 403",
    "proxy_cannot_reach_endpoint": "from the proxy",
    "identity_path": "goes direct", "crl_expired_at_source": "legacy-ca.crl",
    "endpoint_missing_at_source": "branch-ca.crl", "delta_crl_blocked": "issuing-ca+.crl",
    "crl_rejected": "renewed-ca.crl", "ocsp_responder_failing": "unauthorized", "ldap_only_cdp": "ldap://",
    "https_cdp": "https://crl.public-ca.test", "stale_service": "started at", "slow_chain_timeouts": "60000 ms",
    "non_self_signed_root": "Lab Public Issuing CA", "trusted_issuer_list_too_large": "over 16384",
    "root_autoupdate_blocked": "DisableRootAutoUpdate is 1", "protocol_mismatch": "no TLS protocol in common",
}
CAUSES = [cause.code for cause in CATALOGUE]
HEALTHY = "correct"


class CauseRuns:
    """The batches of seeded hosts, each audited once when a test first asks for one of its causes."""

    def __init__(self, lab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        usable = sorted(n for n, h in lab.hosts.items() if leaf_profile(n) != PROFILE_LDAP_ONLY)
        self.healthy = next(n for n in usable if lab.hosts[n].scenario == HEALTHY)
        self.hosts = [n for n in usable if n != self.healthy]
        # protocol_mismatch needs a TLS 1.0 peer: a host of its batch is seeded tls10_peer (and not audited).
        rest, size = [c for c in CAUSES if c != "protocol_mismatch"], len(self.hosts)
        self.batches: list[dict[str, tuple[str, ...]]] = [
            dict(zip(self.hosts, ((c,) for c in rest[i:i + size]), strict=False)) for i in range(0, len(rest), size)]
        if len(self.batches[-1]) + 2 > size:
            self.batches.append({})
        free = [h for h in self.hosts if h not in self.batches[-1]]
        self.batches[-1].update({free[0]: ("protocol_mismatch",), free[1]: ("tls10_peer",)})
        self.reports: dict[int, PlaybookRun] = {}

    def batch_of(self, cause: str) -> int:
        return next(i for i, batch in enumerate(self.batches) if (cause,) in batch.values())

    def host_of(self, cause: str) -> str:
        return next(h for h, seed in self.batches[self.batch_of(cause)].items() if seed == (cause,))

    def run(self, cause: str) -> PlaybookRun:
        index = self.batch_of(cause)
        if index not in self.reports:
            self.reports[index] = self._audit(index)
        return self.reports[index]

    def _audit(self, index: int) -> PlaybookRun:
        batch, lab = self.batches[index], self.lab
        tls10 = next((h for h, seed in batch.items() if seed == ("tls10_peer",)), None)
        port = lab.tls_port
        proxies = site_proxies(lab)
        overlay: dict = {}
        restarted = []
        try:
            for host, seed in batch.items():
                if lab.seed(host, *seed)["restarted"]:
                    restarted.append(host)
                peer = tls10 if seed == ("protocol_mismatch",) else self.healthy
                variables: dict = {"fix_crl_peers": [f"{peer}:{port}"]}
                proxy = cause_scenarios.site_proxy(seed, proxies[lab.hosts[host].site])
                if proxy is not None:
                    variables["fix_crl_proxy"] = proxy
                overlay[host] = variables
            overlay[self.healthy] = {"fix_crl_peers": []}  # its peers would be seeded hosts
            inventory = self.tmp / f"batch-{index}.yml"
            inventory.write_text(json.dumps({"all": {"hosts": overlay}}))
            audited = [h for h, seed in batch.items() if seed != ("tls10_peer",)] + [self.healthy]
            return run_fix_crl(lab, self.tmp / f"report-{index}", "--check", "-l", ",".join(audited),
                               extra_vars=FAST, inventories=[lab.inventory_path, inventory])
        finally:
            for host in batch:
                lab.reset_state(host)
                if host in restarted:
                    lab.stop_twin(host)
                    lab.start_twin(host)


@pytest.fixture(scope="module")
def cause_runs(lab, tmp_path_factory) -> CauseRuns:
    for name in lab.hosts:
        lab.reset_state(name)
    return CauseRuns(lab, tmp_path_factory.mktemp("causes"))


@pytest.mark.parametrize("cause", CAUSES)
def test_a_seeded_cause_is_the_hosts_diagnosis_or_its_risk_with_its_owner_and_evidence(cause_runs, cause) -> None:
    run = cause_runs.run(cause)
    record = run.host(cause_runs.host_of(cause))
    key, wanted = cause_scenarios.expected((cause,))
    if key == "risks":  # it fails nothing the audit measures: the host passes and names it
        assert record["status"] == "compliant" and record["diagnosis"] == [], (record["status"], record["reason"])
    named = record[key]
    assert [d["cause"] for d in named[:len(wanted)]] == list(wanted), [(d["cause"], d["evidence"]) for d in named]
    seen = next(d for d in named if d["cause"] == cause)
    assert seen["owner"] == BY_CODE[cause].owner
    assert any(SEEN[cause] in text for text in seen["evidence"]), seen["evidence"]
    if key == "diagnosis":
        assert record["reason"].startswith(BY_CODE[wanted[0]].title), record["reason"]


def test_the_healthy_host_audited_beside_the_seeded_ones_has_no_diagnosis(cause_runs) -> None:
    run = cause_runs.run("crl_expired_at_source")
    record = run.host(cause_runs.healthy)
    assert record["status"] == "compliant", record["reason"]
    assert record["diagnosis"] == []
    assert run.report["incidents"] and all(cause_runs.healthy not in i["hosts"] for i in run.report["incidents"])


def test_every_cause_code_of_the_catalogue_is_a_lab_scenario() -> None:
    from tests.lab.fleet import catalogue

    assert set(CAUSES) <= set(catalogue.catalogue()), set(CAUSES) - set(catalogue.catalogue())
    assert set(SEEN) == set(CAUSES)
