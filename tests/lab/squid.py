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
process keeps them together, so stopping and starting squid by its PID never loses a site's proxy.

Two more listeners of the same process stand for proxies the cause catalogue names (``POLICY_FILTERS``):
``127.0.0.4`` asks every request for Basic proxy authentication (squid's ``proxy_auth`` ACL with ``basic_ncsa_auth``
over an empty password file: 407 with ``Proxy-Authenticate: Basic``, and no credential ever passes). WinHTTP logs on
with the caller's credentials by itself only for NTLM and Negotiate (Microsoft Learn, IWinHttpRequest::
SetAutoLogonPolicy, WinHttpRequestAutoLogonPolicy), and only within the bypass list by default, so neither CryptoAPI nor
the audit's fetch answers the challenge. ``127.0.0.5`` refuses (403) the root certificate list's host
``ctldl.windowsupdate.com`` and passes everything else: a proxy that blocks Windows Update's hosts.

A second squid process (``no_dns_squid``: ``127.0.0.6``, same port) stands for a proxy that cannot resolve the CRL
host: its hosts file is empty and its name server (tests/lab/nxdomain_dns.py) answers NXDOMAIN for every name, so every
request ends in squid's own error page at once while the lab's own squid reaches the same URL. squid's documentation
names ``ERR_DNS_FAIL`` (503) for it; squid 5.7 (Debian 12's, the lab's) answers ``502`` with ``X-Squid-Error:
ERR_READ_ERROR 0`` ("path selection found no paths", measured with debug_options 17,3 44,3): the lab shows what squid
does. It is its own process because squid's name resolution (``hosts_file``, ``dns_nameservers``) is
per process, not per listener. It runs in the
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
from tests.lab.pki import CTL_HOST

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
AUTH_REQUIRED_ADDRESS = "127.0.0.4"
CTL_BLOCKED_ADDRESS = "127.0.0.5"
# (address, what the listener refuses): the proxies of the cause catalogue beside the agent filters.
POLICY_FILTERS = ((AUTH_REQUIRED_ADDRESS, "every request without Basic proxy credentials (407)"),
                  (CTL_BLOCKED_ADDRESS, f"the root certificate list's host {CTL_HOST} (403)"))
FILTER_ADDRESSES = tuple(address for address, _n, _a in AGENT_FILTERS) + tuple(a for a, _w in POLICY_FILTERS)
NO_DNS_NAME = "squid-nodns"
NO_DNS_ADDRESS = "127.0.0.6"
BASIC_AUTH_HELPER = Path("/usr/lib/squid/basic_ncsa_auth")  # Debian's squid package ships it


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
        name: str = "squid",
        nameserver: str = "127.0.0.1",
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port: expected 1-65535, got {port!r}")
        if name not in ("squid", NO_DNS_NAME):
            raise ValueError(f"name: expected 'squid' or {NO_DNS_NAME!r}, got {name!r}")
        self.dir = Path(lab_dir).resolve() / name
        self.port, self.address = port, address
        # The proxy whose resolver fails knows no name at all; the lab's own squid resolves the lab's names.
        self.resolves = name == "squid"
        self.hosts = dict(hosts or DEFAULT_ADDRESSES) if self.resolves else {}
        self.nameserver = nameserver
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
        """Every address and port this squid listens on: its own, then the filtering ones (the lab's own squid)."""
        return [(self.address, self.port)] + [(address, self.port) for address in self.filters]

    @property
    def filters(self) -> tuple[str, ...]:
        return FILTER_ADDRESSES if self.resolves else ()

    def _policy_lines(self) -> list[str]:
        """The filtering listeners' rules (module docstring): agents, Basic authentication, the CTL host."""
        if not self.resolves:
            return []
        if not BASIC_AUTH_HELPER.is_file():
            raise SquidError(f"squid's Basic authentication helper {BASIC_AUTH_HELPER} is missing (Debian's squid "
                             "package ships it): the lab's 407 listener needs it")
        passwords = self.dir / "no-users.passwd"
        passwords.write_text("")  # no account: every request is asked for credentials nobody has
        return [
            # Each filtering listener refuses (403) every request whose User-Agent its browser ACL does not match.
            *(line for address, name, agents in AGENT_FILTERS
              for line in (f"acl via_{name} localip {address}", f"acl agent_{name} browser {agents}",
                           f"http_access deny via_{name} !agent_{name}")),
            f"auth_param basic program {BASIC_AUTH_HELPER} {passwords}",
            "auth_param basic children 1 startup=0 idle=1",
            "auth_param basic realm lab-proxy",
            f"acl via_auth_required localip {AUTH_REQUIRED_ADDRESS}",
            "acl authenticated proxy_auth REQUIRED",
            # A proxy_auth ACL last on a deny line makes squid answer 407 with its challenge.
            "http_access deny via_auth_required !authenticated",
            f"acl via_ctl_blocked localip {CTL_BLOCKED_ADDRESS}",
            f"acl ctl_host dstdomain {CTL_HOST}",
            "http_access deny via_ctl_blocked ctl_host",
        ]

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hosts_path.write_text("".join(f"{addr} {name}\n" for name, addr in sorted(self.hosts.items())))
        as_root = os.geteuid() == 0
        lines = [
            "# written by tests/lab/squid.py; regenerated at every start",
            f"http_port {self.address}:{self.port}",
            *(f"http_port {address}:{self.port}" for address in self.filters),
            "acl lab_clients src 127.0.0.0/8",
            *self._policy_lines(),
            "http_access allow lab_clients",
            "http_access deny all",
            f"hosts_file {self.hosts_path}",
            # Offline: nothing answers on 127.0.0.1:53, so names outside the hosts file fail after squid's DNS timeout;
            # the proxy without DNS asks the lab's NXDOMAIN server (tests/lab/nxdomain_dns.py) and fails at once.
            f"dns_nameservers {self.nameserver}",
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
    """The filtering listener at ``address`` of the squid whose own proxy is ``proxy`` (same port), or the proxy
    whose resolver fails (``NO_DNS_ADDRESS``, the second process on the same port)."""
    if address not in (*FILTER_ADDRESSES, NO_DNS_ADDRESS):
        raise ValueError(f"address: expected one of {[*FILTER_ADDRESSES, NO_DNS_ADDRESS]}, got {address!r}")
    return f"{address}:{proxy.rsplit(':', 1)[1]}"


def no_dns_squid(lab_dir: Path, *, port: int, nameserver: str = "127.0.0.1") -> Squid:
    """The lab's proxy whose own resolver fails (module docstring): ``127.0.0.6`` on the lab squid's port, asking
    ``nameserver`` (the CRL server's NXDOMAIN DNS server, ``crl_server.resolver_address``)."""
    return Squid(lab_dir, port=port, address=NO_DNS_ADDRESS, name=NO_DNS_NAME, nameserver=nameserver)


def start_squid(lab_dir: Path, *, port: int = DEFAULT_PORT, hosts: dict[str, str] | None = None) -> Squid:
    squid = Squid(lab_dir, port=port, hosts=hosts)
    squid.start()
    return squid


def stop_squid(lab_dir: Path, *, port: int = DEFAULT_PORT) -> bool:
    return Squid(lab_dir, port=port).stop()
