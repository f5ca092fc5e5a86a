"""The twin as hard as Windows for the mutual probe and the restart (docs/dev/host-scripts.md, the second review).

- R3: a Lync-style host holds a service certificate for Server Authentication only and a machine certificate for
  Client Authentication; the probe presents the service's (Lync's peers take it), never the machine's.
- F2: the prober resumes the TLS session of an earlier handshake of the same command, and the listener then checks
  nothing (no certificate comes on a resumed handshake); samples say which they were.
- F3: after a restart the service's port listens only seconds after the Service Control Manager says Running; the
  restart waits for it before the handshake.
Each runs real twins (listeners on loopback) in an event loop of their own, as the lab server does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.lab.fleet import scenarios
from tests.twin import service_process
from tests.twin.host import Twin
from tests.twin.scripts import ScriptContext, service_restart, tls_probe
from tests.unit.twin.running_twins import running_twins

PROBER, PEER = "lync-fe01.lab.test", "lync-fe02.lab.test"
FAILURE_BOUND_S = 10  # bounds only a failure: the listener's answer takes milliseconds


def thumbprint(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict]:
    with running_twins(tmp_path, [PROBER, PEER], lambda data: scenarios.seed_services(data, "lync_servers")) as twins:
        yield twins


def probe_args(peer: Twin, samples: int = 3) -> dict:
    return {"peers": [{"host": "127.0.0.1", "port": peer.spec.tls_port, "sni": PEER}], "samples": samples,
            "timeout_ms": 20000, "check_revocation": True, "mutual": True}


def test_a_lync_host_holds_a_server_authentication_certificate_beside_its_machine_certificate(lab) -> None:
    usages = []
    for entry in lab["stores"][PROBER]["My"]:
        cert = x509.load_der_x509_certificate(base64.b64decode(entry["der_b64"]))
        usages.append(list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value))
    assert usages == [[ExtendedKeyUsageOID.SERVER_AUTH], [ExtendedKeyUsageOID.CLIENT_AUTH]]


def test_the_probe_presents_the_services_certificate_and_resumes_after_the_first_handshake(lab) -> None:
    prober, peer = lab["twins"][PROBER], lab["twins"][PEER]
    document = tls_probe.probe_all(ScriptContext(prober.state), probe_args(peer))
    service = base64.b64decode(lab["stores"][PROBER]["My"][0]["der_b64"])
    assert document["client_certificate"] == {"thumbprint": thumbprint(service), "subject": f"CN={PROBER}",
                                              "chosen_by": "fqdn", "fqdn": PROBER, "error": None}
    [result] = document["results"]
    samples = result["samples"]
    assert [s["handshake"] for s in samples] == ["full", "resumed", "resumed"]
    assert [s["certificate_sent"] for s in samples] == [True, False, False]
    assert samples[0]["certificate_requested"] is True and samples[0]["error"] is None
    assert result["one_sided"]["handshake"] == "full" and result["one_sided"]["error"] is None
    # The peer checked our certificate once, on the full handshake: the service's certificate, not the machine's.
    assert [check["thumbprint"] for check in peer.sip.client_checks] == [thumbprint(service)]
    assert peer.sip.resumed == 2


def test_the_bound_thumbprint_wins_and_a_missing_one_is_said(lab) -> None:
    prober, peer = lab["twins"][PROBER], lab["twins"][PEER]
    machine = base64.b64decode(lab["stores"][PROBER]["My"][1]["der_b64"])
    chosen = tls_probe.probe_all(ScriptContext(prober.state), {
        **probe_args(peer, samples=1), "client_certificate": {"thumbprint": thumbprint(machine)}})
    assert chosen["client_certificate"]["chosen_by"] == "thumbprint"
    assert chosen["client_certificate"]["thumbprint"] == thumbprint(machine)
    missing = tls_probe.probe_all(ScriptContext(prober.state), {
        **probe_args(peer, samples=1), "client_certificate": {"fqdn": "pool.lab.test"}})
    assert missing["client_certificate"]["thumbprint"] is None
    assert "whose SAN names pool.lab.test" in missing["client_certificate"]["error"]
    assert missing["results"][0]["one_sided"] is None and missing["results"][0]["samples"][0]["mutual"] is False


def test_a_restarted_service_listens_only_later_and_the_restart_waits_for_it(lab) -> None:
    peer = lab["twins"][PEER]
    args = {"services": ["RTCSRV"], "wait_ms": 60000,
            "tls": {**probe_args(peer, samples=1), "peers": [{"host": "127.0.0.1", "port": peer.spec.tls_port,
                                                              "sni": PEER}]}}
    before = service_process.process(peer.state)["started"]
    document = service_restart.run(ScriptContext(peer.state), args)
    assert document["services"] == [{"name": "RTCSRV", "restarted": True, "state": "Running", "error": None}]
    listen = document["listen"]
    # Refused at first (the SCM said Running, the port was closed), accepted once the new process listened.
    assert listen["listening"] is True and listen["attempts"] > 1 and listen["error"] is None
    assert document["tls"]["results"][0]["samples"][0]["error"] is None
    assert service_process.process(peer.state)["started"] > before  # a new process


def test_the_listener_answers_a_close_notify_that_came_with_the_clients_last_flight(lab) -> None:
    # A resumed TLS 1.2 handshake ends with the client's flight (ChangeCipherSpec, Finished); a client that shuts down
    # at once (the lab's prober, tests/lab/schannel.py, unwraps its socket) sends its close_notify in the same segment.
    # A TLS stack reads what it has buffered and answers; the twin waited for the next read, and the prober for its
    # socket timeout.
    peer = lab["twins"][PEER]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", peer.spec.tls_port), timeout=FAILURE_BOUND_S) as sock, \
            context.wrap_socket(sock, server_hostname=PEER) as first:
        session = first.session
    with socket.create_connection(("127.0.0.1", peer.spec.tls_port), timeout=FAILURE_BOUND_S) as sock:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=PEER, session=session)
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        sock.sendall(outgoing.read())  # ClientHello
        incoming.write(sock.recv(65536))  # ServerHello, ChangeCipherSpec, Finished: the server's part is done
        tls.do_handshake()
        assert tls.session_reused
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.unwrap()
        sock.sendall(outgoing.read())  # the client's last flight and its close_notify, in one segment
        answer = sock.recv(65536)  # without an answer, the bound (below the listener's idle 30 s) fails the test
        incoming.write(answer)
        tls.unwrap()  # the server's close_notify came: the shutdown is complete
