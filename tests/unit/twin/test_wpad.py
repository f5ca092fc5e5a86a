"""The twin's WPAD and CryptoAPI's proxy order per host class (tests/twin/wpad.py, identities.py), against the sources.

KB 2623724 (MicrosoftDocs/SupportArticles-docs: support/developer/browsers/security-privacy/
description-of-cryptography-api-proxy-from-crl.md): before Windows 10 an identity without IE settings discovers
(step 3); from Windows 10 CAPI2 opens WinHTTP with WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY (netsh, then the IE settings).
Microsoft Learn "WinHTTP AutoProxy Functions": discovery tries DHCP, then DNS, and neither downloads nor runs the PAC;
with both flags, detection first and the script only when detection locates no PAC URL; 12180 when nothing is found.
The PAC server is a real HTTP server on loopback; none of this imports the collection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.lab.winhttp import OutboundPolicy
from tests.twin import identities, revocation, wpad
from tests.twin.state import HostState, new_state, write_json_atomic

CONSTANT_PAC = 'function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:3128"; }'
NS_SID = "S-1-5-20"


class _PacHandler(BaseHTTPRequestHandler):
    body = CONSTANT_PAC.encode()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status = 200 if self.path == "/wpad.dat" else 404
        body = self.body if status == 200 else b"not found"
        self.send_response(status)
        self.send_header("Content-Type", "application/x-ns-proxy-autoconfig")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pac_server() -> Iterator[str]:
    """A PAC file on an intranet address (127.0.0.1), as DHCP option 252 would name it: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PacHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    previous = revocation.world()
    revocation.configure(revocation.World(names={"wpad.lab.test": "127.0.9.250"}, policy=OutboundPolicy()))
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/wpad.dat"
    finally:
        revocation.configure(previous)
        server.shutdown()
        server.server_close()


def make_state(tmp_path: Path, build: int, dhcp_url: str | None = None) -> HostState:
    data = new_state("fe01.lab.test", os_build=build, user="ansible", password="p", native=None, wow6432=None)
    data["wpad"]["dhcp_url"] = dhcp_url
    path = tmp_path / "host.json"
    write_json_atomic(path, data)
    return HostState.load(path)


VIA_PAC = ("wpad", "127.0.0.1:3128")


@pytest.mark.parametrize(("build", "expected"), [
    (7601, VIA_PAC), (9600, VIA_PAC), (14393, ("direct", None)), (20348, ("direct", None))])
def test_an_identity_without_ie_settings_discovers_only_before_windows_10(
        tmp_path: Path, pac_server: str, build: int, expected: tuple) -> None:
    state = make_state(tmp_path, build, dhcp_url=pac_server)
    source, proxy = identities.cryptoapi_proxy(state, NS_SID)
    assert (source, proxy.proxy) == expected


@pytest.mark.parametrize("build", [9600, 17763])
def test_auto_detect_uses_the_pac_s_proxy_on_either_order(tmp_path: Path, pac_server: str, build: int) -> None:
    state = make_state(tmp_path, build, dhcp_url=pac_server)
    state.data["accounts"][NS_SID]["ie"] = {"ProxyEnable": 1, "ProxyServer": "10.9.9.9:8080", "AutoDetect": True}
    source, proxy = identities.cryptoapi_proxy(state, NS_SID)
    assert (source, proxy.proxy) == ("wpad", "127.0.0.1:3128")  # auto settings before the manual server (step 3)


def test_disable_wpad_stops_discovery(tmp_path: Path, pac_server: str) -> None:
    state = make_state(tmp_path, 9600, dhcp_url=pac_server)
    state.data["wpad"]["disabled"] = True
    assert identities.cryptoapi_proxy(state, NS_SID) == ("direct", identities.WinHttpProxy())


def test_the_dns_step_names_wpad_of_the_host_s_domain_without_downloading(pac_server: str, tmp_path: Path) -> None:
    state = make_state(tmp_path, 17763)
    assert wpad.discover(state) == "http://wpad.lab.test/wpad.dat"
    state.data["fqdn"] = "fe01.other.test"
    assert wpad.discover(state) is None
    assert wpad.ask(state, None, detect=True) == wpad.Answer(None, None, wpad.AUTODETECTION_FAILED)


def test_dhcp_comes_before_dns(pac_server: str, tmp_path: Path) -> None:
    assert wpad.discover(make_state(tmp_path, 17763, dhcp_url=pac_server)) == pac_server


def test_a_pac_that_cannot_be_downloaded_is_12167(pac_server: str, tmp_path: Path) -> None:
    state = make_state(tmp_path, 17763, dhcp_url=pac_server.replace("wpad.dat", "missing.dat"))
    answer = wpad.ask(state, None, detect=True)
    assert answer.error == wpad.UNABLE_TO_DOWNLOAD_SCRIPT and answer.winhttp_proxy().is_direct


@pytest.mark.parametrize(("text", "expected"), [
    (CONSTANT_PAC, ("127.0.0.1:3128", None)),
    ("function FindProxyForURL(url, host) {\n  return 'PROXY a.lab.test:8080; PROXY b.lab.test:8080';\n}",
     ("a.lab.test:8080;b.lab.test:8080", None)),
    ('function FindProxyForURL(u, h) { return "DIRECT"; }', (None, None)),
    ('function FindProxyForURL(url, host) { if (isPlainHostName(host)) return "DIRECT"; return "PROXY p:1"; }',
     (None, wpad.BAD_AUTO_PROXY_SCRIPT)),  # needs JavaScript: outside the twin's subset
    ('function FindProxyForURL(url, host) { return "PROXY p:1; DIRECT"; }', (None, wpad.BAD_AUTO_PROXY_SCRIPT)),
])
def test_the_twin_runs_only_a_constant_pac(text: str, expected: tuple) -> None:
    assert wpad.run_pac(text) == expected


def test_the_stand_in_asks_only_when_a_path_reaches_discovery(tmp_path: Path, pac_server: str) -> None:
    request = {"timeout_ms": 2000, "unset_detects_below_build": 10240}
    for build, asked in ((17763, False), (9600, True)):
        state = make_state(tmp_path, build, dhcp_url=pac_server)
        part = identities.identities_part(state, {"services": [], "accounts": ["NT AUTHORITY\\NETWORK SERVICE"],
                                                  "accounts_from_services": True})
        found = wpad.discovery_part(state, part, request, "http://crl.public-ca.test/issuing-ca.crl")
        assert (found is not None) == asked, build
    assert found is not None
    assert found["auto_detect"] == {"detected": True, "pac_url": pac_server, "proxy": "127.0.0.1:3128", "error": None}
