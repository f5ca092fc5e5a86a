"""cert_revocation_info's logic (plugin_utils/_cert_revocation.py), replayed at the run_powershell seam."""

from __future__ import annotations

import base64
import typing as t

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.module_utils import _cryptography_dep
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import (
    empty_result,
    gather_cert_revocation_info,
    summarise_inventory,
    validate_options,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host import _script as _host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from tests import pslint
from tests.unit.plugins import pki_factory as pf
from tests.unit.plugins.fixtures.host import FakeHost
from tests.unit.plugins.fixtures.inventory import WINHTTP_BODY, inventory_answer

# The arguments as validation leaves them: every option, its default where the task gave none.
DEFAULTS = module_defaults("cert_revocation_info")


def opts(**overrides: t.Any):
    return validate_options({**DEFAULTS, **overrides})


@pytest.fixture
def fake_host(monkeypatch, host_stores):
    return FakeHost(monkeypatch, answer=inventory_answer(host_stores))


# --- options ---------------------------------------------------------------------------------------------------

def test_defaults_give_the_contract_arguments() -> None:
    assert opts().script_args() == {"stores": ["My"], "chain_stores": ["CA", "Root"], "winhttp": False}


@pytest.mark.parametrize(
    ("overrides", "stores", "chain_stores"),
    [
        ({"cert_stores": ["my", "My", "WebHosting"]}, ["my", "WebHosting"], ["CA", "Root"]),
        ({"cert_stores": ["CA"], "chain_stores": ["ca", "Root", "ROOT"]}, ["CA"], ["Root"]),
        ({"cert_stores": ["Remote Desktop"], "chain_stores": []}, ["Remote Desktop"], []),
    ],
)
def test_store_names_deduplicated_case_insensitively(overrides, stores, chain_stores) -> None:
    args = opts(**overrides).script_args()
    assert (args["stores"], args["chain_stores"]) == (stores, chain_stores)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cert_stores": []}, "cert_stores: at least one store name is required"),
        ({"cert_stores": ["My\\..\\Root"]}, r"cert_stores: 'My\\\\..\\\\Root' is not a certificate store name"),
        ({"cert_stores": ["*"]}, r"cert_stores: '\*' is not a certificate store name"),
        ({"chain_stores": ["CA", "Root'; Remove-Item C:\\"]}, "chain_stores: .* is not a certificate store name"),
        ({"expiry_warning_days": -1}, "expiry_warning_days: must be 0 or more, got -1"),
        ({"cert_thumbprints": ["abc"]}, "cert_thumbprints: 'abc' is not a SHA-1 thumbprint"),
        ({"cert_ekus": ["serverauthentication"]}, "cert_ekus: unknown EKU 'serverauthentication'"),
        ({"cert_subject": "CN=(lync"}, r"cert_subject: 'CN=\(lync' is not a valid regular expression"),
    ],
)
def test_bad_options_name_field_and_value(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        opts(**overrides)


# --- summarising a document ------------------------------------------------------------------------------------

def test_summary_of_a_typical_host(pki, host_stores) -> None:
    doc = pf.inventory_document(host_stores)
    got = summarise_inventory(doc, opts(), now=pki.now)
    assert set(got) == set(empty_result())
    assert got["computer_name"] == "LAB-FE01"
    assert got["checked_at"] == pki.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [c["thumbprint"] for c in got["certificates"]] == [entry[0].thumbprint for entry in host_stores["My"]]
    assert got["store_counts"] == {"My": 7, "CA": 2, "Root": 1}
    assert got["flags"]["ldap_only"] == [pki.ldap_leaf.thumbprint]
    assert got["flags"]["chain_incomplete"] == [pki.orphan_leaf.thumbprint]
    assert got["winhttp"] is None and got["unparsable_certificates"] == [] and got["missing_stores"] == []
    leaf = got["certificates"][0]
    assert [e["store"] for e in leaf["chain"]] == ["My", "CA", "Root"]
    assert leaf["has_private_key"] is True
    assert got["certificates"][2]["has_private_key"] is False


def test_filters_select_reported_certificates_but_not_chain_pool(pki, host_stores) -> None:
    doc = pf.inventory_document(host_stores)
    got = summarise_inventory(doc, opts(cert_thumbprints=[pki.leaf.thumbprint.lower()]), now=pki.now)
    assert [c["thumbprint"] for c in got["certificates"]] == [pki.leaf.thumbprint]
    assert got["certificates"][0]["chain_complete"] is True
    got = summarise_inventory(doc, opts(cert_subject="legacy|soon", cert_ekus=["serverAuth"]), now=pki.now)
    assert [c["thumbprint"] for c in got["certificates"]] == [pki.ldap_leaf.thumbprint, pki.expiring_leaf.thumbprint]


def test_same_certificate_in_two_stores_is_reported_once(pki) -> None:
    doc = pf.inventory_document({"My": [(pki.leaf, True)], "WebHosting": [(pki.leaf, False)], "CA": [pki.issuing],
                                 "Root": [pki.root]})
    got = summarise_inventory(doc, opts(cert_stores=["My", "WebHosting"]), now=pki.now)
    assert [(c["thumbprint"], c["store"]) for c in got["certificates"]] == [(pki.leaf.thumbprint, "My")]


def test_unparsable_entries_are_listed_not_fatal(pki) -> None:
    junk = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    doc = pf.inventory_document({"My": [{"der_b64": junk, "has_private_key": False}, {"der_b64": "%%"},
                                        (pki.leaf, True)], "CA": [pki.issuing], "Root": [pki.root]})
    got = summarise_inventory(doc, opts(), now=pki.now)
    assert [c["thumbprint"] for c in got["certificates"]] == [pki.leaf.thumbprint]
    bad = got["unparsable_certificates"]
    assert [(b["store"], b["index"]) for b in bad] == [("My", 0), ("My", 1)]
    assert bad[0]["error"].startswith("stores.My[0]: not a valid X.509 certificate")
    assert len(bad[0]["thumbprint"]) == 40 and bad[1]["thumbprint"] is None


def test_missing_chain_store_gives_incomplete_chains(pki) -> None:
    doc = pf.inventory_document({"My": [pki.leaf]}, missing_stores=["CA", "Root"])
    got = summarise_inventory(doc, opts(), now=pki.now)
    assert got["missing_stores"] == ["CA", "Root"]
    assert got["flags"]["chain_incomplete"] == [pki.leaf.thumbprint]


@pytest.mark.parametrize(
    "winhttp",
    [WINHTTP_BODY, {"script": "winhttp_state", "schema": 1, **WINHTTP_BODY}],
    ids=["body", "full_document"],
)
def test_winhttp_passes_through_as_a_full_document(pki, winhttp) -> None:
    doc = pf.inventory_document({"My": []}, winhttp=winhttp)
    got = summarise_inventory(doc, opts(include_winhttp=True), now=pki.now)
    assert got["winhttp"] == {"script": "winhttp_state", "schema": 1, **WINHTTP_BODY}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (pf.inventory_document({"My": []}, winhttp=None), "winhttp must be the winhttp_state document"),
        (pf.inventory_document({"My": []}, winhttp={**WINHTTP_BODY, "schema": 9}), "schema=9"),
        ({"script": "cert_inventory", "schema": 1, "stores": []}, "'stores' must be an object"),
        ({"script": "cert_inventory", "schema": 1, "stores": {"My": {"der_b64": "x"}}}, "stores.My must be a list"),
    ],
)
def test_unusable_documents_are_refused(pki, document, message) -> None:
    with pytest.raises(ValueError, match=message):
        summarise_inventory(document, opts(include_winhttp=True), now=pki.now)


# --- one round trip through the seam -------------------------------------------------------------------------

def test_gather_runs_one_script_with_quoted_arguments(pki, fake_host) -> None:
    got = gather_cert_revocation_info(object(), {**DEFAULTS, "cert_stores": ["My", "WebHosting"],
                                                 "include_winhttp": True},
                                      task_action="crlfix.windows.cert_revocation_info", now=pki.now)
    assert len(fake_host.scripts) == 1
    script = fake_host.scripts[0]
    assert script.splitlines()[:2] == ["# crlfix-script: cert_inventory", "# crlfix-schema: 2"]
    assert "Get-CrlfixWinHttpState" in pslint.functions(pslint.parse(script).root_node)  # the fragment came along
    assert got["missing_stores"] == ["WebHosting"]
    assert got["winhttp"]["script"] == "winhttp_state"
    assert len(got["certificates"]) == 7


def test_gather_refuses_bad_options_before_running_anything(fake_host) -> None:
    with pytest.raises(ExpectedFailure, match="stores: '..' is not") as err:
        gather_cert_revocation_info(object(), {**DEFAULTS, "cert_stores": [".."]}, task_action="t")
    assert fake_host.scripts == []
    assert set(empty_result()) <= set(err.value.fields)


def test_host_failure_keeps_rc_and_output(monkeypatch, host_stores) -> None:
    FakeHost(monkeypatch, reply=(1, "", "Get-ChildItem : Access is denied\r\n"))
    with pytest.raises(ExpectedFailure, match="cert_inventory failed with rc 1: Get-ChildItem : Access") as err:
        gather_cert_revocation_info(object(), DEFAULTS, task_action="t")
    assert err.value.fields["rc"] == 1 and "Access is denied" in err.value.fields["stderr"]
    assert err.value.fields["certificates"] == []


def test_transport_failure_is_not_swallowed(monkeypatch, host_stores) -> None:
    FakeHost(monkeypatch, reply=AnsibleConnectionFailure("down"))
    with pytest.raises(AnsibleConnectionFailure):
        gather_cert_revocation_info(object(), DEFAULTS, task_action="t")


def test_missing_cryptography_is_a_clean_failure(monkeypatch, fake_host) -> None:
    monkeypatch.setattr(_cryptography_dep, "HAS_CRYPTOGRAPHY", False)
    monkeypatch.setattr(_cryptography_dep, "CRYPTOGRAPHY_IMPORT_ERROR", "Traceback: No module named 'cryptography'")
    with pytest.raises(ExpectedFailure, match="cryptography") as err:
        gather_cert_revocation_info(object(), DEFAULTS, task_action="t")
    assert "No module named" in err.value.fields["exception"]
    assert fake_host.scripts == []


def test_too_old_cryptography_is_named(monkeypatch) -> None:
    monkeypatch.setattr(_cryptography_dep, "CRYPTOGRAPHY_VERSION", "41.0.7")
    assert "found 41.0.7" in _cryptography_dep.cryptography_missing_message()


# --- the host script itself ------------------------------------------------------------------------------------

def test_host_script_stays_plain() -> None:
    text = _host_script.build_host_script("cert_inventory", opts(include_winhttp=True).script_args())
    # Ansible's encoder strips every line, which would corrupt a here-string.
    assert "@'" not in text and '@"' not in text
    assert "-LiteralPath" in text and "Get-CrlfixWinHttpStateDocument" in text and "Write-CrlfixDocument" in text


def _schema2(doc: dict[str, t.Any]) -> dict[str, t.Any]:
    """A schema-1 inventory as _stores.ps1 writes it since schema 2: each certificate once, the entries by index."""
    shared: list[str] = []
    stores = {}
    for name, entries in doc["stores"].items():
        stores[name] = []
        for entry in entries:
            if entry["der_b64"] not in shared:
                shared.append(entry["der_b64"])
            stores[name].append({"cert": shared.index(entry["der_b64"]), "has_private_key": entry["has_private_key"]})
    return {**doc, "schema": 2, "certificates": shared, "stores": stores}


def test_schema_2_sends_a_shared_certificate_once_and_reads_as_schema_1(pki, host_stores) -> None:
    shared = {"CA": [*host_stores["CA"], pki.leaf], "My": [*host_stores["My"], pki.issuing]}
    doc = pf.inventory_document({**host_stores, **shared})
    lean = _schema2(doc)
    assert len(lean["certificates"]) < sum(len(entries) for entries in lean["stores"].values())
    assert summarise_inventory(lean, opts(), now=pki.now) == summarise_inventory(doc, opts(), now=pki.now)


@pytest.mark.parametrize(("change", "message"), [
    ({"certificates": None}, "'certificates' must be a list"),
    ({"stores": {"My": [{"cert": 99, "has_private_key": True}]}}, r"stores.My\[0\].cert: 99 is not an index"),
    ({"stores": {"My": [{"cert": True}]}}, r"stores.My\[0\].cert: True is not an index"),
])
def test_schema_2_refuses_a_broken_index(pki, host_stores, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        summarise_inventory({**_schema2(pf.inventory_document(host_stores)), **change}, opts(), now=pki.now)


def test_validate_options_reads_the_documented_defaults_only_for_options_left_out(monkeypatch) -> None:
    from ansible_collections.crlfix.windows.plugins.plugin_utils import _cert_revocation

    every = {name: DEFAULTS[name] for name in _cert_revocation._OPTIONS_READ}
    expected = validate_options(every)
    monkeypatch.setattr(_cert_revocation, "module_defaults", lambda module: pytest.fail("defaults read"))
    assert validate_options(every) == expected  # the fix_crl run and the module's action pass every option
    monkeypatch.undo()
    assert validate_options({"cert_stores": ["My"]}).expiry_warning_days == DEFAULTS["expiry_warning_days"]
