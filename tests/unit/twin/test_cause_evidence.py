"""The twin's side of the cause catalogue, without a network: the host's clock (``clock_offset_s``), the evidence
part's Group Policy Preferences items and AuthRoot policy, the fetch's ``winhttp_error`` and ``headers``, and each
cause scenario seeded on a built host (tests/lab/fleet/cause_scenarios.py, catalogue.py)."""

from __future__ import annotations

import base64
import datetime as dt
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import CATALOGUE
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import build_evidence
from tests.lab import cause_pki, ocsp_responder, pki
from tests.lab.cryptoapi import check_chain_revocation
from tests.lab.fleet import catalogue, cause_scenarios, plan
from tests.lab.winhttp import WinHttpProxy
from tests.twin import event_logs, winhttp_value
from tests.twin.scripts import _evidence, _ocsp, crl_fetch
from tests.twin.state import HostState, new_state

FQDN = "lync-fe01.lab.test"
PROXY = "127.0.0.1:31170"


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lab")
    pki.issue_host_certificates(path, [FQDN])
    pki.publish(path, next_update=dt.timedelta(minutes=10))
    return path


@pytest.fixture
def host(tmp_path, lab_dir) -> HostState:
    stores = pki.issue_host_certificates(lab_dir, [FQDN])[FQDN]
    data = new_state(FQDN, os_build=20348, user="ansible", password="x", cert_stores=stores)
    data["event_logs"][event_logs.LYNC] = []
    data["services"] = [{"name": "RTCSRV", "start_name": "NT AUTHORITY\\NetworkService", "state": "Running"}]
    state = HostState(tmp_path / "fe01.json", data)
    state.save()
    return state


def _seed(host: HostState, lab_dir: Path, *names: str) -> tuple[dict, bool]:
    return catalogue.seed(host.data, list(names), proxy=PROXY, group="lync_servers", os_build=20348, lab_dir=lab_dir)


def test_every_cause_of_the_catalogue_is_a_scenario_and_seeds_on_a_built_host(host, lab_dir) -> None:
    names = catalogue.catalogue()
    for cause in CATALOGUE:
        assert cause.code in names, cause.code
        seeded, _restart = _seed(host, lab_dir, cause.code)
        assert seeded["lab"]["scenario"] == cause.code


def test_a_seed_starts_from_the_lab_build_so_a_cause_is_the_hosts_only_fault(host, lab_dir) -> None:
    skewed = _seed(host, lab_dir, "clock_skew", "gpo_overwrites_proxy", "trusted_issuer_list_too_large")[0]
    assert skewed["clock_offset_s"] == cause_scenarios.CLOCK_SKEW_S and "group_policy_history" in skewed
    assert len(skewed["cert_stores"]["Root"]) == 1 + cause_pki.LARGE_STORE_ROOTS
    back = catalogue.seed(skewed, "correct", proxy=PROXY, group="lync_servers", os_build=20348, lab_dir=lab_dir)[0]
    assert "clock_offset_s" not in back and "group_policy_history" not in back
    assert back["cert_stores"] == host.data["cert_stores"]
    assert back["chain_engine"] == {"ChainUrlRetrievalTimeoutMilliseconds": plan.LAB_URL_TIMEOUT_MS,
                                    "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": plan.LAB_CHAIN_TIMEOUT_MS}
    with pytest.raises(ValueError, match="more than one starting state"):
        _seed(host, lab_dir, "no_proxy", "wrong_proxy")
    assert catalogue.names_of("a, b") == ["a", "b"] == catalogue.names_of(["a", "b"])


def test_a_proxy_cause_puts_netsh_on_its_listener_and_protocol_mismatch_restarts_the_twin(host, lab_dir) -> None:
    seeded, restart = _seed(host, lab_dir, "proxy_requires_auth")
    value = winhttp_value.decode(base64.b64decode(seeded["registry"]["native"]["WinHttpSettings"]))
    assert (value.proxy, restart) == ("127.0.0.4:31170", False)
    assert cause_scenarios.site_proxy("proxy_requires_auth", PROXY) == "127.0.0.4:31170"
    assert cause_scenarios.site_proxy(("no_proxy",), PROXY) is None
    seeded, restart = _seed(host, lab_dir, "protocol_mismatch")
    assert seeded["os"]["overrides"]["tls_protocols"] == ["Tls12", "Tls13"] and restart is True


def test_the_hosts_clock_stamps_its_evidence_marker_and_registry_and_judges_crls(host, lab_dir) -> None:
    seeded = _seed(host, lab_dir, "clock_skew")[0]
    host.data = seeded
    part = _evidence.evidence(host, {"mark": True, "queries": []})
    ahead = dt.datetime.fromisoformat(part["now"].replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)
    assert abs(ahead.total_seconds() - cause_scenarios.CLOCK_SKEW_S) < 5
    assert part["marker"]["fixed_at"] == part["now"]
    host.set_winhttp_value("native", None)
    written = dt.datetime.fromisoformat(host.registry_write_time("native").replace("Z", "+00:00"))
    assert abs(written.timestamp() - time.time() - cause_scenarios.CLOCK_SKEW_S) < 5
    # The controller's reading: the host hours ahead of it.
    clock = build_evidence(part, received_at=dt.datetime.now(dt.UTC))["clock"]
    assert clock["skew_s"] > cause_scenarios.CLOCK_SKEW_S - 5
    # By the host's clock the lab's CRL (10 minutes of NextUpdate) has expired, and one signed later is not yet valid.
    lab = pki.LabCA(lab_dir)
    chain = [x509.load_pem_x509_certificate((lab_dir / "pki" / "hosts" / f"{FQDN}.crt").read_bytes()),
             lab.issuing_cert, lab.root_cert]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    www = lab_dir / "pki" / "www" / pki.CRL_HOST
    cache = {url: {"content_b64": base64.b64encode((www / url.rsplit("/", 1)[1]).read_bytes()).decode(),
                   "kind": "crl", "this_update": None, "next_update": "2999-01-01T00:00:00Z", "fetched": None}
             for url in (pki.ISSUING_CRL_URL, pki.ROOT_CRL_URL)}
    for now, words in ((host.now(), "stale"), (dt.datetime.now(dt.UTC) - dt.timedelta(hours=4), "not yet valid")):
        checked = check_chain_revocation(ders, proxy=WinHttpProxy(), names={}, cache=dict(cache), now=now,
                                         per_url_timeout=0.1, total_timeout=0.2)
        assert checked["status"] == "revocation_offline"
        assert any(words in (r.get("error") or "") for r in checked["retrievals"]), checked["retrievals"]


def test_the_evidence_reads_the_gpp_items_that_write_winhttpsettings_and_the_authroot_policy(host, lab_dir) -> None:
    seeded = _seed(host, lab_dir, "gpo_overwrites_proxy", "root_autoupdate_blocked")[0]
    other = cause_scenarios.registry_xml(b"\x01", keys=("SOFTWARE\\Contoso\\App",))
    disabled = cause_scenarios.registry_xml(b"\x02").replace("<Registry ", '<Registry disabled="1" ', 1)
    seeded["group_policy_history"].update({"{11111111-2222-3333-4444-555555555555}": {"display_name": None,
                                                                                      "registry_xml": other},
                                           "{AAAAAAAA-2222-3333-4444-555555555555}": {"display_name": "Disabled",
                                                                                      "registry_xml": disabled}})
    host.data = seeded
    part = _evidence.evidence(host, {"queries": []})
    items = part["gpp_registry"]
    assert [(i["gpo"], i["gpo_name"], i["action"], i["key"].split("\\")[1]) for i in items] == [
        (cause_scenarios.GPO_GUID, cause_scenarios.GPO_NAME, "U", "Microsoft"),
        (cause_scenarios.GPO_GUID, cause_scenarios.GPO_NAME, "U", "WOW6432Node"),
        ("{AAAAAAAA-2222-3333-4444-555555555555}", "Disabled", "U", "WOW6432Node")]  # only its first item is off
    assert items[0]["value"] == winhttp_value.DIRECT_ACCESS_DOCUMENTED.hex().upper()
    assert (items[0]["hive"], items[0]["type"], items[0]["changed"]) == ("HKEY_LOCAL_MACHINE", "REG_BINARY",
                                                                         cause_scenarios.GPO_CHANGED)
    assert part["gpp_registry_error"] is None
    assert part["root_autoupdate"] == {"DisableRootAutoUpdate": 1, "EnableDisallowedCertAutoUpdate": None}
    seeded["group_policy_history"]["{BAD}"] = {"display_name": None, "registry_xml": "<RegistrySettings"}
    broken = _evidence.evidence(host, {"queries": []})
    assert broken["gpp_registry"] == [] and "{BAD}" in broken["gpp_registry_error"]
    assert _evidence.evidence(HostState(host.path, {**seeded, "auth_root_policy": None,
                                                    "group_policy_history": {}}), {"queries": []})[
        "root_autoupdate"] == {"DisableRootAutoUpdate": None, "EnableDisallowedCertAutoUpdate": None}


def test_the_fetch_reports_the_winhttp_error_number_and_the_headers_that_say_who_answered() -> None:
    assert crl_fetch.winhttp_code("ERROR_WINHTTP_TIMEOUT (12002): The operation timed out") == 12002
    assert crl_fetch.winhttp_code("ERROR_WINHTTP_CANNOT_CONNECT (12029): A connection ... (refused)") == 12029
    assert crl_fetch.winhttp_code("HTTP 404") is None and crl_fetch.winhttp_code(None) is None
    headers = {"via": "1.1 lab-proxy.test (squid/5.7)", "x-squid-error": "ERR_CACHE_ACCESS_DENIED 0",
               "proxy-authenticate": "Basic realm=\"lab-proxy\"", "content-type": "text/html", "server": "s" * 600}
    kept = crl_fetch.kept_headers(headers)
    assert set(kept) == {"via", "x-squid-error", "proxy-authenticate", "server"} and len(kept["server"]) == 512


def test_host_audit_asks_each_ocsp_responder_about_the_first_certificate_that_names_it(host, lab_dir) -> None:
    seeded = _seed(host, lab_dir, "ocsp_responder_failing")[0]
    ders = {name: [base64.b64decode(e["der_b64"]) for e in entries] for name, entries in seeded["cert_stores"].items()}
    found = _ocsp.requests(ders, ["My"])
    partner = f"{pki.OCSP_URL}partner-ca"
    assert set(found) == {pki.OCSP_URL, partner}
    lab = pki.LabCA(lab_dir)
    leaf = x509.load_pem_x509_certificate((lab_dir / "pki" / "hosts" / f"{FQDN}.crt").read_bytes())
    for responder, certificate, issuer in ((pki.OCSP_URL, leaf, lab.issuing_cert),):
        url = found[responder]
        assert url.startswith(responder.rstrip("/") + "/") and "+" not in url and "=" not in url.rsplit("/", 1)[1]
        request = ocsp.load_der_ocsp_request(ocsp_responder.request_from_path(urlsplit(url).path))
        expected = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
        assert (request.serial_number, request.issuer_key_hash, request.issuer_name_hash) == (
            expected.serial_number, expected.issuer_key_hash, expected.issuer_name_hash)
    answer = ocsp.load_der_ocsp_response(ocsp_responder.respond(lab_dir, ocsp_responder.request_from_path(
        urlsplit(found[partner]).path)))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    urls = ["http://crl.public-ca.test/issuing-ca.crl", pki.OCSP_URL]
    assert _ocsp.asked(urls, found) == [urls[0], found[pki.OCSP_URL]]
    crl = {"results": [{"url": u} for u in _ocsp.asked(urls, found)]}
    _ocsp.locate(crl, urls, found)
    assert [r["location"] for r in crl["results"]] == [None, pki.OCSP_URL]
