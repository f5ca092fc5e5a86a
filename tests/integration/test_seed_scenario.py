"""The seed incident, reproduced on loopback: slow TLS without a WinHTTP proxy, fast with one, and the CRL
fetched again through squid once its NextUpdate has passed (docs/lab.md, "The seed scenario").

Everything runs for real except Windows itself: the real ``ansible-playbook`` over winrm to the twins, real TLS
between two twins (prober -> peer:5061), real HTTP through Debian's squid to the lab's CRL server. Time passes
for real too: the CRL is published with a NextUpdate a few seconds ahead and the test waits for it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from tests.lab.fleet import plan
from tests.lab.pki import CRL_HOST

from .plugins._adhoc import http_profile_hosts, set_proxy

ISSUING_CRL = f"http://{CRL_HOST}/issuing-ca.crl"
# Long enough that the CRL is still valid when probe 2 fetches it on a loaded 2-core box, short enough to wait.
SHORT_NEXT_UPDATE = dt.timedelta(seconds=20)

PLAYBOOK = """
- hosts: {prober}
  gather_facts: false
  tasks:
    - name: Set the machine WinHTTP proxy (the fix)
      crlfix.windows.winhttp_proxy:
        proxy: "{proxy}"
      when: set_proxy | default(false) | bool
    - name: Probe the peer's SIP TLS port with revocation checking
      crlfix.windows.tls_probe:
        peers: ["{peer}:{port}"]
        probe_samples: {samples}
        probe_timeout_ms: 10000
        max_handshake_ms: 1000
      register: probe
    - ansible.builtin.copy:
        content: "{{{{ probe | to_json }}}}"
        dest: "{out}"
      delegate_to: localhost
"""


def _probe(lab, tmp_path: Path, step: str, prober: str, peer: str, *, samples: int, set_proxy: bool = False):
    out = tmp_path / f"{step}.json"
    playbook = tmp_path / f"{step}.yml"
    playbook.write_text(PLAYBOOK.format(prober=prober, peer=peer, port=lab.tls_port, proxy=lab.proxy,
                                        samples=samples, out=out))
    lab.run_playbook(playbook, "-e", json.dumps({"set_proxy": set_proxy}))
    return json.loads(out.read_text())["results"][0]


def _crl_fetches(lab, since: int) -> list[str]:
    return [line for line in lab.squid().access_log_lines()[since:] if f"GET {ISSUING_CRL}" in line]


@pytest.fixture
def hosts(lab):
    prober, peer = http_profile_hosts(lab)[:2]
    set_proxy(lab, prober, None)  # the seed: no WinHTTP proxy, empty URL cache
    lab.clear_crl_faults()
    yield prober, peer
    lab.publish_crls(plan.SESSION_CRL_VALIDITY)  # what the session's other tests expect
    lab.reset_state(prober)


def test_seed_slow_without_proxy_fast_with_it_and_refetched_after_next_update(lab, hosts, tmp_path) -> None:
    prober, peer = hosts
    mark = len(lab.squid().access_log_lines())

    # 1. No proxy: CryptoAPI cannot fetch the CRL; the handshake waits for the retrieval timeout.
    before = _probe(lab, tmp_path, "1-no-proxy", prober, peer, samples=1)
    assert before["verdict"] == "revocation_unknown", before
    assert before["min_ms"] >= plan.LAB_URL_TIMEOUT_MS  # the host's own measurement
    assert not _crl_fetches(lab, mark)  # nothing reached squid: direct connections are dropped

    # 2. winhttp_proxy sets the lab's squid; the same probe fetches the CRL once, then serves it from cache.
    lab.publish_crls(SHORT_NEXT_UPDATE)
    next_update = dt.datetime.now(dt.UTC) + SHORT_NEXT_UPDATE
    after = _probe(lab, tmp_path, "2-proxy", prober, peer, samples=2, set_proxy=True)
    assert after["verdict"] == "pass", after
    assert after["chain_status"] == [] and after["max_ms"] < plan.LAB_URL_TIMEOUT_MS
    assert len(_crl_fetches(lab, mark)) == 1  # sample 2 used CryptoAPI's URL cache
    cached = {e["url"]: e for e in lab.state(prober)["url_cache"]}
    assert ISSUING_CRL in cached

    # 3. Once NextUpdate has passed the cached CRL is no longer used: the next probe fetches it again.
    mark = len(lab.squid().access_log_lines())
    time.sleep(max(0.0, (next_update - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
    lab.publish_crls(plan.CRL_NEXT_UPDATE)  # the CA has published its next CRL
    again = _probe(lab, tmp_path, "3-after-next-update", prober, peer, samples=1)
    assert again["verdict"] == "pass", again
    assert len(_crl_fetches(lab, mark)) == 1, lab.squid().access_log_lines()[mark:]
    print(f"seed timings (ms): no proxy {before['samples_ms']}, proxy {after['samples_ms']}, "
          f"after NextUpdate {again['samples_ms']}")  # shown with pytest -s; docs/lab.md quotes them
    refreshed = {e["url"]: e for e in lab.state(prober)["url_cache"]}[ISSUING_CRL]
    assert refreshed["next_update"] > cached[ISSUING_CRL]["next_update"]
