"""The cert_revocation_info action plugin end to end, with run_powershell replaced by a replaying fake host."""

from __future__ import annotations

import typing as t

import pytest
import yaml
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.action import cert_revocation_info
from ansible_collections.crlfix.windows.plugins.modules import cert_revocation_info as module_doc
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import empty_result
from tests.unit.plugins import pki_factory as pf
from tests.unit.plugins.action_factory import make_action
from tests.unit.plugins.fixtures.host import FakeHost, document_reply

RETURN = yaml.safe_load(module_doc.RETURN)


def make_plugin(args: dict[str, t.Any], *, check_mode: bool = False) -> cert_revocation_info.ActionModule:
    return make_action(cert_revocation_info.ActionModule, "crlfix.windows.cert_revocation_info", args,
                       check_mode=check_mode)


@pytest.fixture
def replay(monkeypatch, host_stores):
    return FakeHost(monkeypatch, reply=document_reply(pf.inventory_document(host_stores)))


def test_every_documented_return_key_is_always_present(pki, replay) -> None:
    ok = make_plugin({}).run(task_vars={})
    failed = make_plugin({"cert_stores": ["*"]}).run(task_vars={})
    assert set(RETURN) == set(empty_result()) - {"changed"}
    for result in (ok, failed):
        assert set(RETURN) <= set(result)
    assert failed["failed"] is True
    cert = ok["certificates"][0]
    documented = RETURN["certificates"]["contains"]
    assert set(cert) == set(documented)
    assert set(cert["chain"][0]) == set(documented["chain"]["contains"])
    assert set(cert["endpoints"][0]) == set(documented["endpoints"]["contains"])
    assert set(cert["flags"]) == set(documented["flags"]["contains"])
    assert set(ok["endpoints"][0]) == set(RETURN["endpoints"]["contains"])
    assert set(ok["flags"]) == set(RETURN["flags"]["contains"])


@pytest.mark.parametrize("check_mode", [False, True])
def test_reads_in_both_modes_and_never_changes(pki, replay, check_mode) -> None:
    result = make_plugin({"cert_ekus": ["serverAuth"]}, check_mode=check_mode).run(task_vars={})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert len(replay.args_of("cert_inventory")) == 1
    assert replay.args_of("cert_inventory")[0] == {"stores": ["My"], "chain_stores": ["CA", "Root"], "winhttp": False}
    leaf = next(c for c in result["certificates"] if c["thumbprint"] == pki.leaf.thumbprint)
    expected_chain = [pki.leaf.thumbprint, pki.issuing.thumbprint, pki.root.thumbprint]
    assert [e["thumbprint"] for e in leaf["chain"]] == expected_chain
    assert pki.expired_leaf.thumbprint not in [c["thumbprint"] for c in result["certificates"]]
    urls = [(e["kind"], e["url"]) for e in result["endpoints"]]
    assert ("crl", pf.HTTP_CRL) in urls and ("crl", pf.ROOT_CRL) in urls and ("ocsp", pf.OCSP) in urls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cert_thumbprints": ["12"]}, "crlfix.windows.cert_revocation_info: cert_thumbprints: '12' is not a SHA-1"),
        ({"expiry_warning_days": -3}, "expiry_warning_days: must be 0 or more"),
        ({"cert_subject": "("}, "cert_subject: '(' is not a valid regular expression"),
    ],
)
def test_bad_option_values_fail_cleanly(replay, args, message) -> None:
    result = make_plugin(args).run(task_vars={})
    assert result["failed"] is True
    assert message in result["msg"]
    assert replay.args_of("cert_inventory") == []


def test_wrong_option_type_is_refused_by_the_spec(replay) -> None:
    from ansible.errors import AnsibleActionFail

    try:
        result = make_plugin({"include_winhttp": "maybe"}).run(task_vars={})
    except AnsibleActionFail as exc:
        message = str(exc)
    else:
        assert result["failed"] is True
        message = result["msg"]
    assert "include_winhttp" in message
    assert replay.args_of("cert_inventory") == []


def test_host_script_failure_is_a_failed_result(monkeypatch) -> None:
    FakeHost(monkeypatch, reply=(1, "", "Access is denied."))
    result = make_plugin({}).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("crlfix.windows.cert_revocation_info: host script cert_inventory failed with rc 1")
    assert (result["rc"], result["stderr"]) == (1, "Access is denied.")


def test_wrong_schema_is_refused(monkeypatch, host_stores) -> None:
    document = {**pf.inventory_document(host_stores), "schema": 3}
    FakeHost(monkeypatch, reply=document_reply(document))
    result = make_plugin({}).run(task_vars={})
    assert result["failed"] is True
    assert "answered with schema 3" in result["msg"]


def test_unreachable_host(monkeypatch) -> None:
    FakeHost(monkeypatch, reply=AnsibleConnectionFailure("winrm timeout"))
    result = make_plugin({}).run(task_vars={})
    assert result["unreachable"] is True
    assert "winrm timeout" in result["msg"]


def test_include_winhttp_one_round_trip(monkeypatch, host_stores) -> None:
    # Server 2022 (build 20348) reports advproxy too (Microsoft Learn, "Netsh Commands for Windows Hypertext
    # Transfer Protocol (WINHTTP)").
    os_info = {"build": 20348, "caption": "Microsoft Windows Server 2022 Standard", "is_64bit": True}
    body = {"computer_name": "LAB-FE01", "os": os_info,
            "views": {"native": {"path": "HKLM:\\x", "present": False, "value_b64": None},
                      "wow6432": {"path": "HKLM:\\y", "present": False, "value_b64": None}},
            "advproxy": {"rc": 0, "output": "Current WinHTTP advanced proxy settings:\r\n\r\n{\r\n}\r\n"}}
    host = FakeHost(monkeypatch, reply=document_reply(pf.inventory_document(host_stores, winhttp=body)))
    result = make_plugin({"include_winhttp": True, "cert_stores": ["My", "Remote Desktop"]}).run(task_vars={})
    assert result.get("failed") is not True, result
    assert len(host.args_of("cert_inventory")) == 1 and host.args_of("cert_inventory")[0]["winhttp"] is True
    assert host.args_of("cert_inventory")[0]["stores"] == ["My", "Remote Desktop"]
    assert result["winhttp"] == {"script": "winhttp_state", "schema": 1, **body}
