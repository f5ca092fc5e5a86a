"""Who may talk to a twin's WinRM listener: NTLM/SPNEGO (connection-based) and Basic, as HTTP.sys and WinRM do.

- A request without acceptable credentials gets 401 with ``WWW-Authenticate: Negotiate``, plus
  ``Basic realm="WSMAN"`` where Basic may be used (HTTPS, or ``AllowUnencrypted``).
- NTLM tokens may come under the ``Negotiate`` or the ``NTLM`` scheme; the acceptor is pyspnego's. NTLM
  authenticates the TCP connection (HTTP.sys connection-based auth): later requests on it carry no header.
  Over HTTPS the client's channel binding (RFC 5929 tls-server-end-point) must match the listener's certificate.
- SPNEGO's last leg (accept-completed + mechListMIC) rides on the response to the authenticated request.
- Basic over HTTP is refused unless ``AllowUnencrypted``; the host's ``winrm.users`` say who may log on.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import spnego
import spnego.channel_bindings
import spnego.exceptions

from tests.twin.state import HostState

Reply = tuple[int, bytes, dict[str, Any]]


@dataclass
class Connection:
    """Authentication of one TCP connection (NTLM is per connection, not per request)."""

    context: Any = None  # pyspnego server context; its session key seals the messages (encryption.py)
    user: str | None = None


@dataclass
class Verdict:
    """What authentication decided for one request: refuse it, or go on (with extras for the response)."""

    refusal: Reply | None = None
    basic_user: str | None = None  # the request authenticated with Basic, as this user
    final_token: str | None = None  # a WWW-Authenticate value the response must carry (SPNEGO's last leg)


class Authenticator:
    """The authentication side of one host's WinRM service; ``counters["auth_failures"]`` counts refusals."""

    def __init__(self, state: HostState, channel_binding: bytes, counters: dict[str, int]) -> None:
        self.state = state
        self.channel_binding = channel_binding  # b"tls-server-end-point:" + hash of the HTTPS certificate
        self.counters = counters

    def challenge(self, https: bool, token: str | None = None, scheme: str = "Negotiate") -> dict[str, Any]:
        """The ``WWW-Authenticate`` header: the next token of a handshake, or the schemes this host offers."""
        if token is not None:
            return {"WWW-Authenticate": f"{scheme} {token}"}
        offers = ["Negotiate"]
        winrm = self.state.data["winrm"]
        if winrm.get("Basic") and (https or winrm.get("AllowUnencrypted")):
            offers.append('Basic realm="WSMAN"')
        return {"WWW-Authenticate": offers}

    def deny(self, https: bool) -> Reply:
        self.counters["auth_failures"] += 1
        return 401, b"", self.challenge(https)

    def accept(self, authorization: str, conn: Connection, https: bool) -> Verdict:
        """Judge one request's ``Authorization`` header on connection ``conn``."""
        scheme, _sep, token = authorization.partition(" ")
        if scheme.lower() in ("negotiate", "ntlm"):
            return self._step(scheme, token, conn, https)
        if scheme.lower() == "basic":
            return self._basic(token, https)
        if conn.user is None:
            return Verdict(refusal=(401, b"", self.challenge(https)))
        return Verdict()

    def _step(self, scheme: str, token: str, conn: Connection, https: bool) -> Verdict:
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return Verdict(refusal=self.deny(https))
        if conn.context is None or conn.context.complete:
            protocol = "ntlm" if raw.startswith(b"NTLMSSP\x00") else "negotiate"
            bindings = (
                spnego.channel_bindings.GssChannelBindings(application_data=self.channel_binding) if https else None
            )
            conn.context, conn.user = spnego.server(protocol=protocol, channel_bindings=bindings), None
        try:
            out = conn.context.step(raw)
        except spnego.exceptions.SpnegoError:
            conn.context = None
            return Verdict(refusal=self.deny(https))
        if not conn.context.complete:
            return Verdict(refusal=(401, b"", self.challenge(https, base64.b64encode(out or b"").decode(), scheme)))
        user = self._allowed(conn.context.client_principal or "")
        if user is None:
            conn.context = None
            return Verdict(refusal=self.deny(https))
        conn.user = user
        return Verdict(final_token=f"{scheme} {base64.b64encode(out).decode()}" if out else None)

    def _basic(self, token: str, https: bool) -> Verdict:
        winrm = self.state.data["winrm"]
        if not winrm.get("Basic") or not (https or winrm.get("AllowUnencrypted")):
            return Verdict(refusal=self.deny(https))
        try:
            user_pass = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return Verdict(refusal=self.deny(https))
        user = self._basic_ok(user_pass)
        if user is None:
            return Verdict(refusal=self.deny(https))
        return Verdict(basic_user=user)

    def _users(self) -> list[dict[str, str]]:
        return list(self.state.data["winrm"].get("users", []))

    def _allowed(self, principal: str) -> str | None:
        domain, _sep, user = principal.rpartition("\\")
        for entry in self._users():
            if entry["user"].lower() == user.lower() and (
                not entry.get("domain") or entry["domain"].lower() == domain.lower()
            ):
                return principal
        return None

    def _basic_ok(self, user_pass: str) -> str | None:
        name, sep, password = user_pass.partition(":")
        if not sep:
            return None
        domain, _sep, user = name.rpartition("\\")
        for entry in self._users():
            if (
                entry["user"].lower() == user.lower()
                and entry["password"] == password
                and (not domain or not entry.get("domain") or entry["domain"].lower() == domain.lower())
            ):
                return name
        return None
