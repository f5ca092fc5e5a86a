"""``host_audit`` schema 1: winhttp_state + cert_inventory + crl_fetch + tls_probe in one command (host-scripts.md).

First the floor check of ``_host_floor.ps1`` from the host's class (``host_classes.floor_report``): a host below the
floor answers ``{"floor": {..., "missing": [...]}}`` and nothing else, as the script does before reading its arguments.

The twin composes its four scripts as the PowerShell composes their engines: the WinHTTP views and the stores read
first, the revocation URLs extracted from the certificates, then the CRL fetch beside the TLS probes (two threads here,
a runspace pool on Windows), so the command takes max(crl, tls). A part that fails becomes ``{"error": "<text>"}``.

The identities' scheduled tasks (``identity_runs``) start before the measurement and end by their own
``identities.chain.deadline_ms``, never by the time box: a task's powershell.exe takes seconds to start.

``time_box_ms`` (host-scripts.md, host_audit): a ``TimeBox`` starts with the measurement, after the purge; the fetch
and the probes stop waiting when it ends and answer what is still open with its text, as the script's waits do. Once
the document is done its cancel event ends the abandoned threads' modelled waits (powershell.exe's exit on Windows).

The URL extraction mirrors ``_ps1/_der.ps1`` line for line: a minimal DER walk (``tlv_children``) over each
extension value, never ``cryptography``, so a disagreement between the host's walk and the controller's parser
shows up in the twin exactly as it would on Windows (the certificate split with the same walker, as Windows hands the
script ``IssuerName.RawData``, ``SubjectName.RawData``, each extension's ``RawData``). Each OCSP responder is asked
with a request (``_ocsp.py``), its result carrying ``location``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.twin import identities, identity_runs, revocation, wpad
from tests.twin.host_classes import floor_report
from tests.twin.scripts import ScriptContext, ScriptError, _evidence, cert_inventory, crl_fetch, require, tls_probe
from tests.twin.scripts._ocsp import asked, locate, prepare
from tests.twin.scripts.winhttp_state import read_state

NAME = "host_audit"
SCHEMAS = {1, 2}  # 2 adds the identities part
BLOCKING = True  # the CRL fetch and the probes wait on the network
MAX_CHAIN_DEPTH = 6
OID_CDP = "2.5.29.31"
OID_FRESHEST_CRL = "2.5.29.46"
OID_AIA = "1.3.6.1.5.5.7.1.1"
# AccessDescription methods whose URI is kept: id-ad-ocsp (1.3.6.1.5.5.7.48.1), id-ad-caIssuers (...48.2),
# as their DER content bytes (what the script compares with [BitConverter]::ToString).
AIA_METHODS = (bytes.fromhex("2B06010505073001"), bytes.fromhex("2B06010505073002"))
FETCHED = re.compile(r"^https?://", re.IGNORECASE)  # PowerShell's -match is case-insensitive
MAX_TIME_BOX_MS = 600000


class BoxCancel(threading.Event):
    """The cancel event the lab's waits take: set once the document is complete, and while the lab shuts down.

    It stands for the process exit that ends the script under ConsoleHost (``Exit-CrlfixScript``: the document, then
    ``[Environment]::Exit``), the only thing that ends a CryptoAPI wait on Windows: nothing is cancelled earlier, an
    abandoned wait only stops being waited for (tests/twin/README.md, "What is NOT modelled").
    """

    def is_set(self) -> bool:
        return super().is_set() or revocation.SHUTDOWN.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.25 if end is None else min(0.25, end - time.monotonic())
            if left <= 0:
                return False
            super().wait(left)  # short slices: a lab shutdown is seen within 0.25 s
        return True


@dataclass
class TimeBox:
    """host_audit's time box: ``ms`` from ``started`` (the script's ``$box``)."""

    ms: int
    started: float = field(default_factory=time.monotonic)
    cancel: BoxCancel = field(default_factory=BoxCancel)
    hit: bool = False

    @property
    def text(self) -> str:
        return f"not finished within the audit's time box of {self.ms} ms"

    def remaining(self) -> float:
        return max(0.0, self.started + self.ms / 1000 - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0

    def cut(self) -> str:
        """The error text of a measurement the box cut off (and the box records that it was hit)."""
        self.hit = True
        return self.text

    def cut_sample(self) -> dict[str, Any]:
        return {"tcp_connect_ms": None, "handshake_ms": None, "protocol": None, "mutual": False, "chain_status": [],
                "policy_errors": None, "error": self.cut(), "handshake": None, "certificate_requested": None,
                "certificate_sent": None}


def tlv_children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(tag, header_start, content_offset, length)`` of each element in ``data[start:end]``.

    Stops at anything malformed (indefinite or over-long length, an element running past ``end``), as
    ``Get-CrlfixTlv`` does; the script returns only ``(tag, offset, length)``.
    """
    while start + 2 <= end:
        tag, length, offset = data[start], data[start + 1], start + 2
        if length >= 0x80:
            count = length - 0x80
            if count < 1 or count > 3 or offset + count > end:
                return
            length = int.from_bytes(data[offset:offset + count], "big")
            offset += count
        if offset + length > end:
            return
        yield tag, start, offset, length
        start = offset + length


def der_uris(data: bytes, start: int, end: int) -> list[str]:
    """``Get-CrlfixDerUris``: [6] URIs in SEQUENCEs and [0]s (a DistributionPoint's fullName)."""
    found: list[str] = []
    for tag, _head, offset, length in tlv_children(data, start, end):
        if tag == 0x86:
            found.append(data[offset:offset + length].decode("ascii", errors="replace"))
        elif tag in (0x30, 0xA0):
            found.extend(der_uris(data, offset, offset + length))
    return found


def aia_uris(data: bytes) -> list[str]:
    """``Get-CrlfixAiaUris``: the URI of every OCSP or caIssuers AccessDescription."""
    found: list[str] = []
    for _tag, _head, seq_offset, seq_length in tlv_children(data, 0, len(data)):
        for _t, _h, offset, length in tlv_children(data, seq_offset, seq_offset + seq_length):
            parts = list(tlv_children(data, offset, offset + length))
            if len(parts) != 2 or parts[0][0] != 0x06 or parts[1][0] != 0x86:
                continue
            method = data[parts[0][2]:parts[0][2] + parts[0][3]]
            if method in AIA_METHODS:
                found.append(data[parts[1][2]:parts[1][2] + parts[1][3]].decode("ascii", errors="replace"))
    return found


def oid_text(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content bytes (what ``$ext.Oid.Value`` gives on Windows)."""
    arcs, value = [], 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


@dataclass(frozen=True)
class HostCertificate:
    """What the script uses of an X509Certificate2: raw names, raw extension values, thumbprint."""

    thumbprint: str
    issuer: bytes
    subject: bytes
    extensions: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_der(cls, der: bytes) -> HostCertificate:
        cert = next(tlv_children(der, 0, len(der)))
        tbs = next(tlv_children(der, cert[2], cert[2] + cert[3]))
        fields = list(tlv_children(der, tbs[2], tbs[2] + tbs[3]))
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        if len(fields) < 6:
            raise ValueError("not an X.509 certificate: tbsCertificate has too few fields")
        issuer, subject = (der[f[1]:f[2] + f[3]] for f in (fields[2], fields[4]))
        extensions: list[tuple[str, bytes]] = []
        for tag, _head, offset, length in fields[6:]:
            if tag != 0xA3:
                continue
            for seq in tlv_children(der, offset, offset + length):
                for ext in tlv_children(der, seq[2], seq[2] + seq[3]):
                    parts = list(tlv_children(der, ext[2], ext[2] + ext[3]))
                    if len(parts) >= 2 and parts[0][0] == 0x06 and parts[-1][0] == 0x04:
                        oid = oid_text(der[parts[0][2]:parts[0][2] + parts[0][3]])
                        extensions.append((oid, der[parts[-1][2]:parts[-1][2] + parts[-1][3]]))
        return cls(hashlib.sha1(der).hexdigest().upper(), issuer, subject, tuple(extensions))


def certificate_uris(cert: HostCertificate) -> list[str]:
    """``Get-CrlfixCertUris``: CDP, Freshest CRL, then AIA URIs, any scheme."""
    found: list[str] = []
    for oid in (OID_CDP, OID_FRESHEST_CRL, OID_AIA):
        for ext_oid, value in cert.extensions:
            if ext_oid == oid:
                found.extend(aia_uris(value) if oid == OID_AIA else der_uris(value, 0, len(value)))
    return found


def chain_uris(targets: list[HostCertificate], pool: list[HostCertificate]) -> list[str]:
    """``Get-CrlfixChainUris``: URIs of the targets and their issuers (raw DN match, 6 deep), roots skipped."""
    urls: list[str] = []
    seen: set[str] = set()
    walk = [(cert, 1) for cert in targets]
    for cert, depth in walk:  # grows while it is walked: breadth first, as the script's for loop
        if cert.thumbprint in seen:
            continue
        seen.add(cert.thumbprint)
        if cert.issuer == cert.subject:
            continue
        for url in certificate_uris(cert):
            if url not in urls:
                urls.append(url)
        if depth < MAX_CHAIN_DEPTH:
            walk.extend((parent, depth + 1) for parent in pool if parent.subject == cert.issuer)
    return urls


def _store_certificates(inventory: dict[str, Any], stores: list[str]) -> tuple[list, list]:
    wanted = {name.casefold() for name in stores}
    targets: list[HostCertificate] = []
    pool: list[HostCertificate] = []
    for name, ders in cert_inventory.store_ders(inventory).items():
        certs = []
        for der in ders:
            try:
                certs.append(HostCertificate.from_der(der))
            except (ValueError, StopIteration):
                continue  # .NET would not have listed it as an X509Certificate2 either
        pool.extend(certs)
        if name.casefold() in wanted:
            targets.extend(certs)
    return targets, pool


def _unique(urls: list[Any]) -> list[str]:
    out: list[str] = []
    for url in urls:
        if url and str(url) not in out:
            out.append(str(url))
    return out


def _time_box_ms(args: dict[str, Any]) -> int | None:
    value = args.get("time_box_ms")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 1 <= value <= MAX_TIME_BOX_MS):
        raise ScriptError(f"argument 'time_box_ms': expected an integer from 1 to {MAX_TIME_BOX_MS} or null, "
                          f"got {value!r}")
    return value


def run(ctx: ScriptContext, args: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    # --- host floor: _host_floor.ps1 runs before the arguments are read; below the floor it is the whole document ---
    floor = floor_report(ctx.state.host_class, ctx.state.os_build)
    if floor["missing"]:
        return {"floor": floor}
    # --- end host floor ---
    box_ms = _time_box_ms(args)
    stores = args.get("stores")
    if stores is not None and not isinstance(stores, list):
        raise ScriptError(f"argument 'stores': expected a list or null, got {stores!r}")
    chain_stores = require(args, "chain_stores", list, [])
    crl = args.get("crl")
    tls = args.get("tls")
    for key, value in (("crl", crl), ("tls", tls)):
        if value is not None and not isinstance(value, dict):
            raise ScriptError(f"argument '{key}': expected an object or null, got {value!r}")
    doc: dict[str, Any] = {"winhttp": None, "certificates": None, "crl": None, "tls": None}
    if require(args, "winhttp", bool, True):
        doc["winhttp"] = {"script": "winhttp_state", "schema": 1, **read_state(ctx)}
    # >>> evidence: before the measurement, as in the script (a marker written now precedes the probes)
    doc["evidence"] = None
    if args.get("evidence") is not None:
        try:
            doc["evidence"] = _evidence.evidence(ctx.state, args["evidence"])
        except ScriptError as exc:
            doc["evidence"] = {"error": str(exc)}
    # <<< evidence
    # identities: _identity.ps1's part, read before the measurement
    request = args.get("identities")
    if request is not None and not isinstance(request, dict):
        raise ScriptError(f"argument 'identities': expected an object or null, got {request!r}")
    doc["identities"] = identities.identities_part(ctx.state, request) if request is not None else None
    chain = (request or {}).get("chain")
    runs = deadline = None
    if chain is not None:  # the runs' own deadline, not the time box (_identity_run.ps1)
        try:
            deadline = doc["identities"]["deadline_ms"] = identity_runs.deadline_ms(chain)
            runs = identity_runs.start(ctx.state, doc["identities"], chain, BoxCancel())
        except ValueError as exc:
            doc["identities"]["chain_error"] = str(exc)
    runs_started = time.monotonic()
    urls: list[str] = []
    requests: dict[str, str] = {}  # an OCSP request per responder (_ocsp.py)
    if stores is not None:
        try:
            # host_audit 2 carries cert_inventory 2 (each certificate once), host_audit 1 cert_inventory 1.
            part_schema = 1 if ctx.schema == 1 else 2
            inventory = cert_inventory.run(ScriptContext(ctx.state, part_schema),
                                           {"stores": stores, "chain_stores": chain_stores, "winhttp": False})
            doc["certificates"] = {"script": "cert_inventory", "schema": part_schema, **inventory}
            urls = [u for u in chain_uris(*_store_certificates(inventory, stores)) if FETCHED.match(u)]
            requests = prepare(cert_inventory.store_ders(inventory), stores, crl)
        except ScriptError as exc:
            doc["certificates"] = {"error": str(exc)}
    purge = fetch = None
    listed = _unique([*((crl or {}).get("urls") or []), *urls, *((crl or {}).get("extra_urls") or [])])
    if crl is not None:
        try:
            fetch_args = {"urls": asked(listed, requests), "timeout_ms": crl.get("timeout_ms", 15000),
                          "purge_cache": False, "max_bytes": crl.get("max_bytes", 4194304)}
            fetch = (*crl_fetch._validate(fetch_args), crl_fetch.document_cap(crl), crl_fetch.foreign_agent_asked(crl))
            # The purge runs before the fetch and the probes start, as in the script.
            purge = crl_fetch._purge(ctx) if crl.get("purge_cache") else None
        except ScriptError as exc:
            doc["crl"] = {"error": str(exc)}
    _wpad_part(ctx, doc, request, listed if crl else [])
    box = TimeBox(box_ms) if box_ms is not None else None  # the measurement starts now
    try:
        _measure(ctx, doc, fetch, purge, tls, box)
        locate(doc.get("crl"), listed, requests)
        if runs is not None and deadline is not None:  # identities: the tasks' results by their own deadline
            identity_runs.complete(ctx.state, runs, remaining_s=runs_started + deadline / 1000 - time.monotonic(),
                                   deadline=deadline)
    finally:
        if box is not None:
            box.cancel.set()
        if runs is not None:
            runs.cancel.set()
    doc.update(time_box_ms=box_ms, time_box_hit=bool(box and box.hit))
    doc["floor"] = floor
    doc["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return doc


def _wpad_part(ctx: ScriptContext, doc: dict[str, Any], request: dict[str, Any] | None, listed: list[str]) -> None:
    """identities.wpad (``_wpad.ps1``): discovery for the first http URL the audit fetches, when a path reaches it.

    The script runs it on a thread beside the measurement; the twin answers it here, before: on loopback the
    discovery takes milliseconds, and its result does not depend on the measurement."""
    part = doc.get("identities")
    if not request or request.get("wpad") is None or not isinstance(part, dict) or "accounts" not in part:
        return
    url = next((u for u in listed if re.match(r"^https?://", u, re.IGNORECASE)), None)
    part["wpad"] = wpad.discovery_part(ctx.state, part, request["wpad"], url)


def _probe(ctx: ScriptContext, tls_args: dict[str, Any], stop_after_unknown: bool, own_service_last: bool,
           box: TimeBox | None) -> dict[str, Any]:
    """The tls part: the peers inside ``box``; with ``own_service_last``, the last peer (the host's own service) to its
    own timeout beside them, as the script starts it without the box (docs/dev/host-scripts.md, host_audit)."""
    peers = list(tls_args["peers"])
    if not own_service_last or box is None:
        return tls_probe.probe_all(ctx, tls_args, stop_after_unknown=stop_after_unknown, box=box)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="host_audit_own") as pool:
        own = pool.submit(tls_probe.probe_all, ctx, {**tls_args, "peers": peers[-1:]},
                          stop_after_unknown=stop_after_unknown, box=None)
        boxed = tls_probe.probe_all(ctx, {**tls_args, "peers": peers[:-1]}, stop_after_unknown=stop_after_unknown,
                                    box=box) if len(peers) > 1 else None
        own_document = own.result()
    if boxed is None:
        return own_document
    return {**boxed, "results": boxed["results"] + own_document["results"]}


def _measure(ctx: ScriptContext, doc: dict[str, Any], fetch: tuple | None, purge: dict[str, Any] | None,
             tls: dict[str, Any] | None, box: TimeBox | None) -> None:
    """The CRL fetch and the TLS probes side by side, each bounded by ``box``; fills ``doc['crl']``/``['tls']``."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="host_audit") as pool:
        crl_job = tls_job = None
        if fetch is not None:
            urls, timeout, _purge, max_bytes, cap, foreign = fetch
            crl_job = pool.submit(lambda: {"results": crl_fetch.fetch_urls(ctx, urls, timeout, max_bytes, box=box,
                                                                           max_document_bytes=cap,
                                                                           foreign_agent=foreign)})
        if tls is not None and tls.get("peers"):
            tls_args = {k: tls[k] for k in ("peers", "samples", "timeout_ms", "check_revocation", "mutual",
                                            "client_certificate") if k in tls}
            tls_job = pool.submit(_probe, ctx, tls_args, bool(tls.get("stop_after_unknown")),
                                  bool(tls.get("own_service_last")), box)
        for key, job, script in (("crl", crl_job, "crl_fetch"), ("tls", tls_job, "tls_probe")):
            if job is None:
                continue
            try:
                body = job.result()
            except ScriptError as exc:
                doc[key] = {"error": str(exc)}
                continue
            if key == "crl":
                body = {"purge": purge, **body}
            doc[key] = {"script": script, "schema": 1, **body}
