"""host_audit's OCSP requests, as ``host_audit.ps1`` makes them (``Get-CrlfixOcspRequests``, docs/dev/host-scripts.md).

Each OCSP responder the chain walk finds (a certificate's AIA id-ad-ocsp URI; the walk in ``Get-CrlfixChainUris``'
order: the target stores' certificates, then their issuers) is asked about the first certificate that names it and
whose issuer is in the stores: ``GET <responder>/<url-encoding of the base64 of the DER OCSPRequest>`` (RFC 6960
Appendix A.1), CertID by SHA-1 (RFC 5019 2.1.1). The script builds the DER by hand; the twin builds it with
cryptography's ``OCSPRequestBuilder`` (the same DER for the same inputs: DER is canonical), so the twin is a reference
for the request, not a copy of the script's code. The result of such a URL carries ``location``, the responder it
asked.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

MAX_WALK = 64  # the script's bound on the certificates it walks


def request_url(responder: str, certificate: x509.Certificate, issuer: x509.Certificate) -> str:
    der = (ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
           .public_bytes(serialization.Encoding.DER))
    return responder.rstrip("/") + "/" + quote(base64.b64encode(der).decode("ascii"), safe="")


def _ocsp_uris(certificate: x509.Certificate) -> list[str]:
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def requests(ders: dict[str, list[bytes]], stores: list[str]) -> dict[str, str]:
    """Responder URL -> the GET URL asking it, for the certificates of the stores read (store name -> their DER)."""
    wanted = {name.casefold() for name in stores}
    targets: list[x509.Certificate] = []
    pool: list[x509.Certificate] = []
    for name, entries in ders.items():
        for der in entries:
            try:
                certificate = x509.load_der_x509_certificate(der)
            except ValueError:
                continue
            pool.append(certificate)
            if name.casefold() in wanted:
                targets.append(certificate)
    found: dict[str, str] = {}
    walk, seen, index = list(targets), set(), 0
    while index < min(len(walk), MAX_WALK):  # grows while it is walked, as the script's for loop
        certificate, index = walk[index], index + 1
        if certificate in seen or certificate.subject == certificate.issuer:
            continue
        seen.add(certificate)
        issuers = [c for c in pool if c.subject == certificate.issuer]
        walk.extend(issuers)
        for responder in _ocsp_uris(certificate) if issuers else []:
            if responder.lower().startswith(("http://", "https://")) and responder not in found:
                found[responder] = request_url(responder, certificate, issuers[0])
    return found


def prepare(ders: dict[str, list[bytes]], stores: list[str], crl: dict[str, Any] | None) -> dict[str, str]:
    """:func:`requests` when host_audit's ``crl.ocsp_requests`` asks for them (default false), else none."""
    return requests(ders, stores) if (crl or {}).get("ocsp_requests") else {}


def asked(urls: list[str], found: dict[str, str]) -> list[str]:
    """The URLs to fetch: a responder's request in its place."""
    return [found.get(url, url) for url in urls]


def locate(crl: Any, urls: list[str], found: dict[str, str]) -> None:
    """Each result's ``location``: the responder a request URL asked, else null (``results`` align with ``urls``)."""
    if not isinstance(crl, dict) or not isinstance(crl.get("results"), list):
        return
    for result, url in zip(crl["results"], urls, strict=False):
        result["location"] = url if url in found else None


__all__ = ["asked", "locate", "prepare", "request_url", "requests"]
