# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters crlfix.windows.x509_revocation_endpoints and crlfix.windows.crl_info (docs in the .yml sidecars)."""

from __future__ import annotations

import datetime
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.crlfix.windows.plugins.module_utils._crl_info import crl_info as _crl_info
from ansible_collections.crlfix.windows.plugins.module_utils._cryptography_dep import MissingCryptographyError
from ansible_collections.crlfix.windows.plugins.module_utils._x509_endpoints import revocation_endpoints


def x509_revocation_endpoints(data: t.Any) -> dict[str, list[str]] | list[dict[str, list[str]]]:
    """One certificate (PEM text, base64 DER or bytes) → its endpoints; a list → a list of them."""
    try:
        if isinstance(data, (list, tuple)):
            return [revocation_endpoints(item, field=f"x509_revocation_endpoints input[{index}]").as_dict()
                    for index, item in enumerate(data)]
        return revocation_endpoints(data, field="x509_revocation_endpoints input").as_dict()
    except (ValueError, MissingCryptographyError) as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _parse_now(now: t.Any) -> datetime.datetime | None:
    if now is None or isinstance(now, datetime.datetime):
        return now
    if isinstance(now, str):
        text = now.strip()
        try:
            # Accept the collection's own "…Z" form as well as any ISO 8601 offset.
            return datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            pass
    raise AnsibleFilterError(f"crl_info: now must be an ISO 8601 time such as 2026-11-26T04:00:00Z, got {now!r}")


def crl_info(data: t.Any, now: t.Any = None) -> dict[str, t.Any]:
    """A CRL (PEM text, base64 DER or bytes) → its facts; ``stale`` is judged at ``now`` (default: current time)."""
    when = _parse_now(now)
    try:
        return _crl_info(data, field="crl_info input").as_dict(now=when)
    except (ValueError, MissingCryptographyError) as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """Certificate and CRL filters of crlfix.windows."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"x509_revocation_endpoints": x509_revocation_endpoints, "crl_info": crl_info}
