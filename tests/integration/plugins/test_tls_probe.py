"""crlfix.windows.tls_probe from one lab twin to another's SIP-style TLS port, through ansible + winrm.

The handshake is real TLS to the peer twin's listener (its lab-PKI leaf); the prober checks revocation
through its own CryptoAPI model: its WinHTTP proxy, its URL cache and its retrieval timeouts (the lab's
3 s per URL / 4 s per chain, tests/lab/fleet/plan.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.lab.fleet import plan
from tests.lab.pki import CRL_HOST

from ._adhoc import run_module, set_proxy


def _refused_port(address: str) -> int:
    """A port on the peer's address where nothing listens (bound and released: connect is refused)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _probe(lab, prober, peers, tmp_path, **args):
    doc = run_module(lab, prober, "tls_probe", {"peers": peers, "probe_timeout_ms": 8000, **args}, tmp_path)
    return {r["peer"]: r for r in doc["results"]}, doc


def test_with_the_proxy_the_handshake_passes_and_the_crl_lands_in_the_cache(lab, pair, tmp_path) -> None:
    prober, peer = pair
    set_proxy(lab, prober, lab.proxy)
    refused = _refused_port(lab.hosts[peer].address)
    good, bad = f"{peer}:{lab.tls_port}", f"{peer}:{refused}"
    results, doc = _probe(lab, prober, [good, bad], tmp_path, probe_samples=2)
    assert results[good]["verdict"] == "pass", results[good]
    assert results[good]["chain_status"] == [] and results[good]["revocation_unknown"] is False
    assert results[good]["protocol"] in ("Tls12", "Tls13")
    assert results[bad]["verdict"] == "error"
    assert all("actively refused" in e for e in results[bad]["errors"]), results[bad]["errors"]
    assert doc["all_pass"] is False
    cached = {entry["url"] for entry in lab.state(prober)["url_cache"]}
    assert f"http://{CRL_HOST}/issuing-ca.crl" in cached  # CryptoAPI's URL cache, written through


def test_without_a_proxy_revocation_is_unknown_and_the_handshake_waits_for_the_timeout(lab, pair, tmp_path) -> None:
    prober, peer = pair
    set_proxy(lab, prober, None)
    target = f"{peer}:{lab.tls_port}"
    results, _doc = _probe(lab, prober, [target], tmp_path, probe_samples=1)
    result = results[target]
    assert result["verdict"] == "revocation_unknown", result
    assert {"RevocationStatusUnknown", "OfflineRevocation"} <= set(result["chain_status"])
    # The host measured its own handshake: it includes CryptoAPI's modelled per-URL retrieval timeout.
    assert result["min_ms"] >= plan.LAB_URL_TIMEOUT_MS
    assert lab.state(prober)["url_cache"] == []  # failures are not cached


def test_without_revocation_checking_the_same_probe_passes(lab, pair, tmp_path) -> None:
    prober, peer = pair
    set_proxy(lab, prober, None)
    target = f"{peer}:{lab.tls_port}"
    results, _doc = _probe(lab, prober, [target], tmp_path, probe_samples=1, check_revocation=False)
    assert results[target]["verdict"] == "pass" and results[target]["chain_status"] == []


def test_a_slow_probe_does_not_hold_up_other_hosts_of_the_lab(lab, pair, tmp_path) -> None:
    # The twin runs host scripts that wait on the network in a worker thread. Here the prober's handshake hangs
    # on a peer that accepts TCP and never answers (it cannot end before the test closes that connection);
    # meanwhile another host of the same lab process must still answer. A blocked event loop fails the test
    # through the 60 s limit on the other host's command.
    prober, _peer = pair
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(60)
        args = {"peers": [f"127.0.0.1:{listener.getsockname()[1]}"], "probe_samples": 1, "probe_timeout_ms": 120000}
        ansible = Path(sys.executable).with_name("ansible")  # .venv/bin/ansible, as lab.run_ansible uses
        cmd = [str(ansible), "-i", str(lab.inventory_path), prober, "-m", "crlfix.windows.tls_probe",
               "-a", json.dumps(args)]
        slow = subprocess.Popen(cmd, env=lab.ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            conn, _addr = listener.accept()  # the prober's script is now inside its handshake
            with conn:
                other = next(name for name in lab.hosts if name not in pair)
                quick = subprocess.run(
                    [str(ansible), "-i", str(lab.inventory_path), other, "-m", "raw", "-a", "hostname"],
                    env=lab.ansible_env(), capture_output=True, text=True, timeout=60, check=False,
                )
                assert quick.returncode == 0, quick.stdout + quick.stderr
                assert other.split(".")[0].upper() in quick.stdout
                assert slow.poll() is None
        finally:
            output, _stderr = slow.communicate(timeout=120)
    assert "verdict: error" in output and "Authentication failed" in output, output
