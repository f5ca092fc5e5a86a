# PRIVATE to the crlfix.windows collection; may change without notice.
"""Revocation endpoints as the collection accepts them: one URL checked (``validate_url``), a user's list
normalised (``normalize_endpoints``: a bad entry refuses the list) and a certificate's URLs split into the ones to
fetch and the malformed ones, each with its reason (``partition_endpoints``: one bad URL in a store hides nothing
else). The same rules guard every URL that reaches a host script's arguments.
"""

from __future__ import annotations

import dataclasses
import typing as t
from urllib.parse import urlsplit

KINDS: tuple[str, ...] = ("crl", "delta_crl", "ocsp", "ca_issuers")
SCHEMES: tuple[str, ...] = ("http", "https", "ldap")
_UNSAFE_URL_CHARS = frozenset('"<>\\^`{|}')


class EndpointError(ValueError):
    """An option value is not acceptable; the message names the field and the value."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A URL to fetch and what it should serve. From a certificate's chain it may carry, unchecked by equality, the
    DER of the certificate that must have signed what it serves (``issuer``)."""

    url: str
    kind: str | None
    issuer: bytes | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def scheme(self) -> str:
        return self.url.split(":", 1)[0].lower()


def validate_url(value: t.Any, *, field: str) -> str:
    """Return ``value`` if it is an http, https or ldap URL without whitespace or control characters.

    The one exception: plain spaces are accepted in LDAP URLs, which are reported but never fetched.
    """
    if not isinstance(value, str) or not value:
        raise EndpointError(f"{field}: expected a URL string, got {value!r}")
    # An LDAP URL may hold plain spaces (CN=Public Key Services, as some certificates carry it unescaped);
    # it is never fetched, so only control characters matter there.
    is_ldap = value[:5].lower() == "ldap:"
    bad = [ch for ch in value if (ch.isspace() and not (is_ldap and ch == " ")) or ord(ch) < 32 or ord(ch) == 127]
    if bad:
        raise EndpointError(f"{field}: URL contains whitespace or control characters: {value!r}")
    # RFC 3986 (2.2, 2.3) leaves no room for these unencoded; a CDP is an IA5String URI (RFC 5280 4.2.1.13), so a
    # certificate that carries one is malformed or hostile.
    unsafe = sorted({ch for ch in value if ch in _UNSAFE_URL_CHARS or not ch.isascii()})
    if unsafe and not is_ldap:
        raise EndpointError(f"{field}: URL contains {', '.join(repr(ch) for ch in unsafe)}, which a URL must "
                            f"percent-encode: {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"{field}: not a valid URL ({exc}): {value!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise EndpointError(f"{field}: URL scheme must be one of {', '.join(SCHEMES)}, got {value!r}")
    # ldap:///CN=... (no host: "the domain's DCs") is what AD CS writes by default; http needs a host.
    if scheme != "ldap" and not parts.hostname:
        raise EndpointError(f"{field}: URL has no host name: {value!r}")
    if port == 0:
        raise EndpointError(f"{field}: URL port must be 1-65535: {value!r}")
    return value


def normalize_endpoints(value: t.Any, *, field: str = "endpoints") -> list[Endpoint]:
    """Accept URL strings or ``{url, kind}`` dicts (``cert_revocation_info``'s ``endpoints``).

    Other keys of a dict (the certificates that depend on the URL) are ignored.
    A URL listed twice is fetched once; the first kind given wins.
    """
    if not isinstance(value, list) or not value:
        raise EndpointError(f"{field}: expected a non-empty list of URLs or {{url, kind}} dicts, got {value!r}")
    seen: dict[str, Endpoint] = {}
    for index, item in enumerate(value):
        item_field = f"{field}[{index}]"
        if isinstance(item, str):
            url, kind = validate_url(item, field=item_field), None
        elif isinstance(item, dict):
            if "url" not in item:
                raise EndpointError(f"{item_field}: a dict needs the key 'url', got {item!r}")
            url = validate_url(item["url"], field=f"{item_field}.url")
            kind = item.get("kind")
            if kind is not None and kind not in KINDS:
                raise EndpointError(f"{item_field}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        else:
            raise EndpointError(f"{item_field}: expected a URL string or a {{url, kind}} dict, got {item!r}")
        seen.setdefault(url, Endpoint(url=url, kind=kind))
    return list(seen.values())


# -- a certificate's malformed URL is one invalid endpoint, not a failed check ----------------------
def partition_endpoints(items: t.Sequence[t.Mapping[str, t.Any]], *,
                        field: str = "endpoints") -> tuple[list[Endpoint], list[dict[str, t.Any]]]:
    """Endpoints read from certificates (``{url, kind}``): the valid ones, and ``{url, kind, reason}`` for each other.

    A URL in a certificate is not the user's input: one malformed or hostile CDP (a space, a quote) must not hide
    the result of every legitimate endpoint, so it is reported with the reason and left out of the fetch. The
    reason is :func:`validate_url`'s text without the field. A URL listed twice is reported once.
    """
    valid: dict[str, Endpoint] = {}
    invalid: dict[str, dict[str, t.Any]] = {}
    for index, item in enumerate(items):
        url, kind = item.get("url"), item.get("kind")
        try:
            checked = validate_url(url, field=f"{field}[{index}].url")
        except EndpointError as exc:
            reason = str(exc).split(": ", 1)[-1]
            invalid.setdefault(str(url), {"url": url, "kind": kind if kind in KINDS else None, "reason": reason})
            continue
        valid.setdefault(checked, Endpoint(url=checked, kind=kind if kind in KINDS else None))
    return list(valid.values()), list(invalid.values())


def is_valid_url(value: t.Any) -> bool:
    """Whether :func:`validate_url` accepts ``value``."""
    try:
        validate_url(value, field="url")
    except EndpointError:
        return False
    return True


__all__ = ["KINDS", "SCHEMES", "Endpoint", "EndpointError", "is_valid_url", "normalize_endpoints",
           "partition_endpoints", "validate_url"]
