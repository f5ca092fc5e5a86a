"""Twins behave like separate machines: one twin's waiting never delays another twin's work.

The lab runs every twin in one asyncio process. A Windows host has its own processes and threads, so what one host
waits for (revocation retrievals running into their timeouts, a command waiting on the network) can never hold up
another host. These tests saturate one twin with waits that end only when the test says so, then ask another twin for
work: it must be done while the first twin is still waiting (an order, not a time: the waits never end by themselves).
tests/twin/README.md, "One machine each".
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.lab import pki
from tests.lab.fleet import listener_certs
from tests.lab.winhttp import OutboundPolicy
from tests.twin import executor, revocation, winhttp_value, winrs
from tests.twin.host import Twin
from tests.twin.state import new_state
from tests.unit.twin.running_twins import twin_of

# More waiting handshakes than any shared pool of the process had threads (asyncio's default executor has at most
# 32; the lab's old shared command pool had 128): a shared pool is full of them.
SLOW_HANDSHAKES = 40
SLOW_COMMANDS = 140
# Bounds only the failure: the waited-for work takes milliseconds when nothing shared holds it up.
FAILURE_BOUND_S = 30


def make_twin(lab_dir: Path, name: str, stores: dict, listener: dict, native: bytes | None) -> Twin:
    state_data = new_state(name, os_build=17763, user="ansible", password="p", native=native, wow6432=native,
                           cert_stores=stores[name])
    # The retrievals of a host without a proxy are dropped packets: they end only at their timeout (here, never
    # within the test) or when the lab stops (revocation.SHUTDOWN).
    state_data["chain_engine"] = {"ChainUrlRetrievalTimeoutMilliseconds": 600000,
                                  "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 600000}
    return twin_of(lab_dir, name, state_data, listener)


class LoopThread:
    """An event loop in a thread, as the lab server runs its twins; counts what is handed to executors."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.submitted = 0
        self.submitted_event = threading.Condition()
        original = self.loop.run_in_executor

        def counting(pool, func, *args):
            with self.submitted_event:
                self.submitted += 1
                self.submitted_event.notify_all()
            return original(pool, func, *args)

        self.loop.run_in_executor = counting  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = FAILURE_BOUND_S):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def wait_submitted(self, count: int) -> bool:
        with self.submitted_event:
            return self.submitted_event.wait_for(lambda: self.submitted >= count, timeout=FAILURE_BOUND_S)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict]:
    names = ["slow.lab.test", "fast.lab.test", "client.lab.test"]
    stores = pki.issue_host_certificates(tmp_path, names)
    listener = listener_certs.winrm_listener_certs(tmp_path / "winrm-ca", [(n, "127.0.0.1") for n in names])
    (tmp_path / "hosts").mkdir()
    previous = revocation.world()
    # The public CA's CRL server is out on the internet (not in the intranet): a direct retrieval is dropped.
    revocation.configure(revocation.World(tmp_path, {pki.CRL_HOST: "192.0.2.80", pki.AIA_HOST: "192.0.2.81"},
                                          OutboundPolicy(), 5061))
    loop = LoopThread()
    try:
        yield {"lab_dir": tmp_path, "stores": stores, "listener": listener, "loop": loop}
    finally:
        revocation.SHUTDOWN.set()  # ends every modelled wait, so no thread outlives the test
        loop.close()
        revocation.configure(previous)
        revocation.SHUTDOWN.clear()


def mutual_handshake(lab_dir: Path, stores: dict, port: int, server: str) -> None:
    """A client presenting its certificate; returns once the server's last flight came (after its check)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the server holds its last flight back until its check ends
    context.check_hostname = False
    root = base64.b64decode(stores["client.lab.test"]["Root"][0]["der_b64"])
    context.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(root))
    hosts = lab_dir / "pki" / "hosts"
    context.load_cert_chain(hosts / "client.lab.test.crt", hosts / "client.lab.test.key")
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock, \
            context.wrap_socket(sock, server_hostname=server) as tls:
        tls.do_handshake()


def test_one_twins_waiting_revocation_checks_never_delay_another_twins_handshake(world: dict) -> None:
    lab_dir, stores, loop = world["lab_dir"], world["stores"], world["loop"]
    slow = make_twin(lab_dir, "slow.lab.test", stores, world["listener"], None)  # direct: every retrieval waits
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"127.0.0.1:{closed.getsockname()[1]}"
    # A proxy that refuses at once: this host's check ends in milliseconds (offline, but without waiting).
    fast = make_twin(lab_dir, "fast.lab.test", stores, world["listener"], winhttp_value.encode(1, refused, ""))
    for twin in (slow, fast):
        loop.run(twin.start())
    clients = ThreadPoolExecutor(max_workers=SLOW_HANDSHAKES + 1)
    try:
        waiting = [clients.submit(mutual_handshake, lab_dir, stores, slow.spec.tls_port, "slow.lab.test")
                   for _handshake in range(SLOW_HANDSHAKES)]
        # Every slow handshake's certificate check has been handed to a thread pool (and is waiting or queued).
        assert loop.wait_submitted(SLOW_HANDSHAKES), f"only {loop.submitted} checks started"
        prompt = clients.submit(mutual_handshake, lab_dir, stores, fast.spec.tls_port, "fast.lab.test")
        assert _finished(prompt), "the fast twin's handshake waited for the slow twin's revocation checks"
        assert not any(f.done() for f in waiting) and not slow.sip.client_checks, "a slow check ended by itself"
        assert [check["status"] for check in fast.sip.client_checks] == ["revocation_offline"]
    finally:
        revocation.SHUTDOWN.set()
        clients.shutdown(wait=True, cancel_futures=True)
        for twin in (slow, fast):
            loop.run(twin.stop())


def _finished(future) -> bool:
    """True when the handshake completed within the failure bound."""
    try:
        future.result(timeout=FAILURE_BOUND_S)
    except Exception:  # noqa: BLE001 - the assertion names what did not happen
        return False
    return True


def test_one_twins_waiting_commands_never_delay_another_twins_command(world: dict, monkeypatch) -> None:
    lab_dir, stores, loop = world["lab_dir"], world["stores"], world["loop"]
    busy = make_twin(lab_dir, "slow.lab.test", stores, world["listener"], None)
    idle = make_twin(lab_dir, "fast.lab.test", stores, world["listener"], None)
    release = threading.Event()
    real_run = executor.run

    def run(state, invocation, stdin, codepage=65001):
        if state is busy.state:
            release.wait(FAILURE_BOUND_S * 4)  # a command waiting on the network, as long as the test wants
            return executor.Outcome("", "", 0)
        return real_run(state, invocation, stdin, codepage)

    monkeypatch.setattr(executor, "run", run)
    # A host script that waits on the network (BLOCKING), as host_audit does on a host without a working proxy.
    script = "# crlfix-script: tls_probe\n# crlfix-schema: 1\n"
    line = "powershell -NoProfile -EncodedCommand " + base64.b64encode(script.encode("utf-16-le")).decode()

    async def start(twin: Twin, count: int) -> list[winrs.Command]:
        shell = winrs.Shell("S", 65001, "ansible", "127.0.0.1")
        commands = [winrs.Command(str(index), executor.parse(line, [])) for index in range(count)]
        for command in commands:
            twin.service._execute(shell, command)
        return commands

    async def finished(command: winrs.Command) -> bool:
        try:
            await asyncio.wait_for(command.changed.wait(), FAILURE_BOUND_S)
        except TimeoutError:
            return False
        return command.done

    try:
        waiting = loop.run(start(busy, SLOW_COMMANDS))
        answered = loop.run(start(idle, 1))[0]
        # The idle host's command is its own: done while every command of the busy host still waits.
        assert loop.run(finished(answered), FAILURE_BOUND_S + 10), "the idle twin's command waited for the busy twin's"
        assert not any(command.done for command in waiting)
    finally:
        release.set()
