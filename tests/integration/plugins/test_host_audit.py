"""run_host_audit against lab twins through Ansible's real winrm connection plugin, in this process.

No module wraps host_audit (the fix_crl action does), so the helper is called directly with a winrm connection
built the way Ansible's task executor builds one from the lab inventory's variables. The twin answers with its
host_audit (tests/twin/scripts/host_audit.py): real CRL fetches through squid or the modelled firewall drop, real
TLS handshakes to another twin, its own DER walk for the URLs. Command counts come from the twins' counters.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import typing as t

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import Endpoint, interpret_result
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import (
    time_box_error,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script
from tests.lab.pki import CRL_HOST, ISSUING_CRL_URL, ROOT_CRL_URL, LabCA

from ._adhoc import set_proxy
from ._audit_run import CRL_TIMEOUT_MS
from ._audit_run import audit_connection as _connection
from ._audit_run import audit_request as _request
from ._audit_run import run_audit as _audit

TIMED_OUT = "The operation timed out"  # ERROR_WINHTTP_TIMEOUT


def test_with_the_proxy_one_command_gives_usable_crls_and_passing_probes(lab, pair) -> None:
    prober, peer = pair
    set_proxy(lab, prober, lab.proxy)
    extra = Endpoint(f"http://{CRL_HOST}/root.crl", "crl")
    result, commands = _audit(lab, prober, _request(lab, peer, endpoints=(extra,)))
    assert commands == 1 and result.commands == 1 and result.warnings == []
    assert result.winhttp["views"]["native"]["proxy"] == lab.proxy
    assert result.winhttp_state.computer_name == result.winhttp["computer_name"]
    assert not isinstance(result.certificates, ExpectedFailure) and result.certificates["certificates"]
    crl = result.crl
    urls = {r["url"] for r in crl["results"]}
    assert {e["url"] for e in result.certificates["endpoints"]} <= urls and ROOT_CRL_URL in urls
    assert crl["all_usable"] is True, crl["results"]
    by_url = {r["url"]: r for r in crl["results"]}
    assert by_url[ISSUING_CRL_URL]["parsed_as"] == "crl" and by_url[ISSUING_CRL_URL]["fresh"] is True
    assert result.tls["all_pass"] is True, result.tls["results"]
    assert len(result.tls["results"][0]["samples_ms"]) == 2


def test_without_a_proxy_the_crls_time_out_and_the_probes_overlap_the_fetch(lab, pair) -> None:
    prober, peer = pair
    set_proxy(lab, prober, None)
    result, commands = _audit(lab, prober, _request(lab, peer, samples=3))
    assert commands == 1
    crl, tls = result.crl, result.tls
    assert crl["summary"]["unreachable"] == crl["summary"]["total"] > 0
    assert {r["error"] for r in crl["results"]} == {TIMED_OUT}
    probe = tls["results"][0]
    assert probe["verdict"] == "revocation_unknown" and probe["errors"] == []
    # stop_after_unknown: the 2nd and 3rd samples would have waited the same chain timeout; they were skipped.
    assert probe["samples_ms"][0] is not None and probe["samples_ms"][1:] == [None, None]
    # Host-side times only: the fetch took about CRL_TIMEOUT_MS, the probe about the chain timeout; run one after
    # the other they would take their sum, side by side about the larger.
    crl_part = max(r["elapsed_ms"] for r in crl["results"])
    tls_part = probe["tcp_connect_ms"][0] + probe["samples_ms"][0]
    assert crl_part >= CRL_TIMEOUT_MS and tls_part >= CRL_TIMEOUT_MS
    assert result.elapsed_ms < crl_part + tls_part, (result.elapsed_ms, crl_part, tls_part)
    assert result.elapsed_ms >= max(crl_part, tls_part)


def test_stores_null_fetches_the_given_urls_after_the_purge(lab, pair) -> None:
    prober, _peer = pair
    cached = [{"url": "http://crl.public-ca.test/old.crl", "kind": "crl"}]
    set_proxy(lab, prober, lab.proxy, url_cache=cached)
    assert lab.state(prober)["url_cache"]
    request = _request(lab, None, certs=False, purge=True, endpoints=(Endpoint(ISSUING_CRL_URL, "crl"),))
    result, commands = _audit(lab, prober, request)
    assert commands == 1 and result.certificates is None and result.tls is None
    assert [r["url"] for r in result.crl["results"]] == [ISSUING_CRL_URL]
    assert result.crl["purged"] is True and result.crl["all_usable"] is True
    assert lab.state(prober)["url_cache"] == []


def _deep_chain(depth: int) -> tuple[list[x509.Certificate], x509.Certificate, x509.Certificate]:
    """A root, ``depth`` CAs under it and a leaf; every non-root carries an http CDP on the lab's CRL host."""
    now = dt.datetime.now(dt.UTC)

    def make(cn, issuer_cert, issuer_key, *, ca, crl=None):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (x509.CertificateBuilder().subject_name(name)
                   .issuer_name(issuer_cert.subject if issuer_cert else name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if crl:
            builder = builder.add_extension(x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)]), critical=False)
        return builder.sign(issuer_key or key, hashes.SHA256()), key

    root, root_key = make("Deep Root", None, None, ca=True)
    cas, parent, parent_key = [], root, root_key
    for level in range(depth):
        parent, parent_key = make(f"Deep CA {level}", parent, parent_key, ca=True,
                                  crl=f"http://{CRL_HOST}/deep-ca{level}.crl")
        cas.append(parent)
    leaf, _leaf_key = make("deep.lab.test", parent, parent_key, ca=False, crl=f"http://{CRL_HOST}/deep-leaf.crl")
    return cas, root, leaf


def test_urls_the_hosts_walk_misses_cost_a_second_command_and_a_warning(lab, pair) -> None:
    prober, _peer = pair
    state = set_proxy(lab, prober, lab.proxy)
    cas, root, leaf = _deep_chain(7)  # leaf + 7 CAs: the host walks 6 certificates, the controller the whole chain

    def entry(cert, key=False):
        return {"der_b64": base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"), "has_private_key": key}

    state["cert_stores"] = {"My": [entry(leaf, True)], "CA": [entry(c) for c in cas], "Root": [entry(root)]}
    lab.write_state(prober, state)
    result, commands = _audit(lab, prober, _request(lab, None))
    missed = [f"http://{CRL_HOST}/deep-ca{level}.crl" for level in (1, 0)]
    assert commands == 2 and result.commands == 2
    assert len(result.warnings) == 1 and all(url in result.warnings[0] for url in missed)
    results = {r["url"]: r for r in result.crl["results"]}
    assert len(results) == 8 and all(url in results for url in missed)
    # The lab's CRL server has no such files: each answer is the server's 404 through squid, for both commands.
    assert {r["http_status"] for r in results.values()} == {404}


def test_a_planted_certificates_malformed_cdp_is_one_invalid_endpoint_and_the_rest_are_checked(lab, pair) -> None:
    """A CDP with a space and one with a quote in one certificate of the store (as a planted test
    certificate had) are reported with their reason; every legitimate endpoint is still fetched and judged."""
    prober, _peer = pair
    state = set_proxy(lab, prober, lab.proxy)
    space, quote = f"http://{CRL_HOST}/planted crl.crl", f'http://{CRL_HOST}/"planted".crl'
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "planted.lab.test")])
    ca = LabCA(lab.lab_dir)  # issued by the lab's CA: a self-signed certificate is a root, whose CDP is never read
    planted = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.issuing_cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                   [x509.UniformResourceIdentifier(space), x509.UniformResourceIdentifier(quote)], None, None, None)]),
                   critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuing_key.public_key()),
                              critical=False)
               .sign(ca.issuing_key, hashes.SHA256()))
    state["cert_stores"]["My"].append({"der_b64": base64.b64encode(planted.public_bytes(Encoding.DER)).decode(),
                                       "has_private_key": True})
    lab.write_state(prober, state)
    result, commands = _audit(lab, prober, _request(lab, None))
    assert commands == 1
    assert not isinstance(result.crl, ExpectedFailure), result.crl
    invalid = {entry["url"]: entry["reason"] for entry in result.crl["invalid_endpoints"]}
    assert invalid == {space: f"URL contains whitespace or control characters: {space!r}",
                       quote: f"URL contains '\"', which a URL must percent-encode: {quote!r}"}
    by_url = {r["url"]: r for r in result.crl["results"]}
    assert space not in by_url and quote not in by_url
    assert by_url[ISSUING_CRL_URL]["usable"] is True and result.crl["all_usable"] is True, result.crl["results"]
    assert result.crl["summary"]["invalid"] == 2


def test_the_twins_crl_fetch_keeps_the_bodies_under_the_document_cap(lab, pair) -> None:
    """A body that would pass max_document_bytes is left out whole, `truncated_by`
    says which limit cut it, and the controller names the document's cap."""
    prober, _peer = pair
    set_proxy(lab, prober, lab.proxy)
    urls = [ISSUING_CRL_URL, ROOT_CRL_URL]
    args = {"urls": urls, "timeout_ms": CRL_TIMEOUT_MS, "purge_cache": False, "max_bytes": 4194304}
    connection = _connection(lab, prober)
    try:
        whole = run_host_script(connection, "crl_fetch", args, task_action="test")["results"]
        capped = run_host_script(connection, "crl_fetch", {**args, "max_document_bytes": 1},
                                 task_action="test")["results"]
        cut = run_host_script(connection, "crl_fetch", {**args, "max_bytes": 10}, task_action="test")["results"]
    finally:
        connection.close()
    assert [(r["status"], r["truncated"], r["truncated_by"]) for r in whole] == [(200, False, None)] * 2
    assert [(r["truncated"], r["truncated_by"], r["body_b64"]) for r in capped] == [(True, "document_cap", "")] * 2
    assert [r["bytes"] for r in capped] == [r["bytes"] for r in whole]
    assert [(r["truncated_by"], len(base64.b64decode(r["body_b64"]))) for r in cut] == [("max_bytes", 10)] * 2
    said = interpret_result(Endpoint(urls[0], "crl"), capped[0], now=dt.datetime.now(dt.UTC), max_bytes=4194304,
                            field="results[0]")
    assert said["error"].startswith(f"the body ({whole[0]['bytes']} bytes) was left out by the document cap")


# --- the audit's time box (docs/performance.md) -----------------------------------------------------------------------

BOX_MS = 1000


def test_a_time_box_ends_the_wait_of_a_host_without_a_proxy(lab, pair) -> None:
    prober, peer = pair
    state = set_proxy(lab, prober, None)
    # Un-boxed, the command would wait the CRL timeout and the first sample's chain timeout (the lab's ChainEngine).
    chain_timeout_ms = int(state["chain_engine"]["ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds"])
    crl_timeout_ms = 8000
    result, commands = _audit(lab, prober, _request(lab, peer, samples=3, crl_timeout_ms=crl_timeout_ms,
                                                    time_box_ms=BOX_MS))
    assert commands == 1 and result.time_box_ms == BOX_MS and result.time_box_hit is True
    crl = result.crl
    assert crl["summary"]["total"] > 0 and crl["summary"]["unreachable"] == crl["summary"]["total"]
    assert {r["error"] for r in crl["results"]} == {time_box_error(BOX_MS)}
    assert not any(r["usable"] for r in crl["results"])
    probe = result.tls["results"][0]
    assert probe["verdict"] == "error" and probe["errors"] == [f"sample 1: {time_box_error(BOX_MS)}"]
    assert probe["samples_ms"] == [None, None, None]
    # Host-side time only: the box, not the timeouts it cut short.
    assert BOX_MS <= result.elapsed_ms < min(crl_timeout_ms, chain_timeout_ms), result.elapsed_ms


def test_a_healthy_host_finishes_inside_a_time_box_as_without_one(lab, pair) -> None:
    prober, peer = pair
    set_proxy(lab, prober, lab.proxy)
    boxed, _boxed_metrics = _audit(lab, prober, _request(lab, peer, time_box_ms=20000))
    assert boxed.time_box_ms == 20000 and boxed.time_box_hit is False
    plain, _plain_metrics = _audit(lab, prober, _request(lab, peer))
    assert plain.time_box_ms is None and plain.time_box_hit is False
    for result in (boxed, plain):
        assert result.crl["all_usable"] is True, result.crl["results"]
        assert result.tls["all_pass"] is True, result.tls["results"]
    assert [r["url"] for r in boxed.crl["results"]] == [r["url"] for r in plain.crl["results"]]


@pytest.fixture
def silent_peer() -> t.Iterator[int]:
    """A loopback TCP port that accepts and never says a word: a TLS handshake to it waits on the socket."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_a_time_box_abandons_a_handshake_waiting_on_a_silent_peer(lab, pair, silent_peer) -> None:
    prober, _peer = pair
    set_proxy(lab, prober, lab.proxy)
    request = _request(lab, "127.0.0.1", certs=False, samples=2, time_box_ms=BOX_MS, port=silent_peer)
    result, commands = _audit(lab, prober, request)
    assert commands == 1 and result.crl is None and result.time_box_hit is True
    probe = result.tls["results"][0]
    assert probe["errors"] == [f"sample 1: {time_box_error(BOX_MS)}"] and probe["verdict"] == "error"
    assert probe["tcp_connect_ms"] == [None, None]
    # The probe's own socket timeout (probe_timeout_ms) did not have to run out.
    assert BOX_MS <= result.elapsed_ms < request.probe_timeout_ms, result.elapsed_ms
