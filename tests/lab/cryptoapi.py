"""CryptoAPI's revocation retrieval on a Windows host, as the twin's ``crl_fetch`` and ``tls_probe`` use it.

What is modelled (sources in tests/lab/README.md):

- Retrieval goes through WinHTTP with the *machine* proxy (``tests.lab.winhttp``), per-URL timeout (Windows
  default 15 s) and a cumulative timeout for all revocation URLs of one chain (default 20 s); once the
  cumulative budget is spent, the remaining elements are checked from the cache only.
- ``ldap://`` URLs are fetched by wldap32, never through the WinHTTP proxy. ``ldap:///...`` (no host, the AD CS
  default) is looked up in the host's own domain, where the lab's public CA has no object: it fails at once
  with CRYPT_E_NOT_FOUND. An ldap URL naming a host is a direct connection under the outbound policy.
- The URL cache (``certutil -urlcache``): a CRL is kept until its NextUpdate and served from the cache until
  then, a CA certificate until its NotAfter. Failures are not cached (cryptnet's offline-URL back-off is not
  modelled). The cache is a plain JSON-able dict ``{url: entry}`` that the twin stores in its host state.
- Chain check like ``CertGetCertificateChain`` with ``CERT_CHAIN_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT``
  (Schannel's default): every element but the root, CDP URLs in certificate order until one yields a valid
  CRL signed by the issuer; a Freshest CRL (delta) pointer in the certificate or base CRL must be satisfied too.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from tests.lab.winhttp import (
    DEFAULT_POLICY,
    ERROR_WINHTTP_TIMEOUT,
    USER_AGENT,
    OutboundPolicy,
    WinHttpProxy,
    blackhole_wait,
    http_get,
    resolve,
)

DEFAULT_URL_TIMEOUT = 15.0  # ChainUrlRetrievalTimeoutMilliseconds default
DEFAULT_CHAIN_TIMEOUT = 20.0  # ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds default

CRYPT_E_NOT_FOUND = "CRYPT_E_NOT_FOUND (0x80092004): Cannot find object or property"
CRYPT_E_REVOCATION_OFFLINE = (
    "CRYPT_E_REVOCATION_OFFLINE (0x80092013): The revocation function was unable to "
    "check revocation because the revocation server was offline"
)
CRYPT_E_REVOKED = "CRYPT_E_REVOKED (0x80092010): The certificate is revoked"

# CERT_TRUST_STATUS.dwErrorStatus bits (wincrypt.h).
CERT_TRUST_IS_REVOKED = 0x00000004
CERT_TRUST_REVOCATION_STATUS_UNKNOWN = 0x00000040
CERT_TRUST_IS_OFFLINE_REVOCATION = 0x01000000

STATUS_OK, STATUS_REVOKED, STATUS_OFFLINE = "ok", "revoked", "revocation_offline"


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def load_crl(content: bytes) -> x509.CertificateRevocationList:
    """DER or PEM CRL (CryptoAPI accepts both); ValueError otherwise."""
    try:
        return x509.load_der_x509_crl(content)
    except ValueError:
        return x509.load_pem_x509_crl(content)


def describe_content(content: bytes) -> dict:
    """What a retrieved body is: ``kind`` (crl, delta_crl, cert or None), this/next update, CRL number, issuer."""
    info = {"kind": None, "this_update": None, "next_update": None, "crl_number": None, "issuer": None}
    try:
        crl = load_crl(content)
    except ValueError:
        crl = None
    if crl is not None:
        exts = {e.oid: e.value for e in crl.extensions}
        number = exts.get(x509.CRLNumber.oid)
        info.update(
            kind="delta_crl" if x509.DeltaCRLIndicator.oid in exts else "crl",
            this_update=_iso(crl.last_update_utc),
            next_update=_iso(crl.next_update_utc),
            crl_number=number.crl_number if number else None,
            issuer=crl.issuer.rfc4514_string(),
        )
        return info
    for loader in (x509.load_der_x509_certificate, x509.load_pem_x509_certificate):
        try:
            cert = loader(content)
        except ValueError:
            continue
        info.update(
            kind="cert",
            this_update=_iso(cert.not_valid_before_utc),
            next_update=_iso(cert.not_valid_after_utc),
            issuer=cert.issuer.rfc4514_string(),
        )
        return info
    return info


# -- URL cache ---------------------------------------------------------------------------------------------
def cache_store(cache: dict, url: str, content: bytes, now: dt.datetime | None = None) -> bool:
    """Keep a retrieved CRL (until NextUpdate) or certificate (until NotAfter); other bodies are not cached."""
    info = describe_content(content)
    if info["kind"] is None or info["next_update"] is None:
        return False
    cache[url] = {
        "content_b64": base64.b64encode(content).decode("ascii"),
        "kind": info["kind"],
        "this_update": info["this_update"],
        "next_update": info["next_update"],
        "fetched": _iso(_now(now)),
    }
    return True


def cache_lookup(cache: dict, url: str, now: dt.datetime | None = None) -> bytes | None:
    """The cached body for ``url`` while ``now`` is before its NextUpdate; None when absent or expired."""
    entry = cache.get(url)
    if not entry:
        return None
    next_update = dt.datetime.fromisoformat(entry["next_update"].replace("Z", "+00:00"))
    if _now(now) >= next_update:
        return None
    return base64.b64decode(entry["content_b64"])


def purge_cache(cache: dict) -> int:
    """``certutil -urlcache * delete``: drop every entry; returns how many there were."""
    count = len(cache)
    cache.clear()
    return count


# -- retrieval ---------------------------------------------------------------------------------------------
def retrieve(
    url: str,
    *,
    proxy: WinHttpProxy,
    names: dict[str, str],
    timeout: float = DEFAULT_URL_TIMEOUT,
    policy: OutboundPolicy | None = None,
    cancel: threading.Event | None = None,
    user_agent: str = USER_AGENT,
) -> dict:
    """Wire retrieval of one CDP/AIA URL as cryptnet does it (HTTP via WinHTTP; LDAP direct, never proxied).

    Result keys: ``url, via, reachable, http_status, elapsed_ms, bytes, content, error``; the caller adds
    ``describe_content(content)`` when it needs to know what came back.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "ldap":
        return _retrieve_ldap(url, names, timeout, policy or DEFAULT_POLICY, cancel)
    return http_get(url, proxy=proxy, names=names, timeout=timeout, policy=policy, cancel=cancel,
                    user_agent=user_agent)


def retrieval_report(url: str, *, now: dt.datetime | None = None, cache: dict | None = None, **retrieval: Any) -> dict:
    """``retrieve`` (``retrieval``: its keywords) plus what ``certutil -urlfetch`` tells about the body, as JSON.

    Adds ``parsed`` (a CRL or certificate came back), ``kind``, ``this_update``, ``next_update``,
    ``crl_number``, ``stale`` (NextUpdate already passed; None when nothing parsed) and drops ``content``.
    A parsed body is stored in ``cache`` when one is given (a wire retrieval refreshes the URL cache).
    """
    result = retrieve(url, **retrieval)
    content = result.pop("content")
    result.pop("headers", None)
    info = describe_content(content) if result["http_status"] == 200 else describe_content(b"")
    info.pop("issuer")
    result.update(info, parsed=info["kind"] is not None, stale=None)
    if result["http_status"] == 200 and not result["parsed"]:
        result["error"] = "retrieved object is neither a CRL nor a certificate"
    if info["next_update"]:
        next_update = dt.datetime.fromisoformat(info["next_update"].replace("Z", "+00:00"))
        result["stale"] = _now(now) >= next_update
        if result["stale"] and not result["error"]:
            result["error"] = f"stale: NextUpdate {info['next_update']} has passed"
    if cache is not None and result["parsed"] and not result["stale"]:
        cache_store(cache, url, content, now)
    return result


def _retrieve_ldap(
    url: str, names: dict[str, str], timeout: float, policy: OutboundPolicy, cancel: threading.Event | None
) -> dict:
    started = time.monotonic()
    host = urlsplit(url).hostname
    result = {"url": url, "via": "direct", "reachable": False, "http_status": None, "bytes": 0, "content": b"",
              "headers": {}}
    if not host:
        result["error"] = (
            f"{CRYPT_E_NOT_FOUND}: ldap URL without a host is looked up in the host's own domain, "
            "which has no such object (the WinHTTP proxy is never used for LDAP)"
        )
    else:
        address = resolve(host, names)
        if address is not None and not policy.reachable(address):
            blackhole_wait(timeout, cancel)
            result["error"] = f"{ERROR_WINHTTP_TIMEOUT}: LDAP connection to {host} (never proxied)"
        else:
            result["error"] = f"{CRYPT_E_NOT_FOUND}: LDAP retrieval from {host} is not modelled by the lab"
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return result


# -- chain check -------------------------------------------------------------------------------------------
def _uris(ext_value) -> list[str]:
    return [n.value for dp in ext_value for n in (dp.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]


def _ext(obj, cls):
    try:
        return obj.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _find_issuer(cert: x509.Certificate, chain: list[x509.Certificate]) -> x509.Certificate:
    for candidate in chain:
        if candidate.subject == cert.issuer:
            return candidate
    raise ValueError(
        f"chain_ders: the issuer {cert.issuer.rfc4514_string()!r} of "
        f"{cert.subject.rfc4514_string()!r} is not in the chain"
    )


class _ChainRetriever:
    """Fetches CRLs for one chain within the cumulative budget, cache first."""

    def __init__(self, proxy, names, cache, now, per_url_timeout, total_timeout, policy, cancel,
                 offline=frozenset()) -> None:
        self.proxy, self.names, self.cache, self.now = proxy, names, cache, now
        self.offline = offline
        self.per_url, self.policy, self.cancel = per_url_timeout, policy, cancel
        self.deadline = time.monotonic() + total_timeout
        self.retrievals: list[dict] = []

    def crl_from(self, urls: list[str], issuer: x509.Certificate, want_delta: bool):
        """The first valid CRL (signed by ``issuer``, current) among ``urls``, or None."""
        for url in urls:
            content = cache_lookup(self.cache, url, self.now)
            record = {"url": url, "from_cache": content is not None}
            if content is not None:
                record.update(via=None, reachable=None, http_status=None, elapsed_ms=0, bytes=len(content), error=None)
            elif url in self.offline:
                # On the process's offline list (its back-off not over): fails at once, no wire attempt.
                record.update(via=None, offline_list=True, http_status=None, elapsed_ms=0,
                              error="offline: the URL's back-off has not ended")
                self.retrievals.append(record)
                continue
            else:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    record.update(via=None, error="cumulative retrieval timeout spent: cache only", elapsed_ms=0)
                    self.retrievals.append(record)
                    continue
                fetched = retrieve(
                    url,
                    proxy=self.proxy,
                    names=self.names,
                    timeout=min(self.per_url, remaining),
                    policy=self.policy,
                    cancel=self.cancel,
                )
                content = fetched.pop("content")
                fetched.pop("headers", None)  # a chain's retrieval record keeps what CAPI2 would log, not headers
                record.update(fetched)
                if fetched["http_status"] != 200:
                    self.retrievals.append(record)
                    continue
            crl, problem = self._validate(content, issuer, want_delta)
            record["error"] = problem if problem else record.get("error")
            self.retrievals.append(record)
            if crl is not None:
                if not record["from_cache"]:
                    cache_store(self.cache, url, content, self.now)
                return crl
        return None

    def _validate(self, content: bytes, issuer: x509.Certificate, want_delta: bool):
        try:
            crl = load_crl(content)
        except ValueError:
            return None, "retrieved object is not a CRL"
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
            return None, "CRL signature does not verify against the issuer"
        if crl.next_update_utc is not None and crl.next_update_utc <= self.now:
            return None, f"CRL expired at {_iso(crl.next_update_utc)} (stale)"
        if crl.last_update_utc > self.now:
            # A host whose clock is behind the CA's: CertVerifyCRLTimeValidity answers -1 (the time is before
            # ThisUpdate), and the CRL is not time-valid (Microsoft Learn, CertVerifyCRLTimeValidity).
            return None, f"CRL not yet valid: ThisUpdate {_iso(crl.last_update_utc)}"
        if (_ext(crl, x509.DeltaCRLIndicator) is not None) != want_delta:
            return None, "delta CRL where a base CRL was expected" if not want_delta else "base CRL at delta URL"
        return crl, None


def check_chain_revocation(
    chain_ders: list[bytes],
    *,
    proxy: WinHttpProxy,
    names: dict[str, str],
    cache: dict,
    now: dt.datetime | None = None,
    per_url_timeout: float = DEFAULT_URL_TIMEOUT,
    total_timeout: float = DEFAULT_CHAIN_TIMEOUT,
    policy: OutboundPolicy | None = None,
    cancel: threading.Event | None = None,
    offline: frozenset[str] = frozenset(),
) -> dict:
    """Revocation status of a chain (leaf first) as CryptoAPI computes it; updates ``cache`` in place.

    ``offline``: URLs the calling process holds on its offline list (tests/twin/service_process.py): they fail at once.

    Returns ``status`` (ok / revoked / revocation_offline), ``error_status`` (CERT_TRUST_* bits of the whole
    chain), ``trust_status`` (their names), ``elapsed_ms``, ``elements`` (per certificate: subject, status,
    crl_url) and ``retrievals`` (per URL tried: from_cache, via, http_status, elapsed_ms, bytes, error).
    """
    if per_url_timeout <= 0 or total_timeout <= 0:
        raise ValueError(f"per_url_timeout/total_timeout: must be positive, got {per_url_timeout!r}/{total_timeout!r}")
    started = time.monotonic()
    certs = [x509.load_der_x509_certificate(der) for der in chain_ders]
    if not certs:
        raise ValueError("chain_ders: empty chain")
    now = _now(now)
    fetcher = _ChainRetriever(proxy, names, cache, now, per_url_timeout, total_timeout, policy, cancel,
                              frozenset(offline))
    elements, error_status = [], 0
    for cert in certs:
        if cert.subject == cert.issuer:
            continue  # the root: CERT_CHAIN_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT
        issuer = _find_issuer(cert, certs)
        element = {"subject": cert.subject.rfc4514_string(), "status": STATUS_OFFLINE, "crl_url": None}
        cdp = _ext(cert, x509.CRLDistributionPoints)
        base = fetcher.crl_from(_uris(cdp) if cdp else [], issuer, want_delta=False)
        crls = [base] if base is not None else []
        if base is not None:
            element["crl_url"] = fetcher.retrievals[-1]["url"]
            freshest = _ext(cert, x509.FreshestCRL) or _ext(base, x509.FreshestCRL)
            if freshest is not None:
                delta = fetcher.crl_from(_uris(freshest), issuer, want_delta=True)
                crls = crls + [delta] if delta is not None else []
        if crls and any(c.get_revoked_certificate_by_serial_number(cert.serial_number) for c in crls):
            element["status"] = STATUS_REVOKED
            error_status |= CERT_TRUST_IS_REVOKED
        elif crls:
            element["status"] = STATUS_OK
        else:
            error_status |= CERT_TRUST_REVOCATION_STATUS_UNKNOWN | CERT_TRUST_IS_OFFLINE_REVOCATION
        elements.append(element)
    if error_status & CERT_TRUST_IS_REVOKED:
        status = STATUS_REVOKED
    elif error_status:
        status = STATUS_OFFLINE
    else:
        status = STATUS_OK
    names_of_bits = [
        n
        for n, bit in (
            ("CERT_TRUST_IS_REVOKED", CERT_TRUST_IS_REVOKED),
            ("CERT_TRUST_REVOCATION_STATUS_UNKNOWN", CERT_TRUST_REVOCATION_STATUS_UNKNOWN),
            ("CERT_TRUST_IS_OFFLINE_REVOCATION", CERT_TRUST_IS_OFFLINE_REVOCATION),
        )
        if error_status & bit
    ]
    return {
        "status": status,
        "error_status": error_status,
        "trust_status": names_of_bits,
        "elapsed_ms": int((time.monotonic() - started) * 1000),
        "elements": elements,
        "retrievals": fetcher.retrievals,
    }
