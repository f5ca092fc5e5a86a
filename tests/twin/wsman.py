"""WS-Management / WinRS (cmd shell) as Windows implements it, for one twin.

Envelopes are modelled on responses recorded from Windows hosts (pypsrp ``tests/responses/test_winrs_*.yml``,
pywinrm ``winrm/tests``) and MS-WSMV: Create → ``x:ResourceCreated`` + ``rsp:Shell``; Command →
``rsp:CommandResponse``; Send; Receive → base64 ``rsp:Stream`` chunks and ``rsp:CommandState`` (``Done`` with
``rsp:ExitCode``); Signal → ``rsp:SignalResponse``; Delete. Faults are SOAP 1.2 faults with a
``f:WSManFault Code=...`` detail and HTTP 500, as Windows sends them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from tests.twin import executor
from tests.twin.state import HostState

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
ACTION_CREATE = f"{TRANSFER}/Create"
ACTION_DELETE = f"{TRANSFER}/Delete"
ACTION_COMMAND = f"{SHELL}/Command"
ACTION_SEND = f"{SHELL}/Send"
ACTION_RECEIVE = f"{SHELL}/Receive"
ACTION_SIGNAL = f"{SHELL}/Signal"
SIGNAL_TERMINATE = f"{SHELL}/signal/terminate"
SIGNAL_CTRL_C = f"{SHELL}/signal/ctrl_c"
STATE_DONE = f"{SHELL}/CommandState/Done"
STATE_RUNNING = f"{SHELL}/CommandState/Running"
# Service default MaxEnvelopeSizekb is 500 (Microsoft Learn "Installation and configuration for Windows Remote
# Management"); a request larger than that is refused.
SERVICE_MAX_ENVELOPE = 500 * 1024
DEFAULT_OPERATION_TIMEOUT = 60.0
_DURATION_RE = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")

# Fault texts: recorded from Windows (pypsrp tests/responses/test_winrs_bad_cmd_id.yml; pywinrm
# test_protocol.py TimedOut fault) except where marked "twin wording" in tests/twin/README.md.
TIMED_OUT_TEXT = (
    "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
)
BAD_COMMAND_TEXT = (
    "The Windows Remote Shell received a request to perform an operation on a command identifier that does not "
    "exist. Either the command has completed execution or the client specified an invalid command identifier. "
)
BAD_SELECTORS_REASON = (
    "The WS-Management service cannot process the request because the request contained invalid selectors for "
    "the resource. "
)


class WSManFault(Exception):
    """A SOAP fault to return with HTTP 500."""

    def __init__(self, code: str, subcode: str, reason: str, wsman_code: int, detail: str | None = None) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.wsman_code, self.detail = code, subcode, reason, wsman_code, detail


def shell_not_found(shell_id: str) -> WSManFault:
    message = (
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on "
        "the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the "
        "server. Provide the correct ShellId or create a new shell and retry the operation. "
    )
    return WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        message,
        2150858843,
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    )


def command_not_found() -> WSManFault:
    return WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        BAD_COMMAND_TEXT,
        2150858843,
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
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


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    options: dict[str, str]
    max_envelope: int
    operation_timeout: float
    body: ET.Element
    to: str


def parse_request(xml: bytes) -> Request:
    if len(xml) > SERVICE_MAX_ENVELOPE:
        raise WSManFault(
            "s:Sender",
            "w:EncodingLimit",
            "The WS-Management service cannot process the request because the envelope size in the "
            "request is larger than the maximum envelope size of the service (MaxEnvelopeSizekb). ",
            2150858817,
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/ServiceEnvelopeLimit",
        )
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise WSManFault(
            "s:Sender",
            "w:SchemaValidationError",
            f"The SOAP XML in the message does not match the corresponding XML schema definition. {exc}",
            2150858817,
        ) from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise WSManFault("s:Sender", "w:SchemaValidationError", "The SOAP envelope has no Header or Body.", 2150858817)

    def text(path: str, default: str = "") -> str:
        node = header.find(path, NS)
        return (node.text or "").strip() if node is not None else default

    options = {o.get("Name", ""): (o.text or "") for o in header.findall("w:OptionSet/w:Option", NS)}
    selector = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", NS)
    max_env = int(text("w:MaxEnvelopeSize", "153600") or 153600)
    return Request(
        action=text("a:Action"),
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        shell_id=(selector.text or "").strip() if selector is not None else None,
        options=options,
        max_envelope=max_env,
        operation_timeout=parse_duration(text("w:OperationTimeout")) or DEFAULT_OPERATION_TIMEOUT,
        body=body,
        to=text("a:To"),
    )


def parse_duration(value: str) -> float | None:
    match = _DURATION_RE.match(value)
    if not match or not value or value == "PT":
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _envelope(action: str, relates_to: str, body: str, extra_ns: str = "") -> bytes:
    # Namespace prefixes and header order as in Windows' recorded responses.
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:x="{NS["x"]}" '
        f'xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" xmlns:p="{NS["p"]}"{extra_ns}>'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    detail = f"<w:FaultDetail>{fault.detail}</w:FaultDetail>" if fault.detail else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail>{detail}<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{fault.wsman_code}" Machine={quoteattr(machine)}><f:Message>{escape(fault.reason)}</f:Message>'
        f"</f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope(
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        relates_to,
        body,
        ' xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
        'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"',
    )


_POOL: ThreadPoolExecutor | None = None


def _blocking_pool() -> ThreadPoolExecutor:
    """One pool for the whole lab process; sized for many hosts probing at once (threads mostly wait)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=128, thread_name_prefix="twin-script")
    return _POOL


def _outcome_of(future: asyncio.Future) -> executor.Outcome:
    try:
        return future.result()
    except Exception as exc:  # a bug in a script must still end the command, as a PowerShell error would
        return executor.Outcome("", f"twin: host script failed: {exc!r}\r\n", 1)


class WinRSService:
    """Shells and commands of one twin; ``handle`` maps a request envelope to a response envelope."""

    def __init__(self, state: HostState, address: str, counters: dict[str, int]) -> None:
        self.state = state
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
            return _envelope(f"{TRANSFER}/DeleteResponse", req.message_id, "")
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
        return _envelope(f"{TRANSFER}/CreateResponse", req.message_id, body)

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
        else:
            self.state.save()
        body = f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"
        return _envelope(f"{SHELL}/CommandResponse", req.message_id, body)

    def _execute(self, shell: Shell, cmd: Command) -> None:
        stdin = bytes(cmd.stdin)
        if executor.is_blocking(cmd.invocation, stdin):
            # crl_fetch/tls_probe wait on the network (up to the host's retrieval timeouts): run them in a
            # worker thread so one slow host never stalls the other twins; Receive long-polls until done.
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(_blocking_pool(), executor.run, self.state, cmd.invocation, stdin)
            future.add_done_callback(lambda f: self._finish(shell, cmd, _outcome_of(f)))
            return
        self._finish(shell, cmd, executor.run(self.state, cmd.invocation, stdin))

    def _finish(self, shell: Shell, cmd: Command, outcome: executor.Outcome) -> None:
        self.state.save()  # counters; every state change was already written through
        if outcome.script and self.after_script is not None:
            if self.after_script(outcome.script, lambda: self._deliver(shell, cmd, outcome)):
                return
        self._deliver(shell, cmd, outcome)

    def _deliver(self, shell: Shell, cmd: Command, outcome: executor.Outcome) -> None:
        encoding = _codec(shell.codepage)
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
        return _envelope(f"{SHELL}/SendResponse", req.message_id, "<rsp:SendResponse/>")

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
        return _envelope(f"{SHELL}/ReceiveResponse", req.message_id, body)

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
        return _envelope(f"{SHELL}/SignalResponse", req.message_id, "<rsp:SignalResponse/>")


def _codec(codepage: int) -> str:
    return {65001: "utf-8", 437: "cp437", 850: "cp850", 1252: "cp1252"}.get(codepage, "cp437")
