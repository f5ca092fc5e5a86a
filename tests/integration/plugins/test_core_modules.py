"""The collection core (winhttp_proxy_info, winhttp_proxy, cert_revocation_info) end to end against the lab.

Each test runs an integration target (``tests/integration/targets/<module>``) with the real
``ansible-playbook`` over Ansible's real winrm connection (NTLM, message encryption) against the Windows twins
of the ``lab`` fixture. The targets assert what a Windows host would show; this file then reads the hosts
back independently: the ``WinHttpSettings`` bytes from the twin's state file, decoded here with ``struct``
(layout: plugins/module_utils/_winhttp_settings.py), certificates with ``cryptography``, and the cost of
each step from the twin's shell-command counters (snapshots the targets take through the lab's control
channel, see ``targets/*/tasks/lab_snapshot.yml``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.lab import pki

pytestmark = pytest.mark.lab

TARGETS = Path(__file__).resolve().parents[1] / "targets"
VIEWS = ("native", "wow6432")
_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=\d+\s+unreachable=(?P<unreachable>\d+)"
                    r"\s+failed=(?P<failed>\d+)", re.MULTILINE)


# -- independent readers -------------------------------------------------------------------------------
def decode_winhttp(raw: bytes) -> tuple[int, int, int, str, str]:
    """(version, counter, flags, proxy, bypass) of a WinHttpSettings value: 3 DWORDs, then two
    DWORD-length-prefixed ASCII strings (plugins/module_utils/_winhttp_settings.py)."""
    version, counter, flags, proxy_len = struct.unpack_from("<IIII", raw, 0)
    proxy = raw[16 : 16 + proxy_len].decode("ascii")
    (bypass_len,) = struct.unpack_from("<I", raw, 16 + proxy_len)
    bypass = raw[20 + proxy_len : 20 + proxy_len + bypass_len].decode("ascii")
    return version, counter, flags, proxy, bypass


def registry_bytes(registry: dict[str, Any]) -> dict[str, bytes | None]:
    """A state file's ``registry`` section as raw bytes per view (None: no value)."""
    return {view: None if registry[view]["WinHttpSettings"] is None
            else base64.b64decode(registry[view]["WinHttpSettings"]) for view in VIEWS}


def b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def reset_proxy_bytes(previous: bytes | None) -> bytes:
    """What `netsh winhttp reset proxy` writes: version 0x18, counter + 1 (0 without a value), flags 1
    (direct), two empty strings. For a fresh host these are the bytes Microsoft Learn documents for direct
    access, 1800000000000000010000000000000000000000 ("Use Group Policy to apply WinHTTP proxy settings")."""
    counter = 0 if previous is None else decode_winhttp(previous)[1] + 1
    return struct.pack("<IIIII", 0x18, counter, 1, 0, 0)


def thumbprint(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - a certificate thumbprint is SHA-1 by definition


# -- running a target ------------------------------------------------------------------------------------
def lab_vars(lab, results: Path) -> dict[str, Any]:
    control_port = json.loads((lab.lab_dir / "lab.json").read_text())["control_port"]
    return {"crlfix_lab_dir": str(lab.lab_dir), "crlfix_lab_control": f"http://127.0.0.1:{control_port}",
            "crlfix_results_dir": str(results)}


def run_target(lab, tmp_path: Path, target: str, hosts: list[str], *args: str) -> dict[str, Any]:
    """Run one target on ``hosts`` (the playbook must succeed); returns {host: result document}."""
    results = tmp_path / f"results-{target}"
    results.mkdir(exist_ok=True)
    playbook = tmp_path / f"{target}.yml"
    playbook.write_text(json.dumps([{"name": f"Integration target {target}", "hosts": ",".join(hosts),
                                     "gather_facts": False, "roles": [{"role": str(TARGETS / target)}]}]))
    extra = tmp_path / f"{target}-vars.json"
    extra.write_text(json.dumps(lab_vars(lab, results)))
    lab.run_playbook(playbook, "-e", f"@{extra}", *args)
    return {p.name[len(target) + 1 : -len(".json")]: json.loads(p.read_text())
            for p in results.glob(f"{target}-*.json")}


def cost(snapshots: dict[str, Any], start: str, end: str) -> int:
    """Shell commands the host ran between two snapshots."""
    return snapshots[end]["shell_commands"] - snapshots[start]["shell_commands"]


def hosts_by_scenario(lab) -> dict[str, str]:
    return {host.scenario: name for name, host in lab.hosts.items()}


# -- winhttp_proxy_info ------------------------------------------------------------------------------------
def test_winhttp_proxy_info_reads_every_starting_state(lab, tmp_path):
    for name in lab.hosts:
        lab.reset_state(name)
    docs = run_target(lab, tmp_path, "winhttp_proxy_info", sorted(lab.hosts))
    assert set(docs) == set(lab.hosts)
    seen_disagreeing = seen_absent = False
    for name, doc in docs.items():
        info, raw = doc["info"], registry_bytes(lab.state(name)["registry"])
        assert cost(doc["snapshots"], "before_info", "after_info") == 1, name
        assert info["os_build"] == lab.hosts[name].os_build
        for view in VIEWS:
            got = info["views"][view]
            assert got["raw_b64"] == b64(raw[view]), (name, view)
            assert got["present"] is (raw[view] is not None)
            if raw[view] is None:
                seen_absent = True
                assert (got["mode"], got["proxy"], got["bypass"]) == ("direct", "", [])
                continue
            version, counter, flags, proxy, bypass = decode_winhttp(raw[view])
            assert (got["version"], got["counter"], got["flags"]) == (version, counter, flags)
            assert got["mode"] == ("proxy" if flags & 2 else "direct")
            assert got["proxy"] == proxy and got["bypass"] == [e for e in bypass.split(";") if e]
        effective = {view: decode_winhttp(raw[view])[3:] if raw[view] else ("", "") for view in VIEWS}
        disagree = effective["native"] != effective["wow6432"]
        seen_disagreeing |= disagree
        assert info["views_disagree"] is disagree, name
    assert seen_disagreeing and seen_absent, "the lab no longer seeds every starting state"


def test_winhttp_proxy_info_over_https(lab, tmp_path):
    name = hosts_by_scenario(lab)["bypass"]
    lab.reset_state(name)
    docs = run_target(
        lab, tmp_path, "winhttp_proxy_info", [name],
        "-e", f"ansible_port={lab.hosts[name].https_port}", "-e", "ansible_winrm_scheme=https",
        "-e", "ansible_winrm_server_cert_validation=validate", "-e", f"ansible_winrm_ca_trust_path={lab.ca_path}",
    )
    info = docs[name]["info"]
    assert cost(docs[name]["snapshots"], "before_info", "after_info") == 1
    assert info["views"]["native"]["bypass"] == ["<local>", "*.lab.test"]
    assert info["views"]["native"]["raw_b64"] == lab.state(name)["registry"]["native"]["WinHttpSettings"]


# -- winhttp_proxy -------------------------------------------------------------------------------------------
def test_winhttp_proxy_apply_idempotence_absent_restore(lab, tmp_path):
    scenarios = hosts_by_scenario(lab)
    names = [scenarios["missing"], scenarios["views_disagree"], scenarios["bypass"]]
    original = {name: registry_bytes(lab.reset_state(name)["registry"]) for name in names}
    docs = run_target(lab, tmp_path, "winhttp_proxy", names)
    assert set(docs) == set(names)
    for name in names:
        shots, res = docs[name]["snapshots"], docs[name]["results"]
        before = original[name]
        # Costs: a read is one command, a change two (read + apply-and-read-back), bad input none.
        assert cost(shots, "before_set_check", "after_set_check") == 1
        assert cost(shots, "after_set_check", "after_set") == 1 + 2  # winhttp_proxy_info read + the change
        assert cost(shots, "after_set", "after_set_again") == 1
        assert cost(shots, "before_bad_input", "after_bad_input") == 0
        assert len(res["bad"]) == 14

        # The change: both views hold the proxy, counter + 1 (0 where there was no value), as netsh writes it.
        applied = registry_bytes(shots["after_set"]["registry"])
        for view in VIEWS:
            version, counter, flags, proxy, bypass = decode_winhttp(applied[view])
            expected_counter = 0 if before[view] is None else decode_winhttp(before[view])[1] + 1
            assert (version, counter, flags) == (0x18, expected_counter, 3), (name, view)
            assert (proxy, bypass) == ("proxy.crlfix-test.lab.test:8080", "<local>;*.Contoso.test;10.*")
        assert res["set"]["previous_raw"] == {view: b64(before[view]) for view in VIEWS}
        assert res["set"]["after"]["native"]["raw_b64"] == b64(applied["native"])
        assert "diff" in res["set"] and "diff" not in res["set_again"]
        assert registry_bytes(shots["after_set_again"]["registry"]) == applied  # the re-run wrote nothing

        # Per-scheme proxy in both views, then views=[native] touches only the native view.
        scheme = registry_bytes(shots["after_scheme"]["registry"])
        per_scheme = "http=proxy-a.crlfix-test.lab.test:8080;https=proxy-b.crlfix-test.lab.test:8443"
        assert {decode_winhttp(scheme[view])[3] for view in VIEWS} == {per_scheme}
        native_only = registry_bytes(shots["after_native_only"]["registry"])
        assert decode_winhttp(native_only["native"])[3] == "[fd00::3128]:3128"
        assert native_only["wow6432"] == scheme["wow6432"]

        # state=absent: exactly the bytes `netsh winhttp reset proxy` writes over the previous value.
        absent = registry_bytes(shots["after_absent"]["registry"])
        previous = {view: base64.b64decode(res["absent"]["previous_raw"][view]) for view in VIEWS}
        assert previous["native"] == native_only["native"]
        for view in VIEWS:
            assert absent[view] == reset_proxy_bytes(previous[view]), (name, view)

        # restore: the exact original bytes, an absent value absent again; and at the end of the target too.
        assert registry_bytes(shots["after_restore"]["registry"]) == before
        assert registry_bytes(lab.state(name)["registry"]) == before
    missing = scenarios["missing"]
    assert original[missing] == {"native": None, "wow6432": None}
    assert docs[scenarios["views_disagree"]]["original"]["views_disagree"] is True


def test_winhttp_proxy_fixes_only_the_view_that_differs(lab, tmp_path):
    """A host whose 64-bit view has the proxy and whose 32-bit view is direct: one netsh run, SysWOW64's."""
    name = hosts_by_scenario(lab)["views_disagree"]
    original = registry_bytes(lab.reset_state(name)["registry"])
    native_proxy = decode_winhttp(original["native"])[3]
    playbook = tmp_path / "fix.yml"
    playbook.write_text(json.dumps([{
        "name": "Fix the disagreeing views", "hosts": name, "gather_facts": False,
        "tasks": [{"name": "Set the proxy the native view already has",
                   "crlfix.windows.winhttp_proxy": {"proxy": native_proxy}, "register": "fix"},
                  {"name": "Hand over", "delegate_to": "localhost",
                   "ansible.builtin.copy": {"dest": str(tmp_path / "fix.json"), "content": "{{ fix | to_json }}",
                                            "mode": "0644"}}]}]))
    commands_before = lab.metrics()["hosts"][name]["shell_commands"]
    lab.run_playbook(playbook)
    fix = json.loads((tmp_path / "fix.json").read_text())
    assert lab.metrics()["hosts"][name]["shell_commands"] - commands_before == 2
    assert [(op["view"], op["action"]) for op in fix["operations"]] == [("wow6432", "set")]
    after = registry_bytes(lab.state(name)["registry"])
    assert after["native"] == original["native"]
    assert decode_winhttp(after["wow6432"])[2:4] == (3, native_proxy)
    assert fix["views_disagree"] is False
    lab.reset_state(name)


# -- cert_revocation_info ------------------------------------------------------------------------------------
def test_cert_revocation_info_endpoints_flags_and_filters(lab, tmp_path):
    ldap_hosts = [n for n in lab.hosts if pki.leaf_profile(n) == pki.PROFILE_LDAP_ONLY]
    http_host = next(n for n in sorted(lab.hosts) if pki.leaf_profile(n) == pki.PROFILE_HTTP)
    assert ldap_hosts, "the lab has no LDAP-only host any more (tests/lab/pki.py leaf_profile)"
    for name in ldap_hosts:
        lab.reset_state(name)
    # A second leaf on the HTTP host, from the same issuing CA but with a delta CRL (its label says "delta").
    state = lab.reset_state(http_host)
    extra = pki.LabCA(lab.lab_dir).leaf("crlfix-delta-test.lab.test")
    extra_der = extra.public_bytes(Encoding.DER)
    state["cert_stores"]["My"].append({"der_b64": base64.b64encode(extra_der).decode(), "has_private_key": True})
    lab.write_state(http_host, state)
    try:
        docs = run_target(lab, tmp_path, "cert_revocation_info", [*ldap_hosts, http_host])
    finally:
        lab.reset_state(http_host)

    for name in [*ldap_hosts, http_host]:
        doc, stores = docs[name], lab.state(name)["cert_stores"]
        assert cost(doc["snapshots"], "before_certs", "after_certs") == 1
        assert cost(doc["snapshots"], "after_certs", "after_certs_winhttp") == 1  # include_winhttp: same trip
        leaf_der = base64.b64decode(stores["My"][0]["der_b64"])
        issuing = thumbprint(base64.b64decode(stores["CA"][0]["der_b64"]))
        leaf = doc["certs"]["certificates"][0]
        assert leaf["thumbprint"] == thumbprint(leaf_der)
        assert leaf["subject"] == f"CN={name}"
        assert leaf["not_after"] == x509.load_der_x509_certificate(leaf_der).not_valid_after_utc.strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        assert [e["thumbprint"] for e in leaf["chain"]] == [
            leaf["thumbprint"], issuing, thumbprint(base64.b64decode(stores["Root"][0]["der_b64"]))]
        assert leaf["endpoints"][1]["crl"] == [pki.ROOT_CRL_URL]
        assert leaf["endpoints"][1]["ca_issuers"] == [pki.ROOT_CERT_URL]
        assert leaf["endpoints"][0]["ocsp"] == [pki.OCSP_URL]
        assert leaf["endpoints"][0]["ca_issuers"] == [pki.ISSUING_CERT_URL]
        assert doc["thumbprint"]["certificates"][0]["thumbprint"] == leaf["thumbprint"]
        assert len(doc["thumbprint"]["certificates"]) == 1
        winhttp = doc["winhttp"]["winhttp"]["views"]
        registry = lab.state(name)["registry"]
        assert {view: winhttp[view]["value_b64"] for view in VIEWS} == {
            view: registry[view]["WinHttpSettings"] for view in VIEWS}
        endpoints = {(e["kind"], e["url"]): e for e in doc["certs"]["endpoints"]}
        assert len(endpoints) == len(doc["certs"]["endpoints"])  # de-duplicated
        assert endpoints[("crl", pki.ROOT_CRL_URL)]["carried_by"] == [issuing]

    for name in ldap_hosts:
        certs = docs[name]["certs"]
        leaf = certs["certificates"][0]
        assert leaf["endpoints"][0]["crl"] == [pki.ISSUING_LDAP_CRL_URL]
        assert leaf["flags"]["ldap_only"] is True
        assert certs["flags"]["ldap_only"] == [leaf["thumbprint"]]
        assert ("crl", pki.ISSUING_LDAP_CRL_URL) in {(e["kind"], e["url"]) for e in certs["endpoints"]}

    certs = docs[http_host]["certs"]
    first, second = (c["thumbprint"] for c in certs["certificates"])
    assert second == thumbprint(extra_der)
    assert certs["flags"]["ldap_only"] == []
    endpoints = {(e["kind"], e["url"]): e for e in certs["endpoints"]}
    # Both leaves carry the same CRL and CA Issuers URLs: listed once, depended on by both.
    assert sorted(endpoints[("crl", pki.ISSUING_CRL_URL)]["certificates"]) == sorted([first, second])
    assert sorted(endpoints[("crl", pki.ISSUING_CRL_URL)]["carried_by"]) == sorted([first, second])
    assert sorted(endpoints[("crl", pki.ROOT_CRL_URL)]["certificates"]) == sorted([first, second])
    assert endpoints[("delta_crl", pki.ISSUING_DELTA_CRL_URL)]["certificates"] == [second]
    assert endpoints[("ocsp", pki.OCSP_URL)]["scheme"] == "http"


# -- connection failures ------------------------------------------------------------------------------------
def test_unreachable_hosts_do_not_stop_the_play(lab, tmp_path):
    stopped, wrong_password, healthy = sorted(lab.hosts)[:3]
    initial = {name: registry_bytes(lab.reset_state(name)["registry"]) for name in (stopped, wrong_password, healthy)}
    playbook = tmp_path / "unreachable.yml"
    playbook.write_text(json.dumps([{
        "name": "Read a fleet with a dead host and a bad password", "hosts": f"{stopped},{wrong_password},{healthy}",
        "gather_facts": False,
        "vars": {"ansible_password": "{{ 'Wrong-password-1' if inventory_hostname == wrong_host else lab_password }}"},
        "tasks": [{"name": "Read the WinHTTP proxy", "crlfix.windows.winhttp_proxy_info": None},
                  {"name": "Set the proxy", "crlfix.windows.winhttp_proxy": {"proxy": "127.0.0.1:3128"}}],
    }]))
    lab.stop_twin(stopped)
    try:
        proc = lab.run_playbook(playbook, "-e", json.dumps({"lab_password": lab.hosts[healthy].password,
                                                            "wrong_host": wrong_password}), check=False)
    finally:
        lab.start_twin(stopped)
    recap = {m["host"]: (int(m["ok"]), int(m["unreachable"]), int(m["failed"])) for m in _RECAP.finditer(proc.stdout)}
    assert proc.returncode == 4, proc.stdout + proc.stderr  # 4: some hosts were unreachable
    assert recap == {stopped: (0, 1, 0), wrong_password: (0, 1, 0), healthy: (2, 0, 0)}, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    unreachable = re.findall(r"^fatal: \[(\S+)\]: UNREACHABLE! => \n(.*?)(?=^\S)", proc.stdout, re.M | re.S)
    messages = {host: " ".join(text.split()) for host, text in unreachable}  # undo the YAML callback's wrapping
    assert set(messages) == {stopped, wrong_password}, proc.stdout
    assert "crlfix.windows.winhttp_proxy_info: ntlm: " in messages[stopped]
    assert "Connection refused" in messages[stopped]
    assert "crlfix.windows.winhttp_proxy_info: ntlm: the specified credentials were rejected by the server" in (
        messages[wrong_password])
    assert decode_winhttp(registry_bytes(lab.state(healthy)["registry"])["native"])[3] == "127.0.0.1:3128"
    assert registry_bytes(lab.state(stopped)["registry"]) == initial[stopped]
    assert registry_bytes(lab.state(wrong_password)["registry"]) == initial[wrong_password]
    lab.reset_state(healthy)
