# PRIVATE to the crlfix.windows collection; may change without notice.
"""The work of ``crlfix.windows.cert_revocation_info``: one ``cert_inventory`` round trip, then Python.

The host only lists DER bytes; parsing, filtering, chain building and the
endpoint summary run on the controller (``module_utils/_cert_chain.py``), so
the same code serves the module, the role and the unit tests.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import re
import traceback
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._cert_chain import (
    FLAG_NAMES,
    CertificateFilter,
    StoreCertificate,
    compile_subject_pattern,
    normalize_thumbprint,
    summarise_certificates,
)
from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import (
    MissingCryptographyError,
    require_cryptography,
)
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    CertificateParseError,
    certificate_info,
    eku_oid,
    iso_utc,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    SUPPORTED_SCHEMAS,
    HostScriptError,
    run_host_script,
)

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

SCRIPT = "cert_inventory"
MODULE = "cert_revocation_info"

# Store names as Windows shows them (My, CA, Root, WebHosting, Remote Desktop, TrustedPublisher…).
# Path separators and wildcards are refused even though the host uses -LiteralPath.
_STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class CertRevocationOptions:
    stores: tuple[str, ...]
    chain_stores: tuple[str, ...]
    certificate_filter: CertificateFilter
    expiry_warning_days: int
    include_winhttp: bool

    def script_args(self) -> dict[str, t.Any]:
        """The ``cert_inventory`` arguments (docs/dev/host-scripts.md)."""
        return {"stores": list(self.stores), "chain_stores": list(self.chain_stores), "winhttp": self.include_winhttp}


def _store_names(values: t.Iterable[t.Any], field: str, taken: t.Collection[str] = ()) -> tuple[str, ...]:
    # Store names are case-insensitive on Windows; keep the first spelling, drop repeats.
    seen = {name.casefold() for name in taken}
    names = []
    for value in values:
        if not isinstance(value, str) or not _STORE_NAME.match(value):
            raise ValueError(f"{field}: {value!r} is not a certificate store name (letters, digits, space, . _ -)")
        if value.casefold() not in seen:
            seen.add(value.casefold())
            names.append(value)
    return tuple(names)


# The options validate_options reads.
_OPTIONS_READ = ("cert_stores", "chain_stores", "cert_thumbprints", "cert_subject", "cert_ekus", "expiry_warning_days",
                 "include_winhttp")


def validate_options(args: t.Mapping[str, t.Any]) -> CertRevocationOptions:
    """Check the module options beyond their types; errors name the option and the value.

    An option left out takes its documented default (callers such as the fix_crl run pass only some).
    """
    if not all(name in args for name in _OPTIONS_READ):
        # Only then: the defaults come from the module's documentation, which a worker that has not read it yet
        # parses (about 1.4 ms); the fix_crl run and the module's action pass every option.
        args = {**module_defaults(MODULE), **args}
    stores = _store_names(args.get("cert_stores") or [], "cert_stores")
    if not stores:
        raise ValueError("cert_stores: at least one store name is required")
    chain_stores = _store_names(args.get("chain_stores") or [], "chain_stores", taken=stores)
    days = args["expiry_warning_days"]
    if days is None or days < 0:
        raise ValueError(f"expiry_warning_days: must be 0 or more, got {days!r}")
    certificate_filter = CertificateFilter(
        thumbprints=frozenset(normalize_thumbprint(v, field="cert_thumbprints") for v in args.get("cert_thumbprints")
                              or ()),
        subject=compile_subject_pattern(args.get("cert_subject"), field="cert_subject"),
        ekus=frozenset(eku_oid(v, field="cert_ekus") for v in args.get("cert_ekus") or ()),
    )
    return CertRevocationOptions(stores, chain_stores, certificate_filter, int(days),
                                 bool(args["include_winhttp"]))


def empty_result() -> dict[str, t.Any]:
    """Every documented return key, empty: what a failed task still carries."""
    return {
        "changed": False, "computer_name": None, "checked_at": None, "certificates": [], "endpoints": [],
        "flags": {name: [] for name in FLAG_NAMES}, "missing_stores": [], "unparsable_certificates": [],
        "store_counts": {}, "trust_store": None, "winhttp": None,
    }


def _winhttp_document(value: t.Any) -> dict[str, t.Any]:
    # Get-CrlfixWinHttpState may hand back the body without the header keys; the result always
    # carries the full winhttp_state document so consumers can treat both sources alike.
    if not isinstance(value, dict):
        raise ValueError(f"host script {SCRIPT}: winhttp must be the winhttp_state document, got {value!r:.80}")
    document = {"script": "winhttp_state", "schema": 1, **value}
    known = SUPPORTED_SCHEMAS["winhttp_state"]
    if document["script"] != "winhttp_state" or document["schema"] not in known:
        raise ValueError(f"host script {SCRIPT}: winhttp holds script={document['script']!r} "
                         f"schema={document['schema']!r}, expected winhttp_state schema {sorted(known)}")
    return document


def _store_entries(document: t.Mapping[str, t.Any]) -> dict[str, list[t.Any]]:
    """Store name -> entries ``{der_b64, has_private_key}``; schema 2 sends each certificate once, in
    ``certificates``, and the entries name it by index (``cert``): resolved here, so both read alike."""
    stores = document.get("stores")
    if not isinstance(stores, dict):
        raise ValueError(f"host script {SCRIPT}: 'stores' must be an object, got {stores!r:.80}")
    for name, entries in stores.items():
        if not isinstance(entries, list):
            # A hand-written twin or an old script could send a bare object; refuse rather than guess.
            raise ValueError(f"host script {SCRIPT}: stores.{name} must be a list, got {entries!r:.80}")
    if document.get("schema", 1) == 1:
        return stores
    shared = document.get("certificates")
    if not isinstance(shared, list):
        raise ValueError(f"host script {SCRIPT}: 'certificates' must be a list, got {shared!r:.80}")
    resolved: dict[str, list[t.Any]] = {}
    for name, entries in stores.items():
        resolved[name] = []
        for index, entry in enumerate(entries):
            ref = entry.get("cert") if isinstance(entry, dict) else None
            if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(shared):
                raise ValueError(f"host script {SCRIPT}: stores.{name}[{index}].cert: {ref!r} is not an index of "
                                 f"'certificates' ({len(shared)} of them)")
            resolved[name].append({"der_b64": shared[ref], "has_private_key": entry.get("has_private_key", False)})
    return resolved


def summarise_inventory(
    document: t.Mapping[str, t.Any], options: CertRevocationOptions, *, now: datetime.datetime, keep_der: bool = False
) -> dict[str, t.Any]:
    """Turn a checked ``cert_inventory`` document into the module result (pure). ``keep_der`` adds ``der`` (thumbprint
    to DER bytes), for a caller that checks what the endpoints serve against the certificates (not a result key)."""
    stores = _store_entries(document)
    by_name = {name.casefold(): name for name in stores}
    parsed: dict[str, list[StoreCertificate]] = {}
    ders: dict[str, bytes] = {}
    unparsable: list[dict[str, t.Any]] = []
    for name, entries in stores.items():
        parsed[name] = []
        for index, entry in enumerate(entries):
            field = f"stores.{name}[{index}]"
            der_b64 = entry.get("der_b64") if isinstance(entry, dict) else None
            try:
                der = base64.b64decode(der_b64 or "", validate=True)
            except (binascii.Error, ValueError, TypeError):
                der = b""
            if not der:
                unparsable.append({"store": name, "index": index, "thumbprint": None,
                                   "error": f"{field}: der_b64 missing or not base64"})
                continue
            try:
                info = certificate_info(der, field=field)
            except CertificateParseError as exc:
                # One odd certificate in a store must not hide the rest of the host's picture.
                unparsable.append({"store": name, "index": index, "error": str(exc),
                                   "thumbprint": hashlib.sha1(der).hexdigest().upper()})
                continue
            parsed[name].append(StoreCertificate(info, name, bool(entry.get("has_private_key", False))))
            ders[info.thumbprint] = der

    def unique(names: t.Iterable[str]) -> list[StoreCertificate]:
        seen: set[str] = set()
        out = []
        for wanted in names:
            for cert in parsed.get(by_name.get(wanted.casefold(), wanted), []):
                if cert.info.thumbprint not in seen:
                    seen.add(cert.info.thumbprint)
                    out.append(cert)
        return out

    targets = [c for c in unique(options.stores) if options.certificate_filter.matches(c.info)]
    pool = unique(options.stores + options.chain_stores)
    summary = summarise_certificates(targets, pool, now=now, expiry_warning_days=options.expiry_warning_days)
    winhttp = None
    if options.include_winhttp:
        winhttp = _winhttp_document(document.get("winhttp"))
    missing = document.get("missing_stores") or []
    root = parsed.get(by_name.get("root", "Root"), [])
    return {
        **empty_result(),
        **summary,
        "computer_name": document.get("computer_name"),
        "checked_at": iso_utc(now),
        "missing_stores": list(missing) if isinstance(missing, list) else [missing],
        "unparsable_certificates": unparsable,
        "store_counts": {name: len(entries) for name, entries in stores.items()},
        "trust_store": trust_store_facts(root) if by_name.get("root") else None,
        "winhttp": winhttp,
        **({"der": ders} if keep_der else {}),
    }


def trust_store_facts(root: t.Sequence[StoreCertificate]) -> dict[str, t.Any]:
    """What the Root store says about the host's TLS: its size as Schannel's trusted issuer list (each subject name's
    DER with its two-byte length, RFC 5246 7.4.4 ``certificate_authorities``), and its entries that are not roots
    (issuer not the subject, or not self-signed)."""
    return {"count": len(root), "issuer_list_bytes": sum(cert.info.subject_bytes + 2 for cert in root),
            "non_self_signed": [{"subject": cert.info.subject, "issuer": cert.info.issuer,
                                 "thumbprint": cert.info.thumbprint} for cert in root if not cert.info.self_signed]}


def gather_cert_revocation_info(
    connection: ConnectionBase, args: t.Mapping[str, t.Any], *, task_action: str,
    now: datetime.datetime | None = None,
) -> dict[str, t.Any]:
    """Validate ``args``, run ``cert_inventory`` once and summarise.

    Raises:
        ExpectedFailure: bad options, missing ``cryptography``, or a host answer we cannot use; the
            result still carries every documented key.
        AnsibleConnectionFailure: the transport failed (the host is reported unreachable).
    """
    try:
        require_cryptography()
        options = validate_options(args)
    except MissingCryptographyError as exc:
        raise ExpectedFailure(str(exc), **empty_result(), exception=exc.traceback) from None
    except ValueError as exc:
        raise ExpectedFailure(str(exc), **empty_result()) from None
    try:
        document = run_host_script(connection, SCRIPT, options.script_args(), task_action=task_action)
    except HostScriptError as exc:
        raise ExpectedFailure(str(exc), **empty_result(), **exc.fields) from None
    try:
        return summarise_inventory(document, options, now=now or datetime.datetime.now(datetime.UTC))
    except ValueError as exc:
        raise ExpectedFailure(str(exc), **empty_result(), exception=traceback.format_exc()) from None


__all__ = ["MODULE", "SCRIPT", "CertRevocationOptions", "empty_result", "gather_cert_revocation_info",
           "summarise_inventory", "validate_options"]
