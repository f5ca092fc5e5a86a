"""fix_crl follows a service identity whose CryptoAPI path is WPAD: the wpad_identity scenario end to end.

``wpad_identity`` (tests/lab/fleet/scenarios.py): netsh direct; the service accounts' IE settings ask for
auto-detection only. CryptoAPI as them discovers (KB 2623724 step 3; tests/twin/wpad.py): in the lab nothing answers
(no DHCP, no wpad.lab.test), so the audit reports ``source: wpad`` with no proxy and 12180, and the chain built as
NETWORK SERVICE goes direct and fails. Given a PAC through DHCP option 252 (a real HTTP server on the intranet address
127.0.0.1 that this test starts), the same identity goes through the PAC's proxy. The fix puts every identity on netsh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ._runs import FAST, run_fix_crl, seed_scenario

pytestmark = pytest.mark.lab

NS = "NT AUTHORITY\\NETWORK SERVICE"


@pytest.fixture
def pac_server() -> Iterator[dict[str, str]]:
    """Serves ``/wpad.dat``; the test sets its body (``served["body"]``) before a host downloads it."""
    served = {"body": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = served["body"].encode()
            self.send_response(200 if self.path == "/wpad.dat" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}/wpad.dat"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def test_wpad_identity_is_audited_on_its_wpad_path_then_fixed(fleet, tmp_path, pac_server) -> None:
    name, proxy = seed_scenario(fleet, "wpad_identity")

    audit = run_fix_crl(fleet, tmp_path / "audit", "--check", "-l", name, extra_vars=FAST)
    host = audit.host(name)
    assert host["status"] == "would_change", host["reason"]
    path = host["identities"][NS]["effective_proxy"]
    assert path == {"source": "wpad", "proxy": None, "pac_url": None,
                    "error": "ERROR_WINHTTP_AUTODETECTION_FAILED (12180)"}, path
    assert host["identities"][NS]["chain_ok"] is False, host["identities"][NS]
    differs = [f for f in host["findings"] if f["code"] == "identity_path_differs" and f["identity"] == NS]
    assert differs and "goes wpad with no proxy found" in differs[0]["detail"], host["findings"]
    assert host["commands"] == 1 and fleet.state(name)["counters"]["netsh_writes"] == 0

    # DHCP option 252 names a PAC whose FindProxyForURL returns the site's proxy: the identity's WPAD path works.
    pac_server["body"] = f'function FindProxyForURL(url, host) {{ return "PROXY {proxy}"; }}'
    state = fleet.state(name)
    state["wpad"]["dhcp_url"] = pac_server["url"]
    fleet.write_state(name, state)
    found = run_fix_crl(fleet, tmp_path / "found", "--check", "-l", name, extra_vars=FAST).host(name)
    assert found["identities"][NS]["effective_proxy"] == {"source": "wpad", "proxy": proxy,
                                                          "pac_url": pac_server["url"], "error": None}
    assert found["identities"][NS]["chain_ok"] is True, found["identities"][NS]
    # Through the proxy the inventory intends, but not the admin's path (the admin has no IE settings: direct).
    detail = next(f["detail"] for f in found["findings"]
                  if f["code"] == "identity_path_differs" and f["identity"] == NS)
    assert "the connecting account" in detail and "intends" not in detail

    fix = run_fix_crl(fleet, tmp_path / "fix", "-l", name, extra_vars=FAST).host(name)
    assert fix["status"] == "changed", fix["reason"]
    assert fix["identities"][NS]["effective_proxy"] == {"source": "netsh", "proxy": proxy}
    assert [f for f in fix["findings"] if f["code"] == "identity_path_differs"] == []
