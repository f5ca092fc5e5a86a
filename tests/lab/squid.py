"""The lab's forward proxy: Debian's real squid with a minimal config of our own under ``<lab_dir>/squid/``.

squid listens on ``127.0.0.1:3128`` by default, accepts clients from 127.0.0.0/8 only, caches nothing (so every
CRL fetch reaches the CRL server and shows in both access logs) and resolves the lab's ``.test`` names from its
own hosts file; ``dns_nameservers 127.0.0.1`` with a short ``dns_timeout`` keeps it offline-safe.

The same squid also listens, on the same port, on two more loopback addresses whose policy filters by
``User-Agent`` (squid's ``browser`` ACL, a regular expression on the request's agent, refused with 403
``ERR_ACCESS_DENIED``), as real proxies are set up: ``127.0.0.2`` lets only CryptoAPI's own agent
(``Microsoft-CryptoAPI/<version>``) through, the proxy that "often allows exactly that agent" (windows-facts.md,
jpsanders); ``127.0.0.3`` lets only browsers' ``Mozilla/`` agents through, so it refuses CryptoAPI's retrieval.
A site's proxy is one of these listeners (``AGENT_FILTERS``; tests/lab/fleet/scenarios.py ``ua_restricted``); one
process keeps them together, so stopping and starting squid by its PID never loses a site's proxy. It runs in the
foreground (``squid -N``) as a child we started; its PID is kept in ``<lab_dir>/squid/lab-squid.pid`` and only
that PID is ever signalled. When started as root squid drops to ``cache_effective_user proxy``, so the squid
folder is handed to that user and every parent folder must be traversable by others.

There is no fallback: without ``/usr/sbin/squid`` every entry point raises ``SquidMissing`` with the install hint.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.lab.crl_server import DEFAULT_ADDRESSES

SQUID_BIN = Path("/usr/sbin/squid")
DEFAULT_PORT = 3128
DEFAULT_ADDRESS = "127.0.0.1"
EFFECTIVE_USER = "proxy"  # Debian's squid package runs as this user
INSTALL_HINT = (
    "squid is not installed (/usr/sbin/squid missing): run `make setup`, which runs "
    "`bash tests/lab/install-squid.sh` (as root: apt-get install squid, packaged service kept stopped)"
)


# (address, ACL name, the User-Agent regular expression it lets through): every other agent gets 403 there.
AGENT_FILTERS = (
    ("127.0.0.2", "cryptoapi_only", r"^Microsoft-CryptoAPI/"),
    ("127.0.0.3", "browsers_only", r"^Mozilla/"),
)
CRYPTOAPI_ONLY_ADDRESS, BROWSERS_ONLY_ADDRESS = (address for address, _name, _agents in AGENT_FILTERS)


class SquidMissing(RuntimeError):
    """Debian's squid is not installed; the message says how to install it."""


class SquidError(RuntimeError):
    """squid did not start or stop as asked; the message names the log to read."""


def require_squid() -> Path:
    if not SQUID_BIN.is_file() or not os.access(SQUID_BIN, os.X_OK):
        raise SquidMissing(INSTALL_HINT)
    return SQUID_BIN


def _port_open(address: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _answers_http(address: str, port: int) -> bool:
    """True when something on address:port answers an HTTP request (squid's error page counts)."""
    try:
        with socket.create_connection((address, port), timeout=1.0) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


class Squid:
    """One squid instance for one lab directory."""

    def __init__(
        self,
        lab_dir: Path,
        *,
        port: int = DEFAULT_PORT,
        address: str = DEFAULT_ADDRESS,
        hosts: dict[str, str] | None = None,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port: expected 1-65535, got {port!r}")
        self.dir = Path(lab_dir).resolve() / "squid"
        self.port, self.address = port, address
        self.hosts = dict(hosts or DEFAULT_ADDRESSES)
        self.config_path = self.dir / "squid.conf"
        self.hosts_path = self.dir / "hosts"
        self.access_log = self.dir / "access.log"
        self.cache_log = self.dir / "cache.log"
        self.pid_path = self.dir / "lab-squid.pid"

    @property
    def proxy(self) -> str:
        """The proxy as ``netsh winhttp set proxy`` takes it."""
        return f"{self.address}:{self.port}"

    def filtered_proxy(self, address: str) -> str:
        """The listener at ``address`` (one of ``AGENT_FILTERS``) as ``netsh winhttp set proxy`` takes it."""
        return filtered_proxy(self.proxy, address)

    @property
    def listeners(self) -> list[tuple[str, int]]:
        """Every address and port this squid listens on: its own, then the agent-filtering ones."""
        return [(self.address, self.port)] + [(address, self.port) for address, _n, _a in AGENT_FILTERS]

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hosts_path.write_text("".join(f"{addr} {name}\n" for name, addr in sorted(self.hosts.items())))
        as_root = os.geteuid() == 0
        lines = [
            "# written by tests/lab/squid.py; regenerated at every start",
            f"http_port {self.address}:{self.port}",
            *(f"http_port {address}:{self.port}" for address, _name, _agents in AGENT_FILTERS),
            "acl lab_clients src 127.0.0.0/8",
            # Each filtering listener refuses (403) every request whose User-Agent its browser ACL does not match.
            *(line for address, name, agents in AGENT_FILTERS
              for line in (f"acl via_{name} localip {address}", f"acl agent_{name} browser {agents}",
                           f"http_access deny via_{name} !agent_{name}")),
            "http_access allow lab_clients",
            "http_access deny all",
            f"hosts_file {self.hosts_path}",
            # Offline: nothing answers on 127.0.0.1:53, so names outside the hosts file fail after 2 s.
            "dns_nameservers 127.0.0.1",
            "dns_timeout 2 seconds",
            "connect_timeout 10 seconds",
            "cache deny all",
            "cache_mem 8 MB",
            f"access_log stdio:{self.access_log} squid",
            f"cache_log {self.cache_log}",
            "cache_store_log none",
            f"pid_filename {self.dir / 'squid.pid'}",
            f"coredump_dir {self.dir}",
            "netdb_filename none",
            "pinger_enable off",
            "logfile_rotate 0",
            "shutdown_lifetime 0 seconds",
            "visible_hostname lab-proxy.test",
        ]
        if as_root:
            lines.append(f"cache_effective_user {EFFECTIVE_USER}")
        self.config_path.write_text("\n".join(lines) + "\n")
        if as_root:
            self._hand_dir_to_effective_user()

    def _hand_dir_to_effective_user(self) -> None:
        # squid opens its logs after dropping to the effective user: it needs the folder and a path to it.
        user = pwd.getpwnam(EFFECTIVE_USER)
        for parent in self.dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise SquidError(
                    f"lab_dir: {parent} is not traversable by user {EFFECTIVE_USER!r} "
                    f"(mode {oct(parent.stat().st_mode & 0o777)}); squid could not write its logs"
                )
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        for path in self.dir.iterdir():
            if path.suffix == ".log":
                os.chown(path, user.pw_uid, user.pw_gid)

    def pid(self) -> int | None:
        """The PID we started, if that process still runs."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None  # our child, and it has exited
        except ChildProcessError:
            pass  # started by another process (lab-up); fall through to the signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, timeout: float = 20.0) -> int:
        """Start squid and wait until it answers HTTP; returns its PID. Refuses a port someone else holds."""
        binary = require_squid()
        if self.pid() is not None:
            raise SquidError(f"squid already running for {self.dir} (pid {self.pid()}); stop it first")
        for address, port in self.listeners:
            if _port_open(address, port):
                raise SquidError(
                    f"port {address}:{port} is already in use by another process; "
                    "is the distribution's squid service running? (tests/lab/install-squid.sh stops it)"
                )
        self.write_config()
        check = subprocess.run(
            [str(binary), "-k", "parse", "-f", str(self.config_path)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise SquidError(f"squid rejected {self.config_path}: {check.stderr.strip()[-800:]}")
        stderr = (self.dir / "squid.stderr").open("ab")
        proc = subprocess.Popen(
            [str(binary), "-N", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
        self.pid_path.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise SquidError(
                    f"squid exited with {proc.returncode} while starting; see {self.cache_log} "
                    f"and {self.dir / 'squid.stderr'}"
                )
            if all(_answers_http(address, port) for address, port in self.listeners):
                return proc.pid
            time.sleep(0.1)
        self.stop()
        raise SquidError(f"squid did not answer on {self.proxy} within {timeout} s; see {self.cache_log}")

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM exactly our PID, wait for it to exit (SIGKILL after ``timeout``); True when one was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
                self.pid()  # reap
                break
            time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)
        return True

    def access_log_lines(self) -> list[str]:
        try:
            return self.access_log.read_text().splitlines()
        except FileNotFoundError:
            return []


def filtered_proxy(proxy: str, address: str) -> str:
    """The agent-filtering listener at ``address`` of the squid whose own proxy is ``proxy`` (same port)."""
    if address not in {a for a, _n, _g in AGENT_FILTERS}:
        raise ValueError(f"address: expected one of {[a for a, _n, _g in AGENT_FILTERS]}, got {address!r}")
    return f"{address}:{proxy.rsplit(':', 1)[1]}"


def start_squid(lab_dir: Path, *, port: int = DEFAULT_PORT, hosts: dict[str, str] | None = None) -> Squid:
    squid = Squid(lab_dir, port=port, hosts=hosts)
    squid.start()
    return squid


def stop_squid(lab_dir: Path, *, port: int = DEFAULT_PORT) -> bool:
    return Squid(lab_dir, port=port).stop()
