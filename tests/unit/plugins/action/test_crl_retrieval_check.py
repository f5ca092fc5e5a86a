"""The crl_retrieval_check action plugin end to end, with the remote seam replaying host documents."""

from __future__ import annotations

import datetime
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.action import crl_retrieval_check
from ansible_collections.crlfix.windows.plugins.modules import crl_retrieval_check as module_doc
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.host import FakeHost, compact
from tests.unit.plugins.fixtures.verify.verify_bodies import load_document

RETURN = yaml.safe_load(module_doc.RETURN)
ACTION = "crlfix.windows.crl_retrieval_check"
LDAP = "ldap:///CN=Lab-Int,CN=PKI01,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,DC=lab,DC=test"


def make_plugin(args: dict[str, t.Any], *, check_mode: bool = False) -> crl_retrieval_check.ActionModule:
    return make_action(crl_retrieval_check.ActionModule, ACTION, args, check_mode=check_mode)


@pytest.fixture
def purged_host(monkeypatch):
    # Fixture times are relative to the real clock here: the action judges staleness at "now".
    return FakeHost(monkeypatch, compact(load_document("crl_fetch_purged.json", datetime.datetime.now(datetime.UTC))))


def test_every_documented_return_key_is_present(purged_host) -> None:
    result = make_plugin({"endpoints": ["http://crl.public-ca.test/lab-int.crl"], "purge_cache": True}).run(
        task_vars={})
    assert "failed" not in result
    assert set(RETURN) <= set(result)
    assert set(result["results"][0]) == set(RETURN["results"]["contains"])
    assert set(result["summary"]) == set(RETURN["summary"]["contains"])
    assert result["changed"] is True  # the purge ran
    assert purged_host.sent_args() == {"urls": ["http://crl.public-ca.test/lab-int.crl"], "timeout_ms": 15000,
                                       "purge_cache": True, "max_bytes": 4194304}


def test_check_mode_fetches_but_does_not_purge(purged_host) -> None:
    result = make_plugin({"endpoints": ["http://crl.public-ca.test/lab-int.crl"], "purge_cache": True},
                         check_mode=True).run(task_vars={})
    assert purged_host.calls == 1
    assert purged_host.sent_args()["purge_cache"] is False
    assert result["purge_skipped_check_mode"] is True
    # The replayed document carries a purge entry anyway; one the controller did not ask for is not believed.
    assert (result["changed"], result["purged"], result["purge"]) == (False, False, None)
    assert result["results"][0]["reachable"] is True


MIXED_URLS = [
    "http://crl.public-ca.test/lab-int.crl", "http://crl.public-ca.test/lab-int+.crl",
    "http://crl.public-ca.test/stale.crl", LDAP, "http://crl.public-ca.test/lab-int.crt",
    "http://crl.public-ca.test/lab-int.p7c", "http://crl.public-ca.test/missing.crl",
    "http://crl.public-ca.test/garbage.crl", "http://crl.blackhole.test/lab.crl", "http://crl.nowhere.test/lab.crl",
    {"url": "http://ocsp.public-ca.test/", "kind": "ocsp"}, {"url": "http://ocsp.down.test/", "kind": "ocsp"},
    "http://crl.public-ca.test/big.crl", "http://crl.public-ca.test/lab-int-pem.crl",
]


def test_url_failures_are_data_not_task_failures(monkeypatch) -> None:
    FakeHost(monkeypatch, compact(load_document("crl_fetch_mixed.json", datetime.datetime.now(datetime.UTC))))
    result = make_plugin({"endpoints": MIXED_URLS, "crl_timeout_ms": 5000}).run(task_vars={})
    assert "failed" not in result
    assert result["changed"] is False
    assert (result["all_reachable"], result["all_usable"]) == (False, False)
    assert result["summary"]["total"] == 14
    errors = {r["url"]: r["error"] for r in result["results"]}
    assert errors["http://crl.blackhole.test/lab.crl"] == "The operation timed out"
    assert errors["http://crl.public-ca.test/missing.crl"] == "HTTP status 404"
    assert errors["http://crl.public-ca.test/lab-int.crl"] is None


def test_a_document_answering_for_other_urls_fails_the_task(monkeypatch) -> None:
    FakeHost(monkeypatch, compact(load_document("crl_fetch_mixed.json", datetime.datetime.now(datetime.UTC))))
    result = make_plugin({"endpoints": MIXED_URLS[:3]}).run(task_vars={})
    assert result["failed"] is True
    assert "crl_fetch answered with 13 results for 3 URLs" in result["msg"]


def test_bad_url_fails_with_field_and_value(monkeypatch) -> None:
    host = FakeHost(monkeypatch, "")
    result = make_plugin({"endpoints": [{"url": "http://a.test/x.crl"}, {"url": "ftp://a.test/x.crl"}]}).run(
        task_vars={})
    assert result["failed"] is True
    assert result["msg"] == (f"{ACTION}: endpoints[1].url: URL scheme must be one of http, https, ldap, "
                             "got 'ftp://a.test/x.crl'")
    assert host.calls == 0


def test_missing_endpoints_is_refused_by_the_spec() -> None:
    with pytest.raises(AnsibleActionFail, match="endpoints"):
        make_plugin({}).run(task_vars={})


def test_wrong_type_is_refused_by_the_spec() -> None:
    with pytest.raises(AnsibleActionFail, match="crl_timeout_ms"):
        make_plugin({"endpoints": ["http://a.test/x.crl"], "crl_timeout_ms": "soon"}).run(task_vars={})


def test_host_script_failure_is_a_failed_task_with_rc(monkeypatch) -> None:
    FakeHost(monkeypatch, "", rc=1, stderr="New-Object : Retrieving the COM class factory failed")
    result = make_plugin({"endpoints": ["http://a.test/x.crl"]}).run(task_vars={})
    assert result["failed"] is True
    assert result["rc"] == 1
    assert "COM class factory" in result["msg"]


def test_transport_failure_marks_the_host_unreachable(monkeypatch) -> None:
    FakeHost(monkeypatch, reply=AnsibleConnectionFailure("winrm: connection refused"))
    result = make_plugin({"endpoints": ["http://a.test/x.crl"]}).run(task_vars={})
    assert result["unreachable"] is True


def test_missing_cryptography_is_a_clean_failure(monkeypatch) -> None:
    host = FakeHost(monkeypatch, "")
    monkeypatch.setattr(crl_retrieval_check, "cryptography_missing_message",
                        lambda: "Failed to import the required Python library (cryptography >= 42.0)")
    result = make_plugin({"endpoints": ["http://a.test/x.crl"]}).run(task_vars={})
    assert result["failed"] is True
    assert "cryptography" in result["msg"]
    assert host.calls == 0
