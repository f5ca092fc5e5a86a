"""WinRS, the cmd shell of WS-Management, as Windows implements it for one twin: shells, commands, streams.

Create opens a shell (``rsp:Shell`` in the response), Command starts a command line in it (``executor.py``
says what the line does), Send feeds stdin, Receive long-polls for output up to ``OperationTimeout`` and
splits it to fit the client's ``MaxEnvelopeSize``, Signal ``terminate`` releases a command and ``ctrl_c``
stops it, Delete closes the shell. Envelopes and faults come from ``wsman.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from tests.twin import executor
from tests.twin.state import HostState
from tests.twin.wsman import (
    ACTION_COMMAND,
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_RECEIVE,
    ACTION_SEND,
    ACTION_SIGNAL,
    CMD_URI,
    NS,
    SHELL,
    SIGNAL_CTRL_C,
    SIGNAL_TERMINATE,
    STATE_DONE,
    STATE_RUNNING,
    TIMED_OUT_TEXT,
    TRANSFER,
    Request,
    WSManFault,
    command_not_found,
    envelope,
    fault_envelope,
    parse_request,
    shell_not_found,
)


@dataclass
class Command:
    id: str
    invocation: executor.Invocation
    stdin: bytearray = field(default_factory=bytearray)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    done: bool = False
    exit_code: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Shell:
    id: str
    codepage: int
    owner: str
    client_ip: str
    created: float = field(default_factory=time.monotonic)
    commands: dict[str, Command] = field(default_factory=dict)


# Shells one user may hold on a host: WinRM's MaxShellsPerUser default (30 on WinRM 3.0 and later, Microsoft Learn,
# "Installation and configuration for Windows Remote Management"). A twin runs at most this many commands at once,
# in threads of its own: one twin's waiting never holds a thread another twin's command needs.
MAX_COMMANDS = 30


def command_pool(name: str) -> ThreadPoolExecutor:
    """The threads one twin runs its commands in (threads are made as commands come, up to ``MAX_COMMANDS``)."""
    return ThreadPoolExecutor(max_workers=MAX_COMMANDS, thread_name_prefix=f"{name} command")


def _run(state: HostState, invocation: executor.Invocation, stdin: bytes, codepage: int) -> executor.Outcome:
    """One command, in a thread of its twin's pool: what it does, then the state (counters included) on disk."""
    outcome = executor.run(state, invocation, stdin, codepage)
    state.save()  # every state change was already written through; this writes the command counter
    return outcome


def _outcome_of(future: asyncio.Future) -> executor.Outcome:
    try:
        return future.result()
    except Exception as exc:  # a bug in a script must still end the command, as a PowerShell error would
        return executor.Outcome("", f"twin: host script failed: {exc!r}\r\n", 1)


class WinRSService:
    """Shells and commands of one twin; ``handle`` maps a request envelope to a response envelope."""

    def __init__(self, state: HostState, address: str, counters: dict[str, int], pool: ThreadPoolExecutor) -> None:
        self.state = state
        self.pool = pool  # this twin's own command threads (command_pool)
        self.address = address
        self.counters = counters
        self.shells: dict[str, Shell] = {}
        # Test-only fault hook (the lab's POST /twins/<name>/fault; not Windows behaviour): called with the name
        # of a host script that ran to its end and a ``deliver`` callback; True means the hook took the output
        # over and calls ``deliver`` later, or never (the host died before the Receive that would return it).
        self.after_script: Callable[[str, Callable[[], None]], bool] | None = None

    def reset(self) -> None:
        """A host that dies loses its shells (WinRM service restart)."""
        for shell in self.shells.values():
            for cmd in shell.commands.values():
                cmd.changed.set()
        self.shells.clear()

    async def handle(self, xml: bytes, owner: str, client_ip: str, endpoint: str) -> tuple[int, bytes]:
        relates_to = ""
        try:
            req = parse_request(xml)
            relates_to = req.message_id
            if req.resource_uri.lower() != CMD_URI:
                raise WSManFault(
                    "s:Sender",
                    "w:DestinationUnreachable",
                    "The WS-Management service cannot process the request. The resource URI "
                    f"{req.resource_uri} is not supported by this host (twin: only the cmd shell is "
                    "modelled). ",
                    2150858770,
                    "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI",
                )
            body = await self._dispatch(req, owner, client_ip, endpoint)
            return 200, body
        except WSManFault as fault:
            return 500, fault_envelope(fault, relates_to, self.address)

    async def _dispatch(self, req: Request, owner: str, client_ip: str, endpoint: str) -> bytes:
        if req.action == ACTION_CREATE:
            return self._create(req, owner, client_ip, endpoint)
        shell = self.shells.get((req.shell_id or "").upper())
        if shell is None:
            raise shell_not_found(req.shell_id or "")
        if req.action == ACTION_DELETE:
            del self.shells[shell.id]
            for cmd in shell.commands.values():
                cmd.changed.set()
            return envelope(f"{TRANSFER}/DeleteResponse", req.message_id, "")
        if req.action == ACTION_COMMAND:
            return self._command(req, shell)
        if req.action == ACTION_SEND:
            return self._send(req, shell)
        if req.action == ACTION_RECEIVE:
            return await self._receive(req, shell)
        if req.action == ACTION_SIGNAL:
            return self._signal(req, shell)
        raise WSManFault(
            "s:Sender", "a:ActionNotSupported", f"The action {req.action} is not supported by the service.", 2150858771
        )

    def _create(self, req: Request, owner: str, client_ip: str, endpoint: str) -> bytes:
        codepage_text = req.options.get("WINRS_CODEPAGE", "437").strip() or "437"
        if not codepage_text.isdigit():
            raise WSManFault(
                "s:Sender",
                "w:InvalidOptions",
                f"The WinRS client specified an invalid code page: {codepage_text}. ",
                2150858843,
            )
        shell = Shell(str(uuid.uuid4()).upper(), int(codepage_text), owner, client_ip)
        self.shells[shell.id] = shell
        body = (
            f"<x:ResourceCreated><a:Address>{escape(endpoint)}</a:Address><a:ReferenceParameters>"
            f'<w:ResourceURI>{CMD_URI}</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">{shell.id}'
            f"</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            f'<rsp:Shell xmlns:rsp="{SHELL}"><rsp:ShellId>{shell.id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{CMD_URI}</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner>"
            f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
            f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            f"</rsp:Shell>"
        )
        return envelope(f"{TRANSFER}/CreateResponse", req.message_id, body)

    def _command(self, req: Request, shell: Shell) -> bytes:
        line = req.body.find("rsp:CommandLine", NS)
        if line is None:
            raise WSManFault(
                "s:Sender", "w:SchemaValidationError", "The Command request has no CommandLine.", 2150858817
            )
        command = (line.findtext("rsp:Command", default="", namespaces=NS) or "").strip()
        arguments = [(a.text or "") for a in line.findall("rsp:Arguments", NS)]
        # A client may choose the CommandId (MS-WSMV 3.1.4.11; pypsrp does); otherwise the service picks one.
        cmd_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        cmd = Command(cmd_id, executor.parse(command, arguments))
        shell.commands[cmd.id] = cmd
        self.counters["shell_commands"] += 1
        self.state.data["counters"]["commands"] = int(self.state.data["counters"].get("commands", 0)) + 1
        if not cmd.invocation.reads_stdin:
            self._execute(shell, cmd)
        body = f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"
        return envelope(f"{SHELL}/CommandResponse", req.message_id, body)

    def _execute(self, shell: Shell, cmd: Command) -> None:
        """Start the command in this twin's own threads; Receive long-polls until it is done.

        Every command runs there, not only the host scripts that wait on the network (up to the host's retrieval
        timeouts): the event loop serves every twin of the lab, so nothing that waits or writes the state file runs
        on it, and a twin's commands wait only for the twin's own threads (tests/twin/README.md, "One machine
        each")."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, _run, self.state, cmd.invocation, bytes(cmd.stdin), shell.codepage)
        future.add_done_callback(lambda f: self._finish(shell, cmd, _outcome_of(f)))

    def _finish(self, shell: Shell, cmd: Command, outcome: executor.Outcome) -> None:
        for part, size in (outcome.parts or {}).items():  # the bench's "where the bytes go"
            self.counters[f"doc_{part}"] = self.counters.get(f"doc_{part}", 0) + size
        if outcome.script and self.after_script is not None:
            if self.after_script(outcome.script, lambda: self._deliver(shell, cmd, outcome)):
                return
        self._deliver(shell, cmd, outcome)

    def _deliver(self, shell: Shell, cmd: Command, outcome: executor.Outcome) -> None:
        encoding = executor.codec(shell.codepage)
        cmd.stdout += outcome.stdout.encode(encoding, "replace")
        cmd.stderr += (
            outcome.stderr if isinstance(outcome.stderr, bytes) else outcome.stderr.encode(encoding, "replace")
        )
        cmd.exit_code = outcome.rc
        cmd.done = True
        cmd.changed.set()

    def _send(self, req: Request, shell: Shell) -> bytes:
        stream = req.body.find("rsp:Send/rsp:Stream", NS)
        if stream is None:
            raise WSManFault("s:Sender", "w:SchemaValidationError", "The Send request has no Stream.", 2150858817)
        cmd = shell.commands.get((stream.get("CommandId") or "").upper())
        if cmd is None or cmd.done:
            raise command_not_found()
        cmd.stdin += base64.b64decode(stream.text or "")
        if (stream.get("End") or "").lower() == "true":
            self._execute(shell, cmd)
        return envelope(f"{SHELL}/SendResponse", req.message_id, "<rsp:SendResponse/>")

    async def _receive(self, req: Request, shell: Shell) -> bytes:
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        cmd_id = ((desired.get("CommandId") if desired is not None else "") or "").upper()
        cmd = shell.commands.get(cmd_id)
        if cmd is None:
            raise command_not_found()
        if not cmd.done and not cmd.stdout and not cmd.stderr:
            cmd.changed.clear()
            try:
                await asyncio.wait_for(cmd.changed.wait(), timeout=req.operation_timeout)
            except TimeoutError:
                raise WSManFault("s:Receiver", "w:TimedOut", TIMED_OUT_TEXT, 2150858793) from None
            if shell.commands.get(cmd_id) is not cmd or self.shells.get(shell.id) is not shell:
                raise command_not_found()
        return self._receive_response(req, cmd, shell)

    def _receive_response(self, req: Request, cmd: Command, shell: Shell) -> bytes:
        # Fill up to the client's MaxEnvelopeSize: base64 grows 4/3, plus a fixed envelope and per-stream overhead.
        overhead = 1400 + 3 * 200
        budget = max(0, (req.max_envelope - overhead) // 4 * 3)
        if budget <= 0:
            raise WSManFault(
                "s:Sender",
                "w:EncodingLimit",
                "The WS-Management service cannot process the request because the MaxEnvelopeSize is "
                "too small to hold the response. ",
                2150858817,
                "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize",
            )
        parts = []
        for name, buffer in (("stdout", cmd.stdout), ("stderr", cmd.stderr)):
            if buffer and budget > 0:
                chunk = bytes(buffer[:budget])
                del buffer[: len(chunk)]
                budget -= len(chunk)
                parts.append(
                    f'<rsp:Stream Name="{name}" CommandId="{cmd.id}">'
                    f"{base64.b64encode(chunk).decode('ascii')}</rsp:Stream>"
                )
        finished = cmd.done and not cmd.stdout and not cmd.stderr
        if finished:
            parts.append(f'<rsp:Stream Name="stdout" CommandId="{cmd.id}" End="true"></rsp:Stream>')
            parts.append(f'<rsp:Stream Name="stderr" CommandId="{cmd.id}" End="true"></rsp:Stream>')
            parts.append(
                f'<rsp:CommandState CommandId="{cmd.id}" State="{STATE_DONE}">'
                f"<rsp:ExitCode>{cmd.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            parts.append(f'<rsp:CommandState CommandId="{cmd.id}" State="{STATE_RUNNING}"/>')
        body = "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>"
        return envelope(f"{SHELL}/ReceiveResponse", req.message_id, body)

    def _signal(self, req: Request, shell: Shell) -> bytes:
        signal = req.body.find("rsp:Signal", NS)
        if signal is None:
            raise WSManFault("s:Sender", "w:SchemaValidationError", "The Signal request has no Signal.", 2150858817)
        cmd_id = (signal.get("CommandId") or "").upper()
        # Windows accepts the URI in any case: pypsrp sends ".../signal/Terminate", pywinrm ".../terminate".
        code = (signal.findtext("rsp:Code", default="", namespaces=NS) or "").strip().lower()
        cmd = shell.commands.get(cmd_id)
        if cmd is None:
            raise command_not_found()
        if code == SIGNAL_TERMINATE:
            # terminate ends the command and releases it: later Receives fault (pypsrp test_winrs_bad_cmd_id.yml).
            del shell.commands[cmd_id]
            cmd.changed.set()
        elif code == SIGNAL_CTRL_C:
            if not cmd.done:
                # Ctrl+C stops a console program; cmd.exe reports STATUS_CONTROL_C_EXIT.
                cmd.exit_code, cmd.done = 0xC000013A, True
                cmd.changed.set()
        else:
            raise WSManFault("s:Sender", "w:InvalidParameter", f"The signal code {code} is not valid. ", 2150858843)
        return envelope(f"{SHELL}/SignalResponse", req.message_id, "<rsp:SignalResponse/>")
