"""Conformance of the twin driven by Ansible's real winrm connection plugin (``ansible -m raw``)."""

from __future__ import annotations

import base64
import json
import struct

import pytest

pytestmark = pytest.mark.lab


def expected_show_proxy(value_b64: str | None) -> str:
    """`netsh winhttp show proxy` text for a registry value (layout and output as plugins/module_utils/
    _winhttp_settings.py and _netsh_winhttp.py document them)."""
    proxy = bypass = ""
    if value_b64 is not None:
        value = base64.b64decode(value_b64)
        flags, proxy_len = struct.unpack_from("<II", value, 8)
        if flags & 2:
            proxy = value[16 : 16 + proxy_len].decode()
            (bypass_len,) = struct.unpack_from("<I", value, 16 + proxy_len)
            bypass = value[20 + proxy_len : 20 + proxy_len + bypass_len].decode()
    if not proxy:
        body = "    Direct access (no proxy server).\r\n"
    else:
        body = f"    Proxy Server(s) :  {proxy}\r\n    Bypass List     :  {bypass or '(none)'}\r\n"
    return "\r\nCurrent WinHTTP proxy settings:\r\n\r\n" + body + "\r\n"


def adhoc(lab, tmp_path, pattern: str, *args: str) -> dict:
    """Run ``ansible -m …`` and read each host's JSON result from ``--tree`` (ansible-core has no json callback)."""
    tree = tmp_path / "tree"
    lab.run_ansible(pattern, *args, "--tree", str(tree))
    return {p.name: json.loads(p.read_text()) for p in tree.iterdir()}


def test_raw_show_proxy_on_every_host_matches_its_state(lab, tmp_path):
    for name in lab.hosts:
        lab.reset_state(name)
    results = adhoc(lab, tmp_path, "windows", "-m", "raw", "-a", "netsh winhttp show proxy")
    assert set(results) == set(lab.hosts)
    for name, res in results.items():
        assert res["rc"] == 0, res
        assert res["stdout"] == expected_show_proxy(lab.state(name)["registry"]["native"]["WinHttpSettings"])


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["-e", "ansible_winrm_transport=ntlm"], id="https-ntlm-validated"),
        pytest.param(["-e", "ansible_winrm_transport=basic"], id="https-basic-validated"),
        pytest.param(["-e", "ansible_winrm_server_cert_validation=ignore"], id="https-ntlm-ignore-cert"),
    ],
)
def test_raw_over_https(lab, extra, tmp_path):
    host = "adfs01.lab.test"
    validate = [
        "-e",
        "ansible_winrm_server_cert_validation=validate",
        "-e",
        f"ansible_winrm_ca_trust_path={lab.ca_path}",
    ]
    results = adhoc(
        lab,
        tmp_path,
        host,
        "-m",
        "raw",
        "-a",
        "hostname",
        "-e",
        f"ansible_port={lab.hosts[host].https_port}",
        "-e",
        "ansible_winrm_scheme=https",
        *validate,
        *extra,
    )
    assert results[host]["rc"] == 0 and results[host]["stdout"] == "ADFS01\r\n"


def test_raw_set_proxy_writes_the_registry(lab, tmp_path):
    host = "lync-fe02.lab.test"
    lab.reset_state(host)
    results = adhoc(lab, tmp_path, host, "-m", "raw", "-a", "netsh winhttp set proxy proxy-server=127.0.0.1:3128")
    assert results[host]["rc"] == 0
    value = base64.b64decode(lab.state(host)["registry"]["native"]["WinHttpSettings"])
    assert value[:4] == b"\x18\x00\x00\x00" and value[8:] == (
        b"\x03\x00\x00\x00\x0e\x00\x00\x00127.0.0.1:3128\x00\x00\x00\x00"
    )
    lab.reset_state(host)


def test_raw_unknown_command_fails_honestly(lab, tmp_path):
    host = "lync-fe01.lab.test"
    results = adhoc(lab, tmp_path, host, "-m", "raw", "-a", "Get-WinHttpNothing")
    assert results[host]["rc"] == 1
    assert "The term 'Get-WinHttpNothing' is not recognized as the name of a cmdlet" in results[host]["stderr"]


def test_bad_password_makes_the_host_unreachable(lab, tmp_path):
    host = "lync-fe01.lab.test"
    results = adhoc(lab, tmp_path, host, "-m", "raw", "-a", "hostname", "-e", "ansible_password=wrong")
    assert results[host].get("unreachable") is True
    assert "credentials were rejected" in results[host]["msg"]


def test_a_powershell_module_fails_because_module_execution_is_not_modelled(lab, tmp_path):
    """The twin has no PowerShell: Ansible's module pipeline must fail, never report a fake success."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "twin_probe.ps1").write_text('#!powershell\n@{changed = $false; ping = "pong"} | ConvertTo-Json\n')
    host = "lync-fe01.lab.test"
    results = adhoc(lab, tmp_path, host, "-M", str(library), "-m", "twin_probe")
    assert results[host].get("ping") != "pong"
    assert results[host].get("unreachable") or results[host].get("failed")
