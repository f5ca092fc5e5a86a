"""run_host_audit (plugin_utils/_fix_crl/_run.py, parsed by _audit.py): host_audit documents replayed at the seam.

The fake host (fixtures/audit_host.py) answers host_audit the way the script does. Each slot of the result is
compared with what the single-script code returns for the same sub-document, which is the contract: the
parsers are reused unchanged.
"""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import MissingCryptographyError
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import (
    summarise_inventory,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import (
    Endpoint,
    run_crl_retrieval_check,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _audit as _host_audit
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import (
    host_args,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import Criteria, Measurement, judge_phase
from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _script as _host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure, HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import run_tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import gather_winhttp_proxy_info
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import parse_state
from tests import pslint
from tests.unit.plugins import pki_factory as pf
from tests.unit.plugins.fixtures.audit_host import (
    EXTRA,
    NOW,
    PEER,
    SKIPPED_SAMPLE,
    UNKNOWN_SAMPLE,
    WINHTTP_DOC,
    audit,
    audit_host,
    request,
)
from tests.unit.plugins.fixtures.host import FakeHost, compact


def test_with_certificates_the_extra_urls_ride_along_and_ldap_stays_home() -> None:
    ldap = Endpoint("ldap:///CN=x?certificateRevocationList", "crl")
    args = host_args(request(endpoints=(EXTRA, ldap), purge=True), check_mode=False)
    assert args["stores"] == ["My"] and args["chain_stores"] == ["CA", "Root"] and args["winhttp"] is True
    assert args["crl"] == {"urls": [], "extra_urls": [EXTRA.url], "timeout_ms": 15000, "purge_cache": True,
                           "max_bytes": 4194304, "foreign_agent": True, "ocsp_requests": True}
    assert args["tls"] == {"peers": [{"host": PEER.host, "port": 5061, "sni": PEER.sni}], "samples": 3,
                           "timeout_ms": 20000, "check_revocation": True, "stop_after_unknown": True}


def test_without_certificates_the_urls_are_exactly_the_endpoints_and_nothing_is_extracted() -> None:
    args = host_args(request(certs=False, stop_after_unknown=False), check_mode=False)
    assert args["stores"] is None and args["chain_stores"] == []
    assert args["crl"]["urls"] == [EXTRA.url] and args["crl"]["extra_urls"] == []
    assert args["tls"]["stop_after_unknown"] is False


def test_nothing_to_fetch_and_no_peers_send_null_parts() -> None:
    args = host_args(request(certs=False, endpoints=(), peers=()), check_mode=False)
    assert args["crl"] is None and args["tls"] is None
    # A purge alone still needs the crl part; in check mode the purge (a write) is never sent.
    assert host_args(request(certs=False, endpoints=(), purge=True), check_mode=False)["crl"]["urls"] == []
    assert host_args(request(certs=False, endpoints=(), purge=True), check_mode=True)["crl"] is None
    assert host_args(request(purge=True), check_mode=True)["crl"]["purge_cache"] is False


@pytest.mark.parametrize(("field", "value"), [("crl_timeout_ms", 0), ("max_bytes", -1), ("samples", 51),
                                              ("probe_timeout_ms", True), ("max_handshake_ms", "1000")])
def test_a_bad_request_names_the_field_and_runs_nothing(host, field, value) -> None:
    with pytest.raises(ValueError, match=f"^{field}: .*{value!r}"):
        audit(request(**{field: value}))
    assert host.scripts == []


def test_a_bad_endpoint_or_peer_is_refused_before_the_host(host) -> None:
    with pytest.raises(ValueError, match=r"endpoints\[0\]"):
        audit(request(endpoints=(Endpoint("http://bad host/x.crl", "crl"),)))
    with pytest.raises(ValueError, match=r"peers\[0\]: expected a Peer"):
        audit(request(peers=("lab-fe02:5061",)))
    assert host.scripts == []


def test_the_built_script_carries_every_fragment_it_calls() -> None:
    script = _host_script.build_host_script("host_audit", host_args(request(), check_mode=False))
    defined = pslint.functions(pslint.parse(script).root_node)  # defined, not merely named in a comment or string
    for function in ("Start-CrlfixFetch", "Complete-CrlfixFetch", "Start-CrlfixProbes", "Complete-CrlfixProbes",
                     "Get-CrlfixChainUris", "Get-CrlfixWinHttpState", "Write-CrlfixDocument",
                     "Invoke-CrlfixUrlCachePurge"):
        assert function in defined, function


# --- one command, every slot as the single scripts give it ----------------------------------------------------------

def test_one_command_answers_every_part_as_the_single_scripts_would(host, monkeypatch) -> None:
    result = audit(request(include_winhttp=True))
    assert result.commands == 1 and host.names == ["host_audit"] and result.warnings == []
    assert result.elapsed_ms == 4100
    sent = host.sent_args(0)
    document = host.answer.document(sent)

    assert result.winhttp_state == parse_state(WINHTTP_DOC)
    FakeHost(monkeypatch, compact(json.dumps(WINHTTP_DOC)))
    expected_winhttp = gather_winhttp_proxy_info(object(), task_action="t")
    assert expected_winhttp.pop("changed") is False
    assert result.winhttp == expected_winhttp and result.winhttp["views"]["native"] is not None

    options = request(include_winhttp=True).cert_options
    expected_certs = summarise_inventory({**document["certificates"], "winhttp": WINHTTP_DOC}, options, now=NOW)
    assert result.certificates == expected_certs
    assert result.certificates["winhttp"] == WINHTTP_DOC

    # The crl slot equals crl_retrieval_check over the controller's HTTP(S) endpoints + the extra ones, answered by
    # the same host results. The certificates' LDAP URLs are a finding (flags.ldap_only), not a failed check.
    wanted = [{"url": e["url"], "kind": e["kind"]} for e in expected_certs["endpoints"]
              if e["scheme"] in ("http", "https")] + [{"url": EXTRA.url, "kind": "crl"}]
    by_url = {r["url"]: r for r in document["crl"]["results"]}
    fetch_urls = [w["url"] for w in wanted if not w["url"].startswith("ldap")]
    crl_doc = {"script": "crl_fetch", "schema": 1, "purge": None, "results": [by_url[u] for u in fetch_urls]}
    FakeHost(monkeypatch, compact(json.dumps(crl_doc)))
    expected_crl = run_crl_retrieval_check(object(), {"endpoints": wanted, "crl_timeout_ms": 15000,
                                                      "purge_cache": False, "max_bytes": 4194304},
                                           check_mode=False, task_action="t", now=NOW)
    # ... plus what only the audit reports: the certificates' URLs it could not check (none here).
    expected_crl = {**expected_crl, "invalid_endpoints": [], "summary": {**expected_crl["summary"], "invalid": 0}}
    assert result.crl == expected_crl
    assert pf.LDAP_CRL in [e["url"] for e in expected_certs["endpoints"]]
    assert pf.LDAP_CRL not in [r["url"] for r in result.crl["results"]]

    tls_doc = document["tls"]
    FakeHost(monkeypatch, compact(json.dumps(tls_doc)))
    expected_tls = run_tls_probe(object(), {"peers": [str(PEER.display)], "probe_samples": 3, "probe_timeout_ms": 20000,
                                            "max_handshake_ms": 1000, "check_revocation": True}, task_action="t")
    # Without a time box nothing was cut: unfinished_ms (host_audit's own key) is null.
    assert result.tls == {**expected_tls, "unfinished_ms": None} and result.tls["all_pass"] is True


def test_urls_the_host_missed_are_fetched_with_a_second_command_and_named(monkeypatch, p, bodies) -> None:
    fake = audit_host(monkeypatch, p, bodies, drop={pf.ROOT_CRL, pf.OCSP})
    result = audit()
    assert result.commands == 2 and fake.names == ["host_audit", "crl_fetch"]
    assert fake.sent_args(1) == {"urls": [pf.OCSP, pf.ROOT_CRL], "timeout_ms": 15000, "purge_cache": False,
                                 "max_bytes": 4194304, "foreign_agent": True}
    assert len(result.warnings) == 1 and pf.ROOT_CRL in result.warnings[0] and pf.OCSP in result.warnings[0]
    results = {r["url"]: r for r in result.crl["results"]}
    assert results[pf.ROOT_CRL]["usable"] is True and results[pf.OCSP]["reachable"] is True


def test_urls_the_controller_does_not_want_are_dropped(monkeypatch, p, bodies) -> None:
    audit_host(monkeypatch, p, bodies, add=["http://unwanted.lab.test/x.crl"])
    result = audit()
    assert result.commands == 1
    assert "http://unwanted.lab.test/x.crl" not in {r["url"] for r in result.crl["results"]}
    assert EXTRA.url in {r["url"] for r in result.crl["results"]}


def test_stores_null_fetches_exactly_the_urls_and_purges(host) -> None:
    result = audit(request(certs=False, purge=True, peers=()))
    assert host.sent_args(0)["stores"] is None
    assert result.certificates is None and result.tls is None and result.commands == 1
    assert [r["url"] for r in result.crl["results"]] == [EXTRA.url]
    assert result.crl["purged"] is True and result.crl["changed"] is True


def test_check_mode_skips_the_purge_as_crl_retrieval_check_does(host) -> None:
    result = audit(request(certs=False, purge=True), check_mode=True)
    assert host.sent_args(0)["crl"]["purge_cache"] is False
    assert result.crl["purge_skipped_check_mode"] is True and result.crl["purged"] is False


def test_a_purge_without_endpoints_is_still_reported(host) -> None:
    result = audit(request(certs=False, endpoints=(), purge=True, peers=()))
    assert result.crl["results"] == [] and result.crl["purged"] is True
    assert audit(request(certs=False, endpoints=(), peers=())).crl is None


def test_a_revocation_unknown_peer_with_skipped_samples_is_judged_revocation_unknown(monkeypatch, p, bodies) -> None:
    audit_host(monkeypatch, p, bodies, samples=[UNKNOWN_SAMPLE, SKIPPED_SAMPLE, SKIPPED_SAMPLE])
    peer = audit().tls["results"][0]
    assert peer["verdict"] == "revocation_unknown" and peer["errors"] == []
    assert peer["samples_ms"] == [4012, None, None] and peer["max_ms"] == 4012


# --- one bad part does not hide the others --------------------------------------------------------------------------

def _edit(monkeypatch, p, bodies, edit) -> FakeHost:
    fake = audit_host(monkeypatch, p, bodies)
    fake.answer.edit = edit
    return fake


def test_a_part_the_host_could_not_produce_fails_alone(monkeypatch, p, bodies) -> None:
    _edit(monkeypatch, p, bodies, lambda d: d.update(tls={"error": "Exception calling \"Open\": access denied"}))
    result = audit()
    assert isinstance(result.tls, ExpectedFailure) and "tls part: Exception calling" in str(result.tls)
    assert result.crl["summary"]["total"] > 1 and not isinstance(result.certificates, ExpectedFailure)


def test_a_certificate_part_of_another_schema_fails_it_and_the_crl_slot(monkeypatch, p, bodies) -> None:
    _edit(monkeypatch, p, bodies, lambda d: d["certificates"].update(schema=9))
    result = audit()
    assert isinstance(result.certificates, ExpectedFailure) and "schema=9" in str(result.certificates)
    assert result.certificates.fields["endpoints"] == []  # every documented key is still there
    assert isinstance(result.crl, ExpectedFailure) and "certificates part failed" in str(result.crl)
    assert result.tls["all_pass"] is True and result.winhttp_state is not None


def test_a_bad_winhttp_part_fails_its_slot(monkeypatch, p, bodies) -> None:
    _edit(monkeypatch, p, bodies, lambda d: d["winhttp"]["views"].update(native="oops"))
    result = audit(request(include_winhttp=True))
    assert result.winhttp_state is None and isinstance(result.winhttp, ExpectedFailure)
    assert "views" in str(result.winhttp)
    assert isinstance(result.certificates, ExpectedFailure) and "include_winhttp" in str(result.certificates)


def test_missing_cryptography_fails_certificates_and_crl_but_not_tls(monkeypatch, host) -> None:
    def missing() -> None:
        raise MissingCryptographyError("cryptography is required", "Traceback: No module named 'cryptography'")

    monkeypatch.setattr(_host_audit, "require_cryptography", missing)
    result = audit()
    assert isinstance(result.certificates, ExpectedFailure)
    assert result.certificates.fields["exception"].startswith("Traceback")
    assert isinstance(result.crl, ExpectedFailure) and result.tls["all_pass"] is True


def test_a_crl_part_answering_other_urls_twice_still_gives_the_wanted_ones(monkeypatch, p, bodies) -> None:
    def duplicate(d):
        d["crl"]["results"].append(dict(d["crl"]["results"][0], status=500))
    _edit(monkeypatch, p, bodies, duplicate)
    first = audit().crl["results"][0]
    assert first["http_status"] == 200  # the first answer for a URL counts, as the host's list is deduplicated


def test_a_document_of_another_script_is_not_trusted(monkeypatch) -> None:
    FakeHost(monkeypatch, '{"script":"crl_fetch","schema":1,"results":[]}')
    with pytest.raises(HostScriptError, match="expected a document of host script host_audit"):
        audit()


def test_a_transport_failure_propagates(monkeypatch) -> None:
    FakeHost(monkeypatch, reply=AnsibleConnectionFailure("winrm: connection refused"))
    with pytest.raises(AnsibleConnectionFailure):
        audit()


def test_an_untrustworthy_second_command_fails_only_the_crl_slot(monkeypatch, p, bodies) -> None:
    fake = audit_host(monkeypatch, p, bodies, drop={pf.ROOT_CRL})
    # The second command (crl_fetch for the URL the walk missed) fails; host_audit is answered as before.
    fake.queues = {"crl_fetch": [(1, "", "crl_fetch: The term 'New-Object' is not recognized")]}
    result = audit()
    assert result.commands == 2 and isinstance(result.crl, ExpectedFailure) and "rc 1" in str(result.crl)
    assert result.tls["all_pass"] is True


# --- one malformed URL in a certificate of the store -------------------------------------------

SPACE_CDP = "http://planted.lab.test/bad crl.crl"
QUOTE_AIA = 'http://planted.lab.test/"evil".crt'


def test_a_planted_certificates_malformed_urls_are_invalid_endpoints_and_the_rest_are_checked(host, p) -> None:
    planted = pf.make_certificate("planted.lab.test", now=NOW, issuer=p.issuing, crl=[SPACE_CDP],
                                  ca_issuers=[QUOTE_AIA])
    host.answer.stores = pf.inventory_document({"My": [(p.leaf, True), (planted, True)], "CA": [p.issuing],
                                                "Root": [p.root]})["stores"]
    result = audit(request())
    assert not isinstance(result.crl, Exception), result.crl
    invalid = {entry["url"]: entry for entry in result.crl["invalid_endpoints"]}
    assert set(invalid) == {SPACE_CDP, QUOTE_AIA}
    assert invalid[SPACE_CDP]["kind"] == "crl"
    assert invalid[SPACE_CDP]["reason"] == f"URL contains whitespace or control characters: {SPACE_CDP!r}"
    assert invalid[QUOTE_AIA]["reason"].startswith("URL contains '\"', which a URL must percent-encode")
    checked = [r["url"] for r in result.crl["results"]]
    assert pf.HTTP_CRL in checked and EXTRA.url in checked and SPACE_CDP not in checked
    assert result.crl["all_usable"] is True and result.crl["summary"]["invalid"] == 2
    # The judged line names the invalid endpoint without failing the CRL check.
    phase = judge_phase(Measurement(crl=result.crl), Criteria("usable", 1000))
    assert phase.crl_ok is True
    assert f"2 invalid endpoint(s) not checked ({SPACE_CDP}: URL contains whitespace" in phase.summary
