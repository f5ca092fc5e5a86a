"""The real squid: start, proxied fetch by name visible in its access log, stop by PID, missing binary."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.lab import pki
from tests.lab import squid as squid_mod
from tests.lab.winhttp import WinHttpProxy, http_get

pytestmark = pytest.mark.lab


def test_proxied_crl_fetch_by_name_is_in_squid_access_log(squid, lab_addresses):
    result = http_get(pki.ISSUING_CRL_URL, proxy=WinHttpProxy(squid.proxy), names=lab_addresses, timeout=5)
    assert (result["via"], result["http_status"], result["error"]) == ("proxy", 200, None)
    lines = squid.access_log_lines()
    assert any("TCP_MISS/200" in line and "GET http://crl.public-ca.test/issuing-ca.crl" in line for line in lines)


def test_config_is_offline_and_local_only(squid):
    text = squid.config_path.read_text()
    assert f"http_port 127.0.0.1:{squid.port}" in text
    assert "dns_nameservers 127.0.0.1" in text and f"hosts_file {squid.hosts_path}" in text
    assert "cache deny all" in text and "acl lab_clients src 127.0.0.0/8" in text
    assert "crl.public-ca.test" in squid.hosts_path.read_text()


def test_unknown_name_through_squid_is_a_proxy_error_not_a_hang(squid, lab_addresses):
    result = http_get(
        "http://crl.not-in-lab.test/x.crl", proxy=WinHttpProxy(squid.proxy), names=lab_addresses, timeout=15
    )
    assert result["reachable"] is False
    assert result["http_status"] in (502, 503) and "from the proxy" in result["error"]


def test_stop_leaves_no_process(request, lab_addresses, free_port):
    lab = Path(tempfile.mkdtemp(prefix="crlfix-squid-test-"))
    lab.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(lab, ignore_errors=True))
    proxy = squid_mod.Squid(lab, port=free_port, hosts=lab_addresses)
    pid = proxy.start()
    os.kill(pid, 0)
    with pytest.raises(squid_mod.SquidError, match="already running"):
        proxy.start()
    assert proxy.stop() is True
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert proxy.pid() is None and not proxy.pid_path.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", free_port), timeout=0.5).close()
    assert proxy.stop() is False


def test_port_held_by_someone_else_is_refused(squid, tmp_path):
    other = squid_mod.Squid(tmp_path, port=squid.port)
    with pytest.raises(squid_mod.SquidError, match="already in use"):
        other.start()


def test_missing_squid_fails_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(squid_mod, "SQUID_BIN", tmp_path / "no-squid-here")
    with pytest.raises(squid_mod.SquidMissing, match="install-squid.sh"):
        squid_mod.Squid(tmp_path, port=3999).start()


def test_bad_port_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="port"):
        squid_mod.Squid(tmp_path, port=70000)


# squid's `browser` ACL (squid.conf.documented, "acl aclname browser [-i] regexp": a pattern match on the request's
# User-Agent) on the agent-filtering listeners: the behaviour tests/lab/squid.py cites, checked on the real squid.
CRYPTOAPI = "Microsoft-CryptoAPI/10.0"
WINHTTPREQUEST = "Mozilla/4.0 (compatible; Win32; WinHttp.WinHttpRequest.5)"


@pytest.mark.parametrize(("address", "agent", "method", "status"), [
    (squid_mod.CRYPTOAPI_ONLY_ADDRESS, CRYPTOAPI, "GET", 200),
    (squid_mod.CRYPTOAPI_ONLY_ADDRESS, WINHTTPREQUEST, "GET", 403),
    (squid_mod.CRYPTOAPI_ONLY_ADDRESS, WINHTTPREQUEST, "HEAD", 403),
    (squid_mod.CRYPTOAPI_ONLY_ADDRESS, CRYPTOAPI, "HEAD", 200),
    (squid_mod.BROWSERS_ONLY_ADDRESS, CRYPTOAPI, "GET", 403),
    (squid_mod.BROWSERS_ONLY_ADDRESS, WINHTTPREQUEST, "HEAD", 200),
    ("127.0.0.1", WINHTTPREQUEST, "GET", 200),  # the lab's own listener filters nothing
])
def test_agent_filtering_listeners_answer_by_user_agent(squid, lab_addresses, address, agent, method, status):
    proxy = WinHttpProxy(squid.filtered_proxy(address) if address != "127.0.0.1" else squid.proxy)
    result = http_get(pki.ISSUING_CRL_URL, proxy=proxy, names=lab_addresses, timeout=5, user_agent=agent,
                      method=method)
    assert result["http_status"] == status, result
    if status == 403:
        # squid's own refusal: the origin was never asked.
        assert result["reachable"] is False and "ERR_ACCESS_DENIED" in result["error"], result
    else:
        assert result["error"] is None and (result["bytes"] > 0) == (method == "GET"), result


def test_filtered_proxy_names_a_listener_of_this_squid(squid):
    assert squid.filtered_proxy(squid_mod.CRYPTOAPI_ONLY_ADDRESS) == f"127.0.0.2:{squid.port}"
    assert (squid.address, squid.port) in squid.listeners and len(squid.listeners) == 5  # agents, 407, CTL blocked
    with pytest.raises(ValueError, match="address"):
        squid.filtered_proxy("127.0.0.9")
