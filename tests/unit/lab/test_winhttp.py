"""WinHTTP proxy selection and bypass-list semantics (Microsoft Learn, "WINHTTP_PROXY_INFO structure")."""

from __future__ import annotations

import pytest

from tests.lab.winhttp import OutboundPolicy, WinHttpProxy, bypassed


@pytest.mark.parametrize(
    ("proxy", "url", "expected"),
    [
        (None, "http://crl.public-ca.test/a.crl", None),
        ("", "http://crl.public-ca.test/a.crl", None),
        ("127.0.0.1:3128", "http://crl.public-ca.test/a.crl", ("127.0.0.1", 3128)),
        ("proxy.contoso.test", "http://crl.public-ca.test/a.crl", ("proxy.contoso.test", 80)),
        ("http://127.0.0.1:3128", "http://x.test/", ("127.0.0.1", 3128)),
        ("http=p1:8080;https=p2:8443", "http://x.test/", ("p1", 8080)),
        ("https=p2:8443 http=p1:8080", "http://x.test/", ("p1", 8080)),
        ("https=p2:8443", "http://x.test/", None),  # only an https proxy: CRLs over http go direct
        ("https=p2:8443;p3:3128", "http://x.test/", ("p3", 3128)),
    ],
)
def test_proxy_for(proxy, url, expected):
    assert WinHttpProxy(proxy).proxy_for(url) == expected


# Bypass entries: `<local>` = names without a period, `*` wildcard, case-insensitive, optional scheme and port.
BYPASSED = [
    ("intranet", "<local>"),
    ("crl.public-ca.test", "*.public-ca.test"),
    ("CRL.Public-CA.test", "*.public-ca.test"),
    ("crl.public-ca.test", "crl.public-ca.test"),
    ("10.1.2.3", "10.*"),
    ("fe01.contoso.com", "<local> *.contoso.com"),
    ("crl.public-ca.test", "*public-ca*"),
    ("crl.public-ca.test", "http://crl.public-ca.test"),
]
NOT_BYPASSED = [
    ("crl.public-ca.test", "<local>"),
    ("public-ca.test", "*.public-ca.test"),
    ("crl2.public-ca.test", "crl.public-ca.test"),
    ("crl.public-ca.test", "<local>;*.contoso.com"),
    ("crl.public-ca.test", "crl.public-ca.test:8080"),
    ("crl.public-ca.test", "https://crl.public-ca.test"),
    ("crl.public-ca.test", None),
]


@pytest.mark.parametrize(("host", "bypass"), BYPASSED)
def test_bypass_list_matches(host, bypass):
    assert bypassed(host, None, "http", bypass) is True


@pytest.mark.parametrize(("host", "bypass"), NOT_BYPASSED)
def test_bypass_list_does_not_match(host, bypass):
    assert bypassed(host, None, "http", bypass) is False


def test_bypassed_url_goes_direct():
    proxy = WinHttpProxy("127.0.0.1:3128", "<local>;*.public-ca.test")
    assert proxy.proxy_for("http://crl.public-ca.test/issuing-ca.crl") is None
    assert proxy.proxy_for("http://crl.other-ca.test/x.crl") == ("127.0.0.1", 3128)


def test_bad_proxy_names_the_field():
    with pytest.raises(ValueError, match="proxy"):
        WinHttpProxy("127.0.0.1:99999")
    with pytest.raises(ValueError, match="proxy"):
        WinHttpProxy("http://a/b:3128")


def test_outbound_policy_intranet():
    policy = OutboundPolicy()
    assert policy.reachable("127.0.0.1") and policy.reachable("127.0.1.7") and policy.reachable("127.0.3.200")
    assert not policy.reachable("127.0.9.80")


def test_the_request_carries_the_agent_it_is_given():
    # CryptoAPI's retrieval sends Microsoft-CryptoAPI/<version>; the per-URL fetch sends it too.
    import socket
    import threading

    from tests.lab.winhttp import WinHttpProxy, http_get

    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def answer() -> None:
        conn, _address = server.accept()
        with conn:
            seen.append(conn.recv(4096))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=answer)
    thread.start()
    port = server.getsockname()[1]
    result = http_get(f"http://crl.test:{port}/x.crl", proxy=WinHttpProxy(), names={"crl.test": "127.0.0.1"},
                      timeout=5, user_agent="Microsoft-CryptoAPI/6.1")
    thread.join(5)
    server.close()
    assert result["http_status"] == 200
    assert b"\r\nUser-Agent: Microsoft-CryptoAPI/6.1\r\n" in seen[0]
