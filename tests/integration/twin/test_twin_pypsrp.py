"""Conformance of the twin driven by pypsrp (``pypsrp.wsman.WSMan`` + ``pypsrp.shell.WinRS``)."""

from __future__ import annotations

import base64
import json

import pytest
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.shell import CommandState, Process, SignalCode, WinRS
from pypsrp.wsman import WSMan

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import inflate_document

pytestmark = pytest.mark.lab

HOST = "exch-mbx01.lab.test"


def wsman(lab, name: str = HOST, **kwargs) -> WSMan:
    host = lab.hosts[name]
    kwargs.setdefault("username", host.user)
    kwargs.setdefault("password", host.password)
    kwargs.setdefault("ssl", False)
    if kwargs["ssl"]:
        kwargs.setdefault("port", host.https_port)
        kwargs.setdefault("cert_validation", str(lab.ca_path))
    else:
        kwargs.setdefault("port", host.http_port)
    return WSMan(host.address, **kwargs)


TRANSPORTS = [
    pytest.param({"ssl": False, "auth": "ntlm"}, id="http-ntlm-encrypted"),
    pytest.param({"ssl": False, "auth": "negotiate"}, id="http-spnego-encrypted"),
    pytest.param({"ssl": True, "auth": "ntlm"}, id="https-ntlm-ca-validated"),
    pytest.param({"ssl": True, "auth": "ntlm", "cert_validation": False}, id="https-ntlm-ignore-cert"),
    pytest.param({"ssl": True, "auth": "basic"}, id="https-basic"),
]


@pytest.mark.parametrize("kwargs", TRANSPORTS)
def test_netsh_through_winrs(lab, kwargs):
    lab.reset_state(HOST)
    with wsman(lab, **kwargs) as w, WinRS(w, codepage=65001) as shell:
        set_proc = Process(shell, "netsh", ["winhttp", "set", "proxy", "127.0.0.1:3128", "<local>"])
        set_proc.invoke()
        show = Process(shell, r"C:\Windows\System32\netsh.exe", ["winhttp", "show", "proxy"])
        show.invoke()
    assert set_proc.rc == 0 and show.rc == 0
    assert b"    Proxy Server(s) :  127.0.0.1:3128\r\n    Bypass List     :  <local>\r\n" in show.stdout
    value = base64.b64decode(lab.state(HOST)["registry"]["native"]["WinHttpSettings"])
    assert value[8:] == bytes.fromhex("03000000") + b"\x0e\x00\x00\x00127.0.0.1:3128" + b"\x07\x00\x00\x00<local>"


def test_bad_password_fails_authentication(lab):
    with pytest.raises(AuthenticationError), wsman(lab, auth="ntlm", password="wrong") as w, WinRS(w):
        pass


def test_basic_over_http_needs_allow_unencrypted(lab):
    with pytest.raises(AuthenticationError), wsman(lab, auth="basic", encryption="never") as w, WinRS(w):
        pass
    data = lab.reset_state(HOST)
    data["winrm"]["AllowUnencrypted"] = True
    lab.write_state(HOST, data)
    try:
        with wsman(lab, auth="basic", encryption="never") as w, WinRS(w) as shell:
            proc = Process(shell, "hostname", [])
            proc.invoke()
        assert (proc.rc, proc.stdout) == (0, b"EXCH-MBX01\r\n")
    finally:
        lab.reset_state(HOST)


def test_receive_splits_output_at_the_client_max_envelope_size(lab):
    script = (
        "# crlfix-script: cert_inventory\n# crlfix-schema: 1\n"
        '$CrlfixArgs = ConvertFrom-Json -InputObject \'{"stores":["My"],"chain_stores":["CA","Root"]}\''
    )
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    with wsman(lab, auth="ntlm", max_envelope_size=4096) as w, WinRS(w) as shell:
        command_id = (
            shell.command("powershell", ["-EncodedCommand", encoded])
            .find(
                "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}CommandResponse/"
                "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}CommandId"
            )
            .text
        )
        out, receives, state, rc = b"", 0, CommandState.RUNNING, None
        while state != CommandState.DONE:
            state, rc, buffers = shell.receive("stdout stderr", command_id)
            out += buffers["stdout"]
            receives += 1
        shell.signal(SignalCode.TERMINATE, command_id)
    doc = json.loads(inflate_document(out.decode()))  # printed deflated: it is long
    stores = lab.state(HOST)["cert_stores"]
    assert rc == 0 and receives > 1
    assert doc["stores"] == {
        k: [{"der_b64": c["der_b64"], "has_private_key": c["has_private_key"]} for c in v]
        for k, v in stores.items()
        if k in ("My", "CA", "Root")
    }


def test_stdin_and_ctrl_c(lab):
    with wsman(lab, auth="ntlm") as w, WinRS(w) as shell:
        proc = Process(shell, "powershell", ["-Command", "-"])
        proc.begin_invoke()
        proc.send(b"hostname\r\n", end=True)
        proc.end_invoke()
        assert (proc.rc, proc.stdout) == (0, b"EXCH-MBX01\r\n")
        waiting = Process(shell, "powershell", ["-Command", "-"])
        waiting.begin_invoke()
        waiting.signal(SignalCode.CTRL_C)
        waiting.end_invoke()
        assert waiting.rc == 0xC000013A


def test_receive_for_unknown_command_is_a_fault(lab):
    with wsman(lab, auth="ntlm") as w, WinRS(w) as shell:
        with pytest.raises(WSManFaultError) as excinfo:
            shell.receive("stdout stderr", "87E77BEB-6761-4C48-9D70-A00266B8459A")
    assert excinfo.value.code == 2150858843
    assert "command identifier that does not exist" in excinfo.value.reason


def test_several_shells_on_one_connection(lab):
    with wsman(lab, auth="ntlm") as w:
        shells = [WinRS(w) for _shell_no in range(4)]
        for shell in shells:
            shell.open()
        procs = [Process(shell, "hostname", []) for shell in shells]
        for proc in procs:
            proc.begin_invoke()
        for proc in procs:
            proc.end_invoke()
        for shell in shells:
            shell.close()
    assert {p.stdout for p in procs} == {b"EXCH-MBX01\r\n"} and {p.rc for p in procs} == {0}
