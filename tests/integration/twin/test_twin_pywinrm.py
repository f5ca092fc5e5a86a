"""Conformance of the twin driven by pywinrm (``winrm.Session`` / ``winrm.Protocol``), HTTP and HTTPS, NTLM and Basic.

Expected registry bytes are built here with ``struct`` from the layout that plugins/module_utils/_winhttp_settings.py
documents, not with the twin's encoder, so the twin is checked against that layout.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import threading

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError, WSManFaultError

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import LOADER, compress, inflate_document

pytestmark = pytest.mark.lab

HOST = "lync-fe01.lab.test"
NATIVE_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
# The collection's own bootstrap (a script without a preamble: the loader alone); the twin runs exactly this text and
# reads the rest of the script from stdin, deflated, in base64 (docs/dev/host-scripts.md).
BOOTSTRAP = LOADER


def documented_value(counter: int, proxy: str, bypass: str) -> bytes:
    """The layout of plugins/module_utils/_winhttp_settings.py: version 0x18, counter, flags (1 direct / 3 proxy),
    len+proxy, len+bypass."""
    flags = 3 if proxy else 1
    return (
        struct.pack("<IIII", 0x18, counter, flags, len(proxy))
        + proxy.encode()
        + struct.pack("<I", len(bypass))
        + bypass.encode()
    )


def state_value(lab, name: str, view: str = "native") -> bytes | None:
    raw = lab.state(name)["registry"][view]["WinHttpSettings"]
    return None if raw is None else base64.b64decode(raw)


def counter_of(value: bytes | None) -> int:
    return -1 if value is None else struct.unpack_from("<I", value, 4)[0]


def session(
    lab, name: str = HOST, https: bool = False, transport: str = "ntlm", password: str | None = None, **kwargs
) -> winrm.Session:
    host = lab.hosts[name]
    if https:
        kwargs.setdefault("ca_trust_path", str(lab.ca_path))
    return winrm.Session(
        host.endpoint(https), auth=(host.user, password or host.password), transport=transport, **kwargs
    )


MATRIX = [
    pytest.param(False, "ntlm", id="http-ntlm-encrypted"),
    pytest.param(True, "ntlm", id="https-ntlm"),
    pytest.param(True, "basic", id="https-basic"),
]


@pytest.mark.parametrize(("https", "transport"), MATRIX)
def test_netsh_set_show_reset_round_trip(lab, https, transport):
    lab.reset_state(HOST)
    before = state_value(lab, HOST)
    s = session(lab, https=https, transport=transport)

    r = s.run_ps('netsh winhttp set proxy proxy-server="127.0.0.1:3128" bypass-list="<local>;*.lab.test"')
    assert (r.status_code, r.std_err) == (0, b"")
    expected = documented_value(counter_of(before) + 1 if before else 0, "127.0.0.1:3128", "<local>;*.lab.test")
    assert state_value(lab, HOST) == expected
    assert r.std_out == (
        b"\r\nCurrent WinHTTP proxy settings:\r\n\r\n    Proxy Server(s) :  127.0.0.1:3128\r\n"
        b"    Bypass List     :  <local>;*.lab.test\r\n\r\n"
    )

    q = s.run_cmd("reg", ["query", f'"{NATIVE_KEY}"', "/v", "WinHttpSettings"])
    assert q.status_code == 0
    assert f"WinHttpSettings    REG_BINARY    {expected.hex().upper()}\r\n".encode() in q.std_out

    r = s.run_cmd("netsh", ["winhttp", "reset", "proxy"])
    assert r.status_code == 0
    assert b"Direct access (no proxy server)." in r.std_out
    assert state_value(lab, HOST) == documented_value(counter_of(expected) + 1, "", "")


def test_reset_on_host_without_value_writes_documented_direct_bytes(lab):
    data = lab.reset_state(HOST)
    data["registry"]["native"]["WinHttpSettings"] = None
    lab.write_state(HOST, data)
    r = session(lab).run_cmd("netsh winhttp reset proxy")
    assert r.status_code == 0
    # Microsoft Learn, "Use Group Policy to apply WinHTTP proxy settings to Windows clients".
    assert state_value(lab, HOST) == bytes.fromhex("1800000000000000010000000000000000000000")


def test_syswow64_netsh_writes_only_the_32bit_view(lab):
    lab.reset_state(HOST)
    native_before = state_value(lab, HOST, "native")
    r = session(lab).run_ps(r"& $env:windir\SysWOW64\netsh.exe winhttp set proxy 127.0.0.1:3128")
    assert r.status_code == 0, r.std_err
    assert state_value(lab, HOST, "native") == native_before
    assert state_value(lab, HOST, "wow6432")[8:] == documented_value(0, "127.0.0.1:3128", "")[8:]


def test_basic_over_http_is_refused_unless_allow_unencrypted(lab):
    with pytest.raises(InvalidCredentialsError):
        session(lab, transport="basic").run_cmd("hostname")
    data = lab.reset_state(HOST)
    data["winrm"]["AllowUnencrypted"] = True
    lab.write_state(HOST, data)
    try:
        r = session(lab, transport="basic").run_cmd("hostname")
        assert (r.status_code, r.std_out) == (0, b"LYNC-FE01\r\n")
    finally:
        lab.reset_state(HOST)


@pytest.mark.parametrize(("https", "transport"), MATRIX)
def test_bad_password_is_rejected_with_401(lab, https, transport):
    with pytest.raises(InvalidCredentialsError):
        session(lab, https=https, transport=transport, password="not-the-password").run_cmd("hostname")


def test_unknown_powershell_command_fails_with_the_powershell_error(lab):
    r = session(lab).run_ps("Get-CrlfixNothing -Force")
    assert r.status_code == 1
    err = r.std_err.decode()
    assert "Get-CrlfixNothing : The term 'Get-CrlfixNothing' is not recognized as the name of a cmdlet" in err
    assert "CategoryInfo          : ObjectNotFound: (Get-CrlfixNothing:String) [], CommandNotFoundException" in err
    assert "FullyQualifiedErrorId : CommandNotFoundException" in err


def test_unknown_cmd_command_fails_with_the_cmd_error(lab):
    r = session(lab).run_cmd("ipconfig", ["/all"])
    assert r.status_code != 0
    assert (
        r.std_err
        == b"'ipconfig' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    )


def test_advproxy_only_from_build_20348(lab):
    for name, host in lab.hosts.items():
        r = session(lab, name).run_cmd("netsh winhttp show advproxy")
        if host.os_build >= 20348:
            assert r.status_code == 0 and b"advanced proxy settings" in r.std_out
        else:
            assert r.status_code == 1
            assert r.std_out == b"The following command was not found: winhttp show advproxy.\r\n"


def test_big_output_arrives_over_several_receives(lab):
    data = lab.reset_state(HOST)
    ca = data["cert_stores"]["CA"][0]
    # Distinct bodies the deflated document cannot shrink (the store passes each through): over one envelope's worth.
    noise = random.Random(400)
    bodies = [base64.b64encode(noise.randbytes(600)).decode() for _copy in range(400)]
    data["cert_stores"]["CA"] = [{**ca, "der_b64": body} for body in bodies]
    lab.write_state(HOST, data)
    try:
        p = session(lab).protocol
        shell = p.open_shell(codepage=65001)
        script = (
            "# crlfix-script: cert_inventory\n# crlfix-schema: 1\n"
            '$CrlfixArgs = ConvertFrom-Json -InputObject \'{"stores":["My"],"chain_stores":["CA"]}\'\n'
        )
        cmd = p.run_command(shell, "powershell", ["-EncodedCommand", base64.b64encode(script.encode("utf-16-le"))])
        out, receives, done = b"", 0, False
        while not done:
            chunk, _stderr, rc, done = p.get_command_output_raw(shell, cmd)
            out += chunk
            receives += 1
        p.cleanup_command(shell, cmd)
        p.close_shell(shell)
        doc = json.loads(inflate_document(out.decode()))  # printed deflated: it is long
        assert rc == 0 and receives >= 2
        assert [entry["der_b64"] for entry in doc["stores"]["CA"]] == [entry["der_b64"] for entry in
                                                                       data["cert_stores"]["CA"]]
    finally:
        lab.reset_state(HOST)


def test_long_poll_times_out_then_terminate_releases_the_command(lab):
    p = session(lab, operation_timeout_sec=1, read_timeout_sec=5).protocol
    shell = p.open_shell()
    # The stdin bootstrap waits for its script on stdin, so the command stays running.
    cmd = p.run_command(shell, "powershell", ["-EncodedCommand", base64.b64encode(BOOTSTRAP.encode("utf-16-le"))])
    with pytest.raises(WinRMOperationTimeoutError):
        p.get_command_output_raw(shell, cmd)
    p.cleanup_command(shell, cmd)  # Signal terminate
    with pytest.raises(WSManFaultError) as excinfo:
        p.get_command_output_raw(shell, cmd)
    assert excinfo.value.wsman_fault_code == 2150858843
    assert "command identifier that does not exist" in excinfo.value.reason
    p.close_shell(shell)


def test_script_on_stdin_through_the_bootstrap(lab):
    p = session(lab).protocol
    shell = p.open_shell(codepage=65001)
    cmd = p.run_command(
        shell,
        "PowerShell",
        [
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Unrestricted",
            "-EncodedCommand",
            base64.b64encode(BOOTSTRAP.encode("utf-16-le")),
        ],
    )
    script = "# crlfix-script: winhttp_state\n# crlfix-schema: 1\n$CrlfixArgs = ConvertFrom-Json -InputObject '{}'\n"
    p.send_command_input(shell, cmd, base64.b64encode(compress(script)), end=True)
    out, err, rc = p.get_command_output(shell, cmd)
    p.cleanup_command(shell, cmd)
    p.close_shell(shell)
    assert (rc, err) == (0, b"")
    doc = json.loads(inflate_document(out.decode()))
    assert doc["script"] == "winhttp_state" and doc["computer_name"] == "LYNC-FE01"
    assert doc["views"]["native"]["value_b64"] == lab.state(HOST)["registry"]["native"]["WinHttpSettings"]


def test_unknown_shell_id_is_a_wsman_fault(lab):
    p = session(lab).protocol
    with pytest.raises(WSManFaultError) as excinfo:
        p.run_command("11111111-2222-3333-4444-555555555555", "hostname")
    assert excinfo.value.code == 500
    assert excinfo.value.wsman_fault_code == 2150858843
    assert excinfo.value.fault_subcode == "w:InvalidSelectors"
    assert "ShellId 11111111-2222-3333-4444-555555555555" in excinfo.value.reason


def test_request_larger_than_max_envelope_is_a_fault(lab):
    p = session(lab).protocol
    shell = p.open_shell()
    cmd = p.run_command(shell, "powershell", ["-EncodedCommand", base64.b64encode(BOOTSTRAP.encode("utf-16-le"))])
    with pytest.raises(WSManFaultError) as excinfo:
        p.send_command_input(shell, cmd, b"x" * 600_000)
    assert excinfo.value.fault_subcode == "w:EncodingLimit"
    p.cleanup_command(shell, cmd)
    p.close_shell(shell)


def test_several_shells_and_commands_at_once(lab):
    names = list(lab.hosts)[:3]
    results: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        name = names[index % len(names)]
        try:
            p = session(lab, name).protocol
            shells = [p.open_shell() for _shell_no in range(3)]
            cmds = [(sh, p.run_command(sh, "hostname")) for sh in shells]
            outs = [p.get_command_output(sh, c)[0] for sh, c in cmds]
            for sh in shells:
                p.close_shell(sh, close_session=False)
            assert len(set(outs)) == 1
            results[f"{index}"] = outs[0]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    expected = {lab.state(n)["hostname"].encode() + b"\r\n" for n in names}
    assert set(results.values()) == expected and len(results) == 9


def test_state_survives_a_twin_restart(lab):
    lab.reset_state(HOST)
    s = session(lab)
    assert s.run_cmd("netsh winhttp set proxy 127.0.0.9:8080").status_code == 0
    written = state_value(lab, HOST)
    lab.stop_twin(HOST)
    try:
        with pytest.raises(Exception):  # noqa: B017 - connection refused surfaces as a requests error
            session(lab).run_cmd("hostname")
    finally:
        lab.start_twin(HOST)
    r = session(lab).run_cmd("netsh winhttp show proxy")
    assert b"Proxy Server(s) :  127.0.0.9:8080" in r.std_out
    assert state_value(lab, HOST) == written
    lab.reset_state(HOST)


def test_certutil_urlcache_delete_empties_the_cache(lab):
    lab.reset_state(HOST)
    assert lab.state(HOST)["url_cache"]
    r = session(lab).run_cmd("certutil", ["-urlcache", "*", "delete"])
    assert r.status_code == 0
    assert b"CertUtil: -URLCache command completed successfully." in r.std_out
    assert lab.state(HOST)["url_cache"] == []
    lab.reset_state(HOST)


def test_metrics_count_requests_and_commands(lab):
    before = lab.metrics()["hosts"][HOST]
    session(lab).run_cmd("hostname")
    after = lab.metrics()["hosts"][HOST]
    assert after["shell_commands"] == before["shell_commands"] + 1
    assert after["http_requests"] >= before["http_requests"] + 5  # auth legs + Create/Command/Receive/Signal/Delete
    assert after["bytes_in"] > before["bytes_in"] and after["bytes_out"] > before["bytes_out"]


def test_anonymous_request_gets_401_with_negotiate(lab):
    host = lab.hosts[HOST]
    response = requests.post(
        host.endpoint(), data=b"<x/>", headers={"Content-Type": "application/soap+xml"}, timeout=10
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Negotiate"  # Basic is not offered over HTTP by default
    response = requests.post(host.endpoint(https=True), data=b"<x/>", verify=str(lab.ca_path), timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Negotiate, Basic realm="WSMAN"'
