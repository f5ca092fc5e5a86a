"""The twin's command layer without the network: host scripts, netsh forms, quoting, honest failures."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import inflate_document
from tests.twin import executor
from tests.twin.state import HostState, new_state, write_json_atomic


@pytest.fixture
def state(tmp_path: Path) -> HostState:
    path = tmp_path / "host.json"
    write_json_atomic(
        path,
        new_state(
            "adfs01.lab.test",
            os_build=17763,
            user="u",
            password="p",
            ie_proxy={"proxy": "ie.lab.test:8080", "bypass": "<local>"},
        ),
    )
    return HostState.load(path)


def document(outcome: executor.Outcome) -> dict:
    """The document an outcome printed, inflated as the controller's seam does (a long one is printed deflated)."""
    return json.loads(inflate_document(outcome.stdout))


def ps(state: HostState, script: str) -> executor.Outcome:
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    return executor.run(state, executor.parse("PowerShell", ["-NoProfile", "-EncodedCommand", encoded]), b"")


def host_script(name: str, args_json: str, schema: int = 1) -> str:
    quoted = "".join(c * 2 if c in "'\u2018\u2019\u201a\u201b" else c for c in args_json)
    return (
        f"# crlfix-script: {name}\n# crlfix-schema: {schema}\n$CrlfixArgs = ConvertFrom-Json -InputObject '{quoted}'\n"
    )


def on_disk(state: HostState, view: str) -> bytes | None:
    raw = json.loads(state.path.read_text())["registry"][view]["WinHttpSettings"]
    return None if raw is None else base64.b64decode(raw)


def test_winhttp_apply_undoes_quote_doubling_and_writes_through(state):
    bypass = "<local>;o'brien.lab.test;\u2019typo\u2018"
    ops = {
        "operations": [
            {"view": "native", "action": "set", "proxy": "p:1", "bypass": "<local>;o'brien.lab.test"},
            {"view": "wow6432", "action": "restore", "value_b64": None},
        ]
    }
    out = ps(state, host_script("winhttp_apply", json.dumps(ops)))
    assert out.rc == 0 and out.stderr == ""
    doc = document(out)
    assert [r["rc"] for r in doc["results"]] == [0, 0]
    assert (
        on_disk(state, "native")[8:]
        == struct.pack("<II", 3, 3) + b"p:1" + struct.pack("<I", 24) + b"<local>;o'brien.lab.test"
    )
    assert doc["views"]["wow6432"] == {"path": doc["views"]["wow6432"]["path"], "present": False, "value_b64": None,
                                       "last_write": doc["views"]["wow6432"]["last_write"]}
    # Deleting the value is a write of its key: the key's time is the restore's (RegQueryInfoKey's lpftLastWriteTime).
    assert doc["views"]["wow6432"]["last_write"] >= doc["views"]["native"]["last_write"]
    # Typographic quotes are doubled too and must come back single; netsh then refuses the non-ASCII bypass.
    ops = {
        "operations": [
            {"view": "native", "action": "set", "proxy": "p:1", "bypass": bypass},
            {"view": "native", "action": "reset"},
        ]
    }
    doc = document(ps(state, host_script("winhttp_apply", json.dumps(ops, ensure_ascii=False))))
    assert len(doc["results"]) == 1 and doc["results"][0]["rc"] == 1  # first failure stops the rest


def test_unknown_script_and_schema_fail_on_stderr(state):
    for script in (host_script("no_such_script", "{}"), host_script("winhttp_state", "{}", schema=7)):
        out = ps(state, script)
        assert out.rc == 1 and out.stdout == ""
        assert out.stderr.startswith(b"#< CLIXML\r\n") and b"CrlfixScriptError" in out.stderr


def test_bad_argument_is_named(state):
    out = ps(state, host_script("winhttp_apply", '{"operations": [{"view": "sideways", "action": "set"}]}'))
    assert out.rc == 1 and b"operations[0].view: unknown view 'sideways'" in out.stderr


def test_cert_inventory_lists_missing_stores(state):
    doc = json.loads(
        ps(state, host_script("cert_inventory", '{"stores":["My"],"chain_stores":["Nope"],"winhttp":true}')).stdout
    )
    assert doc["missing_stores"] == ["Nope"] and doc["stores"] == {"My": []}
    assert doc["winhttp"]["script"] == "winhttp_state" and doc["winhttp"]["advproxy"] is None


def test_cert_inventory_schema_2_sends_a_certificate_in_two_stores_once(state):
    state.data["cert_stores"] = {"My": [{"der_b64": "QUJD", "has_private_key": True}],
                                 "CA": [{"der_b64": "REVG"}, {"der_b64": "QUJD"}]}
    args = '{"stores":["My"],"chain_stores":["CA"]}'
    doc = document(ps(state, host_script("cert_inventory", args, schema=2)))
    assert doc["certificates"] == ["QUJD", "REVG"]
    assert doc["stores"] == {"My": [{"cert": 0, "has_private_key": True}],
                             "CA": [{"cert": 1, "has_private_key": False}, {"cert": 0, "has_private_key": False}]}
    old = document(ps(state, host_script("cert_inventory", args, schema=1)))
    assert "certificates" not in old and old["stores"]["CA"][1] == {"der_b64": "QUJD", "has_private_key": False}


@pytest.mark.parametrize(
    ("line", "proxy", "bypass"),
    [
        (
            'netsh winhttp set proxy proxy-server="http=p1:8080;https=p2:8443" bypass-list="<local>"',
            "http=p1:8080;https=p2:8443",
            "<local>",
        ),
        ('netsh winhttp set proxy p3:3128 "<local>;*.contoso.com"', "p3:3128", "<local>;*.contoso.com"),
        ("netsh.exe winhttp set proxy p4:80", "p4:80", ""),
    ],
)
def test_netsh_set_proxy_forms(state, line, proxy, bypass):
    out = ps(state, line)
    assert out.rc == 0
    assert f"Proxy Server(s) :  {proxy}\r\n    Bypass List     :  {bypass or '(none)'}\r\n" in out.stdout
    value = on_disk(state, "native")
    assert (
        value[12:] == struct.pack("<I", len(proxy)) + proxy.encode() + struct.pack("<I", len(bypass)) + bypass.encode()
    )


def test_netsh_set_proxy_without_server_prints_usage(state):
    out = ps(state, "netsh winhttp set proxy")
    assert out.rc == 1 and "Usage:  set proxy" in out.stdout


def test_import_from_ie_and_without_ie(state):
    out = ps(state, "netsh winhttp import proxy source=ie")
    assert out.rc == 0 and "Proxy Server(s) :  ie.lab.test:8080" in out.stdout
    state.data["ie_proxy"] = None
    state.save()
    out = ps(state, "netsh winhttp import proxy source=ie")
    assert out.rc == 1 and "Error updating proxy settings" in out.stdout


def test_preserve_rc_line_passes_the_native_exit_code(state):
    script = (
        "reg query HKLM\\SOFTWARE\\Nothing /v X\r\n"
        "If (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) { exit $LASTEXITCODE } "
        "Else { exit 1 } }"
    )
    out = ps(state, "Set-StrictMode -Version Latest\r\n" + script)
    assert out.rc == 1 and b"NativeCommandError" in out.stderr
    out = ps(state, "certutil -nosuchverb")
    assert out.rc == 1  # no preserve_rc line: PowerShell -Command reports failure as 1
    out = ps(state, "certutil -nosuchverb\r\n" + script.split("\r\n")[1])
    assert out.rc == 0x80070057


def test_first_unknown_line_stops_the_script(state):
    out = ps(state, "hostname\n$x = 1\nnetsh winhttp reset proxy")
    assert out.rc == 1 and out.stdout == "ADFS01\r\n"
    assert b"The term '$x' is not recognized" in out.stderr
    assert on_disk(state, "native") is None  # the reset after the unknown line never ran


def test_not_a_modelled_path_is_not_netsh(state):
    out = ps(state, r"C:\Tools\netsh.exe winhttp reset proxy")
    assert out.rc == 1 and on_disk(state, "native") is None


def test_stdin_bootstrap_as_the_collection_seam_sends_it(state):
    """The seam wraps its bootstrap in Ansible's preserve_rc lines; the twin must still read stdin."""
    from ansible.plugins.loader import shell_loader

    from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import wire_command
    from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import build_host_script

    shell = shell_loader.get("powershell")
    wire = wire_command(build_host_script("winhttp_state", {}),
                        lambda text: shell._encode_script(text, as_list=False, strict_mode=False, preserve_rc=True))
    assert wire.stdin is not None
    argv = shell._encode_script(wire.script, as_list=True, strict_mode=False, preserve_rc=True)
    out = executor.run(state, executor.parse(argv[0], argv[1:]), wire.stdin)
    assert out.rc == 0, out.stderr
    assert document(out)["script"] == "winhttp_state"


# --- stdin is read with the shell's code page, as powershell.exe reads it -------------------------


@pytest.mark.parametrize(("codepage", "encoding"), [(437, "cp437"), (850, "cp850"), (1252, "cp1252")])
def test_stdin_is_decoded_with_the_shells_code_page(codepage, encoding) -> None:
    text = "hostname # caf\u00e9 \u00e4"
    assert executor._decode_stdin(text.encode(encoding), codepage) == text
    # The old twin read every stdin as UTF-8 first: these bytes are not UTF-8 in 437 and 850, fine in any code page.
    assert executor._decode_stdin("\u00e4".encode(encoding), codepage) == "\u00e4"


def test_bytes_the_code_page_cannot_decode_become_the_replacement_character() -> None:
    assert executor._decode_stdin(b"caf\xe9", 65001) == "caf\ufffd"  # .NET's DecoderReplacementFallback
    assert executor._decode_stdin(b"\xef\xbb\xbfhostname", 65001) == "hostname"


def test_the_twin_takes_as_many_urls_and_peers_as_the_scripts_do() -> None:
    # The scripts have no MAX_URLS / MAX_PEERS: the twin refused 257 URLs and 65 peers.
    from tests.twin.scripts import crl_fetch, tls_probe

    urls, *_rest = crl_fetch._validate({"urls": [f"http://crl{i}.lab.test/x.crl" for i in range(300)]})
    assert len(urls) == 300
    peers = [{"host": f"peer{i}.lab.test", "port": 5061, "sni": f"peer{i}.lab.test"} for i in range(100)]
    assert len(tls_probe._validate({"peers": peers})[0]) == 100


def test_the_os_caption_is_the_registrys_product_name(state) -> None:
    # ProductName has no "Microsoft " prefix; WMI's Caption has (docs/dev/host-scripts.md, winhttp_state).
    out = ps(state, host_script("winhttp_state", "{}"))
    assert document(out)["os"]["caption"] == "Windows Server 2019 Datacenter"


@pytest.mark.parametrize(("args", "text"), [
    ('{"stores": [""]}', "argument 'stores': \"\" is not a certificate store name (letters, digits, space, . _ -)"),
    ('{"stores": ["My"], "chain_stores": ["CA\\\\..\\\\Root"]}',
     "argument 'chain_stores': \"CA\\\\..\\\\Root\" is not a certificate store name"),
    ('{"stores": [null]}', "argument 'stores': null is not a certificate store name"),
])
def test_store_names_are_refused_with_the_scripts_pattern_and_text(state, args, text) -> None:
    out = ps(state, host_script("cert_inventory", args))
    assert out.rc == 1 and text in (out.stderr if isinstance(out.stderr, str) else out.stderr.decode())


def test_a_host_without_wow64_answers_the_missing_program(state) -> None:
    # Server Core without WoW64 has no SysWOW64 netsh. The script's Invoke-CrlfixNativeCommand
    # answers {"rc": 1, "output": "<path> does not exist on this host"}; a command line gets the "not recognized" text.
    state.data["os"]["wow64"] = False
    op = {"view": "wow6432", "action": "set", "proxy": "p:1", "bypass": "", "expect_b64": None}
    state.set_winhttp_value("wow6432", None)
    out = ps(state, host_script("winhttp_apply", json.dumps({"operations": [op]}), schema=2))
    result, = document(out)["results"]
    assert (result["rc"], result["output"]) == (1, "C:\\Windows\\SysWOW64\\netsh.exe does not exist on this host")
    assert state.winhttp_value("wow6432") is None
    raw = ps(state, "%windir%\\SysWOW64\\netsh.exe winhttp show proxy")
    assert raw.rc == 1 and "is not recognized" in (raw.stderr if isinstance(raw.stderr, str) else raw.stderr.decode())
    assert ps(state, "%windir%\\System32\\netsh.exe winhttp show proxy").rc == 0
