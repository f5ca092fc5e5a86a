"""The public CA's web server: publishes ``<lab_dir>/pki/www/<name>/`` over real HTTP on loopback.

Each public name (``crl.public-ca.test``, ``aia.public-ca.test``, ``ocsp.public-ca.test``) has its own loopback
address in 127.0.9.0/24 (the twins use 127.0.1.x-127.0.3.x); the default port is 80 (the URLs in the
certificates carry no port). A request is served from ``www/<Host header>/`` or, when no such folder exists,
from the folder of the name bound to the address it arrived on.

Several names may share an address (``ctldl.windowsupdate.com``, the root certificate list's host, shares the CRL
host's): each address is bound once, and the Host header picks the folder.

The CDP and AIA site is an IIS with its default request filtering (lab's choice of server): a path with a ``+`` is
refused with IIS's 404.11, "The request filtering module is configured to deny a request that contains a double escape
sequence", unless ``allowDoubleEscaping`` is set (IIS blog "IIS7 rejecting URLs containing +"; TechNet dd379478: a
delta CRL's default name carries a ``+``). ``ocsp.public-ca.test`` is the CA's OCSP responder
(``tests/lab/ocsp_responder.py``), GET and POST.

Fault modes, for tests, live in ``<lab_dir>/crl-server/faults.json`` and are read on every request, so they can
be changed at runtime for an in-process server and for a background one alike (``set_fault``/``clear_faults``).

The same process runs the DNS server that knows no name (``tests/lab/nxdomain_dns.py``, UDP 53 on the CRL host's
address): the resolver of the lab's proxy that cannot reach the CRL host.

Run in the background: ``python -m tests.lab.crl_server --lab-dir build/lab`` (``start_background``).
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.lab import ocsp_responder
from tests.lab.nxdomain_dns import NxdomainResolver
from tests.lab.pki import AIA_HOST, CRL_HOST, CTL_HOST, OCSP_HOST

DEFAULT_ADDRESSES: dict[str, str] = {CRL_HOST: "127.0.9.80", AIA_HOST: "127.0.9.81", OCSP_HOST: "127.0.9.82",
                                     CTL_HOST: "127.0.9.80"}
DEFAULT_PORT = 80
FAULT_MODES = ("404", "garbage", "hang")
MAX_HANG_SECONDS = 120.0
CONTENT_TYPES = {".crl": "application/pkix-crl", ".crt": "application/pkix-cert", ".cer": "application/pkix-cert",
                 ".cab": "application/vnd.ms-cab-compressed"}
IIS_SITES = (CRL_HOST, AIA_HOST)  # the names IIS's request filtering guards (module docstring)
IIS_DOUBLE_ESCAPE = (b"HTTP Error 404.11 - Not Found\r\nThe request filtering module is configured to deny a request "
                     b"that contains a double escape sequence.\r\n")
MAX_OCSP_REQUEST = 65536
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _server_dir(lab_dir: Path) -> Path:
    d = Path(lab_dir) / "crl-server"
    d.mkdir(parents=True, exist_ok=True)
    return d


def set_fault(lab_dir: Path, mode: str, path: str = "*", hang_seconds: float = 30.0) -> None:
    """Make requests for ``path`` (URL path like ``/issuing-ca.crl``, ``host/path``, or ``*`` for all) fail.

    ``404``: answer 404; ``garbage``: 200 with bytes that are no CRL; ``hang``: accept, say nothing for
    ``hang_seconds`` (at most 120; the server's stop ends it earlier), then close without a response.
    """
    if mode not in FAULT_MODES:
        raise ValueError(f"mode: expected one of {', '.join(FAULT_MODES)}, got {mode!r}")
    if not 0 < hang_seconds <= MAX_HANG_SECONDS:
        raise ValueError(f"hang_seconds: expected 0 < value <= {MAX_HANG_SECONDS}, got {hang_seconds!r}")
    faults = read_faults(lab_dir)
    faults[path] = {"mode": mode, "hang_seconds": hang_seconds}
    _write_faults(lab_dir, faults)


def clear_faults(lab_dir: Path) -> None:
    _write_faults(lab_dir, {})


def read_faults(lab_dir: Path) -> dict[str, dict]:
    try:
        return json.loads((_server_dir(lab_dir) / "faults.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_faults(lab_dir: Path, faults: dict) -> None:
    path = _server_dir(lab_dir) / "faults.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(faults))
    tmp.replace(path)


class _Handler(BaseHTTPRequestHandler):
    server_version = "LabPublicCA/1.0"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid a 40 ms delayed-ACK stall
    lab: CrlServer  # set on the per-server subclass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # our own access log, below

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_POST(self) -> None:
        host = self._host()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_OCSP_REQUEST)) if length > 0 else b""
        path = unquote(urlsplit(self.path).path)
        if host != OCSP_HOST:
            return self._reply(405, b"method not allowed\n", "text/plain", False, host, path, "-")
        answer = ocsp_responder.respond(self.lab.lab_dir, body or None)
        self._reply(200, answer, ocsp_responder.CONTENT_TYPE, False, host, path, "ocsp")

    def _host(self) -> str:
        """The name asked for (Host header) when the server publishes it, else the name bound to the address."""
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if not host or not (self.lab.www_dir / host).is_dir():
            host = self.lab.name_for_address(self.server.server_address[0])
        return host

    def _serve(self, head: bool) -> None:
        lab = self.lab
        host = self._host()
        raw_path = urlsplit(self.path).path
        path = unquote(raw_path)
        faults = read_faults(lab.lab_dir)
        fault = faults.get(f"{host}{path}") or faults.get(path) or faults.get("*")
        if fault and fault["mode"] == "hang":
            lab.log(self, host, path, "-", 0, "hang")
            lab.stopping.wait(min(float(fault["hang_seconds"]), MAX_HANG_SECONDS))
            self.close_connection = True
            return
        if fault and fault["mode"] == "404":
            return self._reply(404, b"not found (fault injected)\n", "text/plain", head, host, path, "404")
        if fault and fault["mode"] == "garbage":
            body = b"this is not a CRL \x00\xff" * 16
            ctype = CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")
            return self._reply(200, body, ctype, head, host, path, "garbage")
        if host == OCSP_HOST:
            try:
                request = ocsp_responder.request_from_path(raw_path)
            except ValueError:
                request = None
            answer = ocsp_responder.respond(lab.lab_dir, request)
            return self._reply(200, answer, ocsp_responder.CONTENT_TYPE, head, host, path, "ocsp")
        if host in IIS_SITES and "+" in path:
            return self._reply(404, IIS_DOUBLE_ESCAPE, "text/plain", head, host, path, "iis-404.11")
        file = (lab.www_dir / host / path.lstrip("/")).resolve()
        if lab.www_dir.resolve() not in file.parents or not file.is_file():
            return self._reply(404, b"not found\n", "text/plain", head, host, path, "-")
        body = file.read_bytes()
        ctype = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        self._reply(200, body, ctype, head, host, path, "-", file.stat().st_mtime)

    def _reply(self, status, body, ctype, head, host, path, fault, mtime=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if mtime is not None:
            self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.end_headers()
        # Logged before the body goes out: a client that has read the answer finds its line in the log.
        self.lab.log(self, host, path, str(status), 0 if head else len(body), fault)
        if not head:
            self.wfile.write(body)


class CrlServer:
    """One threaded HTTP server per public name, all serving ``<lab_dir>/pki/www``."""

    def __init__(self, lab_dir: Path, addresses: dict[str, str] | None = None, port: int = DEFAULT_PORT) -> None:
        self.lab_dir = Path(lab_dir)
        self.www_dir = self.lab_dir / "pki" / "www"
        self.addresses = dict(addresses or DEFAULT_ADDRESSES)
        self.port = port
        self.access_log = _server_dir(self.lab_dir) / "access.log"
        self.stopping = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []
        self._resolver: NxdomainResolver | None = None
        self._log_lock = threading.Lock()

    @property
    def resolver_address(self) -> str:
        """Where the DNS server that knows no name answers (UDP 53): the CRL host's address."""
        return resolver_address(self.addresses)

    def name_for_address(self, address: str) -> str:
        return next((n for n, a in self.addresses.items() if a == address), CRL_HOST)

    def log(self, handler: BaseHTTPRequestHandler, host: str, path: str, status: str, size: int, fault: str) -> None:
        line = (
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {handler.client_address[0]} "
            f"{handler.command} http://{host}{path} {status} {size} fault={fault}\n"
        )
        with self._log_lock, self.access_log.open("a") as f:
            f.write(line)

    def start(self) -> CrlServer:
        handler = type("Handler", (_Handler,), {"lab": self})
        self.stopping.clear()
        try:
            for address in dict.fromkeys(self.addresses.values()):  # names sharing an address: bound once
                server = ThreadingHTTPServer((address, self.port), handler, bind_and_activate=False)
                server.daemon_threads = True
                server.allow_reuse_address = True
                server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                server.server_bind()
                server.server_activate()
                self._servers.append(server)
                threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
            self._start_resolver()
        except OSError as exc:
            self.stop()
            raise RuntimeError(f"crl_server: cannot listen on {address}:{self.port}: {exc}") from exc
        return self

    def _start_resolver(self) -> None:
        """The NXDOMAIN server; when another CRL server of this address already runs one (a second server on another
        port), that one answers the same: this server goes without."""
        try:
            self._resolver = NxdomainResolver(self.resolver_address).start()
        except OSError:
            self._resolver = None

    def stop(self) -> None:
        self.stopping.set()  # releases hanging requests
        if self._resolver is not None:
            self._resolver.stop()
            self._resolver = None
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> CrlServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def resolver_address(addresses: dict[str, str]) -> str:
    """The address of the NXDOMAIN DNS server (tests/lab/nxdomain_dns.py) a CRL server with ``addresses`` runs."""
    return addresses.get(CRL_HOST) or next(iter(addresses.values()))


def pid_file(lab_dir: Path) -> Path:
    return Path(lab_dir) / "crl-server" / "crl-server.pid"  # no mkdir: stopping must not create the folder


def _wait_listening(address: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start_background(lab_dir: Path, addresses: dict[str, str] | None = None, port: int = DEFAULT_PORT) -> int:
    """Start the server as its own process (PID file ``<lab_dir>/crl-server/crl-server.pid``); returns the PID."""
    addresses = dict(addresses or DEFAULT_ADDRESSES)
    stop_background(lab_dir)
    args = [
        sys.executable,
        "-m",
        "tests.lab.crl_server",
        "--lab-dir",
        str(Path(lab_dir).resolve()),
        "--port",
        str(port),
    ] + [f"--bind={n}={a}" for n, a in addresses.items()]
    log = (_server_dir(lab_dir) / "server.log").open("ab")
    proc = subprocess.Popen(
        args, cwd=_REPO_ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
    )
    pid_file(lab_dir).write_text(f"{proc.pid}\n")
    if not all(_wait_listening(a, port, 10.0) for a in addresses.values()):
        stop_background(lab_dir)
        raise RuntimeError(f"crl_server: did not start listening; see {_server_dir(lab_dir) / 'server.log'}")
    return proc.pid


def stop_background(lab_dir: Path, timeout: float = 10.0) -> bool:
    """Stop exactly the process named by the PID file; True when one was stopped."""
    path = pid_file(lab_dir)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    stopped = False
    try:
        os.kill(pid, signal.SIGTERM)
        stopped = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child: reap it
                    break
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    path.unlink(missing_ok=True)
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--bind", action="append", default=[], help="NAME=ADDRESS (repeatable)")
    opts = parser.parse_args(argv)
    addresses = dict(b.split("=", 1) for b in opts.bind) or DEFAULT_ADDRESSES
    server = CrlServer(opts.lab_dir, addresses, opts.port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
