"""The lab server: ONE asyncio process hosting every twin of the fleet, plus a JSON control channel.

Started by ``process.start_server`` as ``python -m tests.lab.fleet.server --lab-dir build/lab``; reads
``<lab-dir>/fleet.json`` (written by ``build.py``), starts every twin's listeners, then writes
``<lab-dir>/lab.json`` (pid, control port). When a twin cannot listen it logs ``start failed: <why>``
(naming the address) and exits 2. Control channel (HTTP/1.1 + JSON on 127.0.0.1:<control_port>):

    GET  /ready                  {"ready": true, "hosts": N, "listening": n}
    GET  /metrics                per-host counters; also written to <lab-dir>/metrics.json
    POST /twins/<name>/stop      close the host's listeners and connections (host dies; its shells are lost)
    POST /twins/<name>/start     reload the state file and listen again (host restarted)
    POST /twins/<name>/reload    reload the state file (after a test edited it)
    POST /twins/<name>/seed      {"scenario": NAME | [NAME, ...] | "A,B"}: put the host in the scenario(s)
                                 (tests/lab/fleet/catalogue.py), then reload the twin, or restart it when its OS (host
                                 class) changed
    GET  /scenarios              every scenario by name: {"scenarios": [{name, kind, description}]}
    POST /shutdown               write metrics.json and exit

Test-only fault hooks (not Windows behaviour; tests/lab/README.md "Fault hooks"):

    POST /twins/<name>/fault     {"after_script": "<host script>", "action": "stop" | "stop_squid"}: one shot
    POST /faults/clear           forget every armed fault

Every twin also listens for TLS on ``<address>:<tls_port>`` (fleet.json ``revocation.tls_port``, 5061) with its
lab-PKI leaf; ``tests.twin.revocation`` holds the world its host scripts retrieve CRLs in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab.fleet import catalogue
from tests.lab.fleet.process import START_FAILED
from tests.lab.winhttp import DEFAULT_INTRANET, OutboundPolicy
from tests.twin import revocation
from tests.twin.host import HostSpec, Twin
from tests.twin.state import HostState, write_json_atomic

log = logging.getLogger("crlfix.lab.server")
FAULT_ACTIONS = ("stop", "stop_squid")


def raise_nofile_limit() -> int:
    """1000 listeners + connections need more than the usual 1024 descriptors: go to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def world_of(fleet: dict[str, Any]) -> revocation.World:
    """``fleet.json``'s ``revocation`` section plus the twins' own FQDNs -> addresses."""
    section = fleet.get("revocation") or {}
    names = {h["name"].lower(): h["address"] for h in fleet.get("hosts", [])}
    names.update({k.lower(): v for k, v in (section.get("names") or {}).items()})
    intranet = tuple(ipaddress.ip_network(n) for n in section.get("intranet", [])) or DEFAULT_INTRANET
    lab_dir = Path(section["lab_dir"]) if section.get("lab_dir") else None
    return revocation.World(lab_dir, names, OutboundPolicy(intranet), section.get("tls_port"))


class Lab:
    """Every twin of one lab directory, and what the control channel does to them."""

    def __init__(self, lab_dir: Path) -> None:
        self.lab_dir = lab_dir
        fleet = json.loads((lab_dir / "fleet.json").read_text())
        # pyspnego's NTLM acceptor reads users from this file; set before any context is created.
        os.environ["NTLM_USER_FILE"] = str(fleet["ntlm_user_file"])
        self.twins: dict[str, Twin] = {}
        world = world_of(fleet)
        revocation.configure(world)
        for host in fleet["hosts"]:
            tls_cert = world.lab_dir / "pki" / "hosts" / f"{host['name']}.crt" if world.lab_dir else None
            spec = HostSpec(
                host["name"],
                host["address"],
                int(host["http_port"]),
                int(host["https_port"]),
                Path(host["state"]),
                Path(host["cert"]),
                Path(host["key"]),
                world.tls_port,
                tls_cert,
                tls_cert.with_suffix(".key") if tls_cert else None,
            )
            self.twins[spec.name] = Twin(spec, HostState.load(spec.state_path))
        self.stopping = asyncio.Event()
        squid = fleet.get("revocation", {}).get("squid") or {}
        self.squid_endpoint: tuple[str, int] | None = (
            (str(squid["address"]), int(squid["port"])) if squid.get("port") else None
        )
        self.faults: dict[str, dict[str, str]] = {}
        self.hosts = {h["name"]: h for h in fleet["hosts"]}  # group, site, os_build: what seeding a scenario needs
        self.site_proxies: dict[str, str] = dict(fleet.get("site_proxies") or {})

    async def start_all(self) -> None:
        """Start every twin; raises the first failure (``OSError`` naming the address) once its batch settled."""
        # Start in batches: bounded concurrency keeps the event loop responsive at 500 hosts.
        names = list(self.twins)
        for i in range(0, len(names), 50):
            batch = names[i : i + 50]
            results = await asyncio.gather(*(self.twins[n].start() for n in batch), return_exceptions=True)
            failures = [result for result in results if isinstance(result, BaseException)]
            if failures:
                raise failures[0]

    async def stop_all(self) -> None:
        for twin in self.twins.values():
            with contextlib.suppress(Exception):
                await twin.stop()

    def metrics(self) -> dict[str, Any]:
        hosts = {name: {**twin.counters, "listening": twin.listening} for name, twin in self.twins.items()}
        totals: dict[str, int] = {}
        for counters in hosts.values():
            for key, value in counters.items():
                if key != "listening":
                    totals[key] = totals.get(key, 0) + int(value)
        doc = {
            "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pid": os.getpid(),
            "hosts": hosts,
            "totals": totals,
        }
        write_json_atomic(self.lab_dir / "metrics.json", doc)
        return doc

    async def control(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["faults", "clear"]:
            cleared = sorted(self.faults)
            for name in cleared:
                self.twins[name].service.after_script = None
            self.faults.clear()
            return 200, {"cleared": cleared}
        if method == "POST" and len(parts) == 3 and parts[0] == "twins" and parts[2] == "fault":
            return self.arm_fault(parts[1], body)
        if method == "GET" and parts == ["ready"]:
            listening = sum(1 for t in self.twins.values() if t.listening)
            return 200, {"ready": listening == len(self.twins), "hosts": len(self.twins), "listening": listening}
        if method == "GET" and parts == ["metrics"]:
            return 200, self.metrics()
        if method == "POST" and parts == ["shutdown"]:
            self.stopping.set()
            return 200, {"stopping": True}
        if method == "GET" and parts == ["scenarios"]:
            return 200, {"scenarios": [vars(s) for s in catalogue.catalogue().values()]}
        if method == "POST" and len(parts) == 3 and parts[0] == "twins":
            twin = self.twins.get(parts[1])
            if twin is None:
                return 404, {"error": f"no twin named {parts[1]!r}; the hosts are: {', '.join(sorted(self.twins))}"}
            if parts[2] == "seed":
                return await self.seed(twin, body)
            if parts[2] == "stop":
                await twin.stop()
            elif parts[2] == "start":
                twin.reload()
                await twin.start()
            elif parts[2] == "reload":
                twin.reload()
            else:
                return 404, {"error": f"unknown twin action {parts[2]!r}"}
            return 200, {"name": twin.spec.name, "listening": twin.listening}
        return 404, {"error": f"unknown control request {method} {path}"}

    async def seed(self, twin: Twin, body: bytes) -> tuple[int, dict[str, Any]]:
        """Put ``twin``'s host in the scenario the body names; 400 lists the scenarios when the name is unknown."""
        try:
            names = catalogue.names_of(json.loads(body or b"{}").get("scenario"))
        except (ValueError, AttributeError, TypeError):
            names = [None]
        unknown = next((n for n in names if n not in catalogue.catalogue()), None) if None not in names else None
        if None in names or unknown is not None:
            return 400, {"error": catalogue.unknown_scenario(unknown)}
        name = ",".join(names)
        host = self.hosts[twin.spec.name]
        loop = asyncio.get_running_loop()

        def write() -> bool:  # in the twin's own threads: files are read and written there, never on the loop
            state = HostState.load(twin.spec.state_path).data
            seeded, restart = catalogue.seed(state, names, proxy=self.site_proxies[host["site"]], group=host["group"],
                                             os_build=int(host["os_build"]), lab_dir=revocation.world().lab_dir)
            write_json_atomic(twin.spec.state_path, seeded)
            return restart

        try:
            restart = await loop.run_in_executor(twin.commands, write)
        except ValueError as exc:  # a combination the catalogue refuses (two starting states)
            return 400, {"error": str(exc)}
        if restart:
            await twin.stop()
            twin.reload()
            await twin.start()
        else:
            twin.reload()
        return 200, {"name": twin.spec.name, "scenario": name, "restarted": restart, "listening": twin.listening}

    # -- test-only fault hooks (not Windows behaviour) ------------------------------------------------------
    def arm_fault(self, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Arm a one-shot fault on twin ``name`` from a JSON body; 400 names the bad field and value."""
        twin = self.twins.get(name)
        if twin is None:
            return 404, {"error": f"no twin named {name!r}"}
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            return 400, {"error": f"fault body is not JSON: {exc}"}
        script = doc.get("after_script") if isinstance(doc, dict) else None
        action = doc.get("action") if isinstance(doc, dict) else None
        if not isinstance(script, str) or not script:
            return 400, {"error": f"after_script: expected a host script name, got {script!r}"}
        if action not in FAULT_ACTIONS:
            return 400, {"error": f"action: expected one of {list(FAULT_ACTIONS)}, got {action!r}"}
        if action == "stop_squid" and self.squid_endpoint is None:
            return 400, {"error": "action: 'stop_squid' needs a lab with squid (fleet.json revocation.squid)"}
        self.faults[name] = {"after_script": script, "action": action}
        twin.service.after_script = lambda ran, deliver: self._fire(twin, ran, deliver)
        return 200, {"name": name, "fault": self.faults[name]}

    def _fire(self, twin: Twin, script: str, deliver: Callable[[], None]) -> bool:
        """The WinRS service's hook: True when the fault took over the command's output (see wsman.py)."""
        fault = self.faults.get(twin.spec.name)
        if fault is None or fault["after_script"] != script:
            return False
        del self.faults[twin.spec.name]  # one shot: a restarted host, or the rollback's apply, runs normally
        twin.service.after_script = None
        loop = asyncio.get_running_loop()
        log.info("fault: %s finished %s; action %s", twin.spec.name, script, fault["action"])
        if fault["action"] == "stop":
            # The write is on disk; the host dies before the Receive that would return the output.
            loop.create_task(twin.stop())
            return True
        # stop_squid: the output is delivered only once the proxy no longer answers, so whatever the
        # controller runs next (verification) finds it gone.
        future = loop.run_in_executor(None, self._stop_squid)
        future.add_done_callback(lambda _f: deliver())
        return True

    def _stop_squid(self) -> None:
        """SIGTERM the lab's squid (its PID file) and wait until its port refuses connections.

        The squid is the test process's child, so only that process can reap it (``Squid.stop``/``start``
        afterwards); here we wait on the port, not the PID, because a zombie still answers ``kill(pid, 0)``.
        """
        pid_path = self.lab_dir / "squid" / "lab-squid.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pid_path.read_text().strip()), signal.SIGTERM)
        if self.squid_endpoint is None:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(self.squid_endpoint, timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
        log.warning("fault: squid on %s:%d still answers after SIGTERM", *self.squid_endpoint)

    async def serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                key, _sep, value = line.decode("latin-1").partition(":")
                if key.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            body = await reader.readexactly(length) if length else b""
            status, doc = await self.control(request_line[0], request_line[1], body)
            answer = json.dumps(doc).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(answer)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()


def _quiet_exceptions(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # TLS handshakes that clients abandon (port probes, cert-validation failures) are normal noise.
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, OSError)) or "SSL" in str(context.get("message", "")):
        return
    loop.default_exception_handler(context)


async def main_async(lab_dir: Path) -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_exceptions)
    lab = Lab(lab_dir)
    try:
        await lab.start_all()
    except OSError as exc:
        # process.start_server shows this line to whoever started the lab: it names the address.
        log.error("%s%s", START_FAILED, exc.strerror or exc)
        await lab.stop_all()
        return 2
    control = await asyncio.start_server(lab.serve_control, "127.0.0.1", 0)
    port = control.sockets[0].getsockname()[1]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lab.stopping.set)
    write_json_atomic(
        lab_dir / "lab.json",
        {"pid": os.getpid(), "control_port": port, "hosts": len(lab.twins), "lab_dir": str(lab_dir)},
    )
    log.info("lab ready: %d twins, control port %d", len(lab.twins), port)
    await lab.stopping.wait()
    revocation.SHUTDOWN.set()  # ends modelled waits in script threads, so none outlives the process
    lab.metrics()
    control.close()
    await lab.stop_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    limit = raise_nofile_limit()
    log.info("RLIMIT_NOFILE %d", limit)
    return asyncio.run(main_async(args.lab_dir.resolve()))


if __name__ == "__main__":
    sys.exit(main())
