# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host record's ``findings``: what the run noticed that the status alone does not say (PHASE2 decision 2).

A finding is ``{"code": str, "identity": str | None, "detail": str}``; a record lists them ordered by code, then
identity (None first). Codes are snake_case and documented in roles/fix_crl/README.md ("Findings") and in
``fix_crl_host``'s RETURN. Every feature adds its findings through :func:`add_finding`, so the shape and the order
are made in one place.
"""

from __future__ import annotations

import typing as t

# The codes this collection writes (roles/fix_crl/README.md, "Findings").
IDENTITY_PATH_DIFFERS = "identity_path_differs"
SERVICE_STALE = "service_stale"
PROXY_REJECTS_AGENT = "proxy_rejects_agent"

Finding: t.TypeAlias = dict[str, t.Any]


def add_finding(findings: list[Finding], code: str, detail: str, *, identity: str | None = None) -> None:
    """Add one finding, once: the same (code, identity, detail) is not listed twice; the list stays ordered."""
    if not code or code != code.lower() or " " in code:
        raise ValueError(f"code: a finding's code is snake_case, got {code!r}")
    finding = {"code": code, "identity": identity, "detail": detail}
    if finding not in findings:
        findings.append(finding)
        findings.sort(key=lambda f: (f["code"], f["identity"] is not None, f["identity"] or ""))


REFUSED = (401, 403, 407)


def refusal_findings(findings: list[Finding], crl: t.Any) -> None:
    """``proxy_rejects_agent`` for each URL the per-URL fetch (the netsh path, sending CryptoAPI's own User-Agent)
    got a 401/403/407 for: CryptoAPI's retrieval is refused the same way, whatever a browser's agent gets."""
    if not isinstance(crl, t.Mapping):
        return
    for result in crl.get("results") or []:
        if isinstance(result, t.Mapping) and result.get("http_status") in REFUSED:
            add_finding(findings, PROXY_REJECTS_AGENT,
                        f"{result.get('url')} answered HTTP {result['http_status']} to the netsh path with "
                        "User-Agent Microsoft-CryptoAPI: the proxy (or the server) refuses CryptoAPI's own retrieval; "
                        "allow that agent without authentication, or this URL's host direct")


__all__ = ["IDENTITY_PATH_DIFFERS", "PROXY_REJECTS_AGENT", "REFUSED", "SERVICE_STALE", "Finding", "add_finding",
           "refusal_findings"]
