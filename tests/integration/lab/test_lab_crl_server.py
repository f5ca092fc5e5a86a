"""The CRL/AIA web server: content types, virtual hosts, fault modes, access log, background process."""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

import pytest

from tests.lab import crl_server, pki


def _get(address: str, host: str, path: str, timeout: float = 5.0, port: int = 80) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def test_serves_crls_and_certs_with_pkix_types(crl_http, lab_addresses):
    crl_addr, aia_addr = lab_addresses[pki.CRL_HOST], lab_addresses[pki.AIA_HOST]
    status, ctype, body = _get(crl_addr, pki.CRL_HOST, "/issuing-ca.crl")
    assert (status, ctype) == (200, "application/pkix-crl") and body[:1] == b"\x30"
    status, ctype, _body = _get(aia_addr, pki.AIA_HOST, "/issuing-ca.crt")
    assert (status, ctype) == (200, "application/pkix-cert")
    # No Host header match: served from the folder of the name bound to the address.
    assert _get(aia_addr, "unknown.example", "/root.crt")[0] == 200
    assert _get(crl_addr, pki.CRL_HOST, "/nope.crl")[0] == 404
    assert _get(crl_addr, pki.CRL_HOST, "/../../pki/root.key")[0] == 404


def test_fault_404_per_path_and_global(crl_http, lab_dir, lab_addresses):
    addr = lab_addresses[pki.CRL_HOST]
    crl_server.set_fault(lab_dir, "404", "/issuing-ca.crl")
    assert _get(addr, pki.CRL_HOST, "/issuing-ca.crl")[0] == 404
    assert _get(addr, pki.CRL_HOST, "/root.crl")[0] == 200
    crl_server.set_fault(lab_dir, "404")
    assert _get(addr, pki.CRL_HOST, "/root.crl")[0] == 404
    crl_server.clear_faults(lab_dir)
    assert _get(addr, pki.CRL_HOST, "/root.crl")[0] == 200


def test_fault_garbage_is_200_with_no_crl(crl_http, lab_dir, lab_addresses):
    crl_server.set_fault(lab_dir, "garbage", f"{pki.CRL_HOST}/issuing-ca.crl")
    status, ctype, body = _get(lab_addresses[pki.CRL_HOST], pki.CRL_HOST, "/issuing-ca.crl")
    assert (status, ctype) == (200, "application/pkix-crl")
    assert b"not a CRL" in body


def test_fault_hang_sends_nothing(crl_http, lab_dir, lab_addresses):
    crl_server.set_fault(lab_dir, "hang", "/root.crl", hang_seconds=5)
    with pytest.raises(TimeoutError):
        _get(lab_addresses[pki.CRL_HOST], pki.CRL_HOST, "/root.crl", timeout=0.3)


def test_bad_fault_mode_names_the_field(lab_dir):
    with pytest.raises(ValueError, match="mode"):
        crl_server.set_fault(lab_dir, "slow")
    with pytest.raises(ValueError, match="hang_seconds"):
        crl_server.set_fault(lab_dir, "hang", hang_seconds=1000)


def test_access_log_records_requests(crl_http, lab_dir, lab_addresses):
    _get(lab_addresses[pki.AIA_HOST], pki.AIA_HOST, "/root.crt?logged")
    lines = (lab_dir / "crl-server" / "access.log").read_text().splitlines()
    assert any("GET http://aia.public-ca.test/root.crt 200" in line for line in lines)


def test_background_process_starts_and_stops_by_pid(lab_dir, lab_addresses, free_port):
    addresses = lab_addresses  # same addresses as the in-process server, another port
    pid = crl_server.start_background(lab_dir, addresses, port=free_port)
    try:
        os.kill(pid, 0)
        assert _get(addresses[pki.CRL_HOST], pki.CRL_HOST, "/root.crl", port=free_port)[0] == 200
    finally:
        assert crl_server.stop_background(lab_dir) is True
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not crl_server.pid_file(lab_dir).exists()
    with pytest.raises(OSError):
        socket.create_connection((addresses[pki.CRL_HOST], free_port), timeout=0.5).close()


def test_second_server_on_same_address_fails_clearly(crl_http, lab_dir: Path, lab_addresses):
    with pytest.raises(RuntimeError, match="cannot listen"):
        crl_server.CrlServer(lab_dir, lab_addresses, port=80).start()
