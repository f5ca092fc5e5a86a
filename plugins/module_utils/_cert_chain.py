# PRIVATE to the crlfix.windows collection; may change without notice.
"""Build certificate chains on the controller and summarise which revocation endpoints a host needs.

Pure: takes described certificates (:class:`CertificateInfo` plus where they
were found) and returns plain data. The chain is built the way CryptoAPI
matches an issuer: the issuer name of the child equals the subject name of the
parent and, when both are present, the Authority Key Identifier of the child
equals the Subject Key Identifier of the parent. When several certificates fit
(a renewed CA with the same key), the one valid now and then the newest wins,
as CryptoAPI's chain engine prefers.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t
from urllib.parse import urlsplit

from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import (
    ANY_EKU,
    CertificateInfo,
    RevocationEndpoints,
    iso_utc,
)

# Deeper chains do not occur in practice; the bound only stops pathological cross-certification loops.
MAX_CHAIN_LENGTH = 10
# certlm.msc's copy of a thumbprint starts with an invisible LEFT-TO-RIGHT MARK (U+200E); pasted
# into a playbook it would never match, so it is dropped with the whitespace.
_THUMBPRINT_JUNK = re.compile(r"[\s\u200e\u200f\ufeff:]")
_HEX40 = re.compile(r"^[0-9A-F]{40}$")
# The findings reported per certificate and, as thumbprint lists, per host.
FLAG_NAMES: tuple[str, ...] = ("expired", "expiring_soon", "ldap_only", "no_endpoints", "chain_incomplete")


@dataclasses.dataclass(frozen=True)
class StoreCertificate:
    """A certificate as the host's ``Cert:\\LocalMachine`` stores hold it."""

    info: CertificateInfo
    store: str
    has_private_key: bool = False


@dataclasses.dataclass(frozen=True)
class Chain:
    """``elements`` run from the certificate itself towards the root.

    ``complete`` is true when the last element is self-signed; otherwise
    ``problem`` says why building stopped (the issuer that was not found).
    """

    elements: tuple[StoreCertificate, ...]
    complete: bool
    problem: str | None = None

    @property
    def non_root(self) -> tuple[StoreCertificate, ...]:
        """The elements whose revocation Windows checks (a root is trusted as such, never checked)."""
        return tuple(e for e in self.elements if not e.info.self_signed)


@dataclasses.dataclass(frozen=True)
class CertificateFilter:
    """Which certificates to report; every given criterion must hold (an empty filter takes all)."""

    thumbprints: frozenset[str] = frozenset()
    subject: re.Pattern[str] | None = None
    ekus: frozenset[str] = frozenset()

    def matches(self, info: CertificateInfo) -> bool:
        if self.thumbprints and info.thumbprint not in self.thumbprints:
            return False
        if self.subject is not None and not self.subject.search(info.subject):
            return False
        if self.ekus and info.ekus is not None and ANY_EKU not in info.ekus:
            # No EKU extension means "all purposes" to Windows, so such a certificate always matches.
            return bool(self.ekus.intersection(info.ekus))
        return True


def normalize_thumbprint(value: t.Any, *, field: str = "thumbprints") -> str:
    """Upper-case 40-hex-digit thumbprint; spaces, colons and certlm.msc's hidden U+200E are ignored."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a SHA-1 thumbprint string, got {value!r}")
    text = _THUMBPRINT_JUNK.sub("", value).upper()
    if not _HEX40.match(text):
        raise ValueError(f"{field}: {value!r} is not a SHA-1 thumbprint (40 hexadecimal digits)")
    return text


def compile_subject_pattern(value: str | None, *, field: str = "subject") -> re.Pattern[str] | None:
    """The ``subject`` option: a case-insensitive regular expression searched in the subject.

    A plain substring such as ``CN=lync`` works as is; ``.`` matches any
    character, which only ever widens a match.
    """
    if value is None or value == "":
        return None
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{field}: {value!r} is not a valid regular expression ({exc})") from None


def _validity_rank(info: CertificateInfo, now: datetime.datetime) -> tuple[bool, datetime.datetime, datetime.datetime]:
    return (info.not_before <= now <= info.not_after, info.not_before, info.not_after)


def find_issuer(child: CertificateInfo, pool: t.Sequence[StoreCertificate],
                now: datetime.datetime) -> StoreCertificate | None:
    """The best issuer of ``child`` in ``pool``, or ``None``."""
    candidates = [
        cand for cand in pool
        if cand.info.thumbprint != child.thumbprint
        and cand.info.subject_key == child.issuer_key
        and (child.aki is None or cand.info.ski is None or child.aki == cand.info.ski)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda cand: _validity_rank(cand.info, now))


def build_chain(leaf: StoreCertificate, pool: t.Sequence[StoreCertificate], *, now: datetime.datetime) -> Chain:
    """Walk from ``leaf`` to a self-signed root through ``pool`` (the host's stores)."""
    elements = [leaf]
    seen = {leaf.info.thumbprint}
    while True:
        current = elements[-1].info
        if current.self_signed:
            return Chain(tuple(elements), complete=True)
        if len(elements) >= MAX_CHAIN_LENGTH:
            return Chain(tuple(elements), complete=False, problem=f"chain longer than {MAX_CHAIN_LENGTH} certificates")
        issuer = find_issuer(current, pool, now)
        if issuer is None:
            key = f" with key identifier {current.aki}" if current.aki else ""
            return Chain(tuple(elements), complete=False,
                         problem=f"issuer {current.issuer!r}{key} not found in the stores read")
        if issuer.info.thumbprint in seen:
            return Chain(tuple(elements), complete=False,
                         problem=f"issuer loop at {issuer.info.thumbprint} ({issuer.info.subject!r})")
        seen.add(issuer.info.thumbprint)
        elements.append(issuer)


def url_scheme(url: str) -> str:
    """``http``, ``https``, ``ldap``, ``file``…; ``""`` when the URL has none."""
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def _is_ldap_only(endpoints: RevocationEndpoints) -> bool:
    return bool(endpoints.crl) and all(url_scheme(url) in ("ldap", "ldaps") for url in endpoints.crl)


def summarise_certificates(
    targets: t.Sequence[StoreCertificate],
    pool: t.Sequence[StoreCertificate],
    *,
    now: datetime.datetime,
    expiry_warning_days: int,
) -> dict[str, t.Any]:
    """Chains, endpoints and flags for ``targets``; chain issuers come from ``pool``.

    Returns ``{"certificates": [...], "endpoints": [...], "flags": {...}}`` as
    documented in ``cert_revocation_info``'s RETURN. Endpoints are
    de-duplicated by ``(kind, url)`` in the order first met.
    """
    warning = datetime.timedelta(days=expiry_warning_days)
    certificates: list[dict[str, t.Any]] = []
    endpoints: dict[tuple[str, str], dict[str, t.Any]] = {}
    flags: dict[str, list[str]] = {name: [] for name in FLAG_NAMES}
    for target in targets:
        info = target.info
        chain = build_chain(target, pool, now=now)
        element_endpoints = []
        for element in chain.non_root:
            eps = element.info.endpoints
            element_endpoints.append({"thumbprint": element.info.thumbprint, "subject": element.info.subject,
                                      **eps.as_dict()})
            for kind in RevocationEndpoints.KINDS:
                for url in getattr(eps, kind):
                    entry = endpoints.setdefault((kind, url), {"url": url, "kind": kind, "scheme": url_scheme(url),
                                                               "certificates": [], "carried_by": []})
                    if info.thumbprint not in entry["certificates"]:
                        entry["certificates"].append(info.thumbprint)
                    if element.info.thumbprint not in entry["carried_by"]:
                        entry["carried_by"].append(element.info.thumbprint)
        cert_flags = {
            "expired": now > info.not_after,
            "expiring_soon": info.not_after >= now and info.not_after - now <= warning,
            "ldap_only": any(_is_ldap_only(e.info.endpoints) for e in chain.non_root),
            "no_endpoints": all(e.info.endpoints.is_empty() for e in chain.non_root),
            "chain_incomplete": not chain.complete,
        }
        for name, value in cert_flags.items():
            if value:
                flags[name].append(info.thumbprint)
        certificates.append({
            "subject": info.subject,
            "issuer": info.issuer,
            "thumbprint": info.thumbprint,
            "serial": info.serial,
            "store": target.store,
            "has_private_key": target.has_private_key,
            "not_before": iso_utc(info.not_before),
            "not_after": iso_utc(info.not_after),
            "days_remaining": int((info.not_after - now).total_seconds() // 86400),
            "ekus": None if info.ekus is None else list(info.ekus),
            "chain": [{"subject": e.info.subject, "thumbprint": e.info.thumbprint, "is_root": e.info.self_signed,
                       "store": e.store, "not_after": iso_utc(e.info.not_after)} for e in chain.elements],
            "chain_complete": chain.complete,
            "chain_problem": chain.problem,
            "endpoints": element_endpoints,
            "flags": cert_flags,
        })
    return {"certificates": certificates, "endpoints": list(endpoints.values()), "flags": flags}


__all__ = [
    "FLAG_NAMES",
    "MAX_CHAIN_LENGTH",
    "CertificateFilter",
    "Chain",
    "StoreCertificate",
    "build_chain",
    "compile_subject_pattern",
    "find_issuer",
    "normalize_thumbprint",
    "summarise_certificates",
    "url_scheme",
]
