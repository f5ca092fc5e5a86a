"""Schannel probe: real TLS handshakes between two local TLS servers, revocation checked through the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab import schannel
from tests.lab.winhttp import WinHttpProxy

pytestmark = pytest.mark.lab
FAST = {"per_url_timeout": 0.5, "total_timeout": 1.0, "connect_timeout": 5.0}
# 127.0.3.x is intranet for the outbound policy; port 0 keeps clear of a running lab's 5061 listeners.
PEER_ADDRESS = "127.0.3.250"


@pytest.fixture(scope="module")
def peer(lab_dir: Path):
    hosts = lab_dir / "pki" / "hosts"
    with schannel.TlsServer(
        PEER_ADDRESS, 0, hosts / "fe02.contoso.test.crt", hosts / "fe02.contoso.test.key"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_peer(lab_dir: Path):
    hosts = lab_dir / "pki" / "hosts"
    with schannel.TlsServer(
        PEER_ADDRESS,
        0,
        hosts / "fe02.contoso.test.crt",
        hosts / "fe02.contoso.test.key",
        client_ca=lab_dir / "pki" / "root.crt",
    ) as server:
        yield server


def _names(lab_addresses: dict) -> dict:
    return {**lab_addresses, "fe02.contoso.test": PEER_ADDRESS}


def probe(peer: str, stores: dict, names: dict, proxy: str | None = None, **options) -> dict:
    """``schannel.probe`` as a host with ``proxy`` (None: direct) and an empty URL cache, unless told otherwise."""
    options = {"sni": "fe02.contoso.test", "cache": {}, **FAST, **options}
    return schannel.probe(peer, stores=stores, proxy=WinHttpProxy(proxy), names=names, **options)


def test_probe_with_proxy_is_ok(peer, squid, stores, lab_addresses):
    result = probe(f"fe02.contoso.test:{peer.port}", stores, _names(lab_addresses), squid.proxy)
    assert result["error"] is None
    assert (result["chain_status"], result["trust_status"]) == ("ok", [])
    assert result["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert result["tcp_connect_ms"] is not None and result["handshake_ms"] >= result["tls_ms"]
    assert [e["status"] for e in result["revocation"]["elements"]] == ["ok", "ok"]


def test_probe_without_proxy_is_revocation_offline(peer, crl_http, stores, lab_addresses):
    result = probe(f"{PEER_ADDRESS}:{peer.port}", stores, lab_addresses)
    assert result["chain_status"] == "revocation_offline"
    assert "CERT_TRUST_IS_OFFLINE_REVOCATION" in result["trust_status"]
    assert [r["via"] for r in result["revocation"]["retrievals"]][0] == "direct"


def test_probe_uses_the_url_cache(peer, squid, stores, lab_addresses, free_port):
    cache: dict = {}
    names = _names(lab_addresses)
    probe(f"fe02.contoso.test:{peer.port}", stores, names, squid.proxy, cache=cache)
    again = probe(f"fe02.contoso.test:{peer.port}", stores, names, f"127.0.0.1:{free_port}", cache=cache)
    assert again["chain_status"] == "ok"
    assert all(r["from_cache"] for r in again["revocation"]["retrievals"])


def test_mutual_tls_with_host_certificate(mtls_peer, squid, stores, lab_dir, lab_addresses):
    hosts = lab_dir / "pki" / "hosts"
    client_cert = (hosts / "fe01.contoso.test.crt", hosts / "fe01.contoso.test.key")
    result = probe(f"{PEER_ADDRESS}:{mtls_peer.port}", stores, lab_addresses, squid.proxy, client_cert=client_cert)
    assert (result["chain_status"], result["error"]) == ("ok", None)


def test_untrusted_root_and_wrong_name(peer, squid, stores, lab_addresses):
    no_root = {"My": stores["My"], "CA": stores["CA"], "Root": []}
    result = probe(f"{PEER_ADDRESS}:{peer.port}", no_root, lab_addresses, squid.proxy)
    assert result["chain_status"] == "untrusted" and "verification failed" in result["error"]
    result = probe(f"{PEER_ADDRESS}:{peer.port}", stores, lab_addresses, squid.proxy, sni="other.contoso.test")
    assert result["chain_status"] == "untrusted"


def test_peer_down_and_peer_outside_intranet(stores, lab_addresses, free_port):
    down = probe(f"127.0.0.1:{free_port}", stores, lab_addresses, sni="x.test")
    assert down["chain_status"] is None and "TCP connect" in down["error"]
    far = probe("127.0.9.250:5061", stores, lab_addresses, sni="x.test", total_timeout=1, connect_timeout=0.3)
    assert far["chain_status"] is None and "ERROR_WINHTTP_TIMEOUT" in far["error"]


def test_bad_peer_names_the_field(stores):
    with pytest.raises(ValueError, match="peer"):
        schannel.probe("no-port", sni="x", stores=stores, proxy=WinHttpProxy(), names={}, cache={})
