"""WS-Management as Windows speaks it: the request envelope read, response and fault envelopes written.

Envelopes are modelled on responses recorded from Windows hosts (pypsrp ``tests/responses/test_winrs_*.yml``,
pywinrm ``winrm/tests``) and MS-WSMV: Create → ``x:ResourceCreated`` + ``rsp:Shell``; Command →
``rsp:CommandResponse``; Send; Receive → base64 ``rsp:Stream`` chunks and ``rsp:CommandState`` (``Done`` with
``rsp:ExitCode``); Signal → ``rsp:SignalResponse``; Delete. Faults are SOAP 1.2 faults with a
``f:WSManFault Code=...`` detail and HTTP 500, as Windows sends them. What the shell does with a request is
``winrs.py``'s.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

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
# The actions a WinRS client sends: WS-Transfer's for the shell itself, the shell's own for its commands.
ACTION_CREATE, ACTION_DELETE = (f"{TRANSFER}/{verb}" for verb in ("Create", "Delete"))
ACTION_COMMAND, ACTION_SEND, ACTION_RECEIVE, ACTION_SIGNAL = (
    f"{SHELL}/{verb}" for verb in ("Command", "Send", "Receive", "Signal")
)
SIGNAL_TERMINATE, SIGNAL_CTRL_C = (f"{SHELL}/signal/{name}" for name in ("terminate", "ctrl_c"))
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


def envelope(action: str, relates_to: str, body: str, extra_ns: str = "") -> bytes:
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
    return envelope(
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        relates_to,
        body,
        ' xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
        'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"',
    )
