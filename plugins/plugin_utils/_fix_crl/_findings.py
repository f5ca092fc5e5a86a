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
PROXY_FILTERS_AGENT = "proxy_filters_agent"

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


def _foreign_status(result: t.Mapping[str, t.Any]) -> t.Any:
    foreign = result.get("foreign_agent")
    return foreign.get("http_status") if isinstance(foreign, t.Mapping) else None


def refusal_findings(findings: list[Finding], crl: t.Any) -> None:
    """The per-URL fetch's answers to CryptoAPI's agent and to a foreign one (the netsh path; host-scripts.md, "The
    foreign agent"), side by side.

    ``proxy_rejects_agent`` for each URL that got a 401/403/407 with CryptoAPI's own User-Agent: CryptoAPI's
    retrieval is refused the same way, whatever a browser's agent gets (the detail says what the foreign agent got).
    ``proxy_filters_agent`` (informational, not a failure) for each URL that CryptoAPI's agent got (2xx) while the
    foreign agent was refused: the path filters by User-Agent and lets CryptoAPI through, so a check from a browser or
    a script with its own agent would be refused there where the services' retrieval is not.
    """
    if not isinstance(crl, t.Mapping):
        return
    for result in crl.get("results") or []:
        if not isinstance(result, t.Mapping):
            continue
        status, foreign = result.get("http_status"), _foreign_status(result)
        if status in REFUSED:
            also = ""
            if foreign in REFUSED:
                also = f"; a foreign agent was refused too (HTTP {foreign})"
            elif isinstance(foreign, int):
                also = f"; a foreign agent got HTTP {foreign}: the path lets other agents through, not CryptoAPI's"
            add_finding(findings, PROXY_REJECTS_AGENT,
                        f"{result.get('url')} answered HTTP {status} to the netsh path with User-Agent "
                        f"Microsoft-CryptoAPI{also}: the proxy (or the server) refuses CryptoAPI's own retrieval; "
                        "allow that agent without authentication, or this URL's host direct")
        elif isinstance(status, int) and 200 <= status < 300 and foreign in REFUSED:
            agent = result["foreign_agent"].get("agent") or "another agent"
            add_finding(findings, PROXY_FILTERS_AGENT,
                        f"{result.get('url')} answered HTTP {foreign} only for a foreign agent ({agent}) and HTTP "
                        f"{status} for Microsoft-CryptoAPI: the proxy (or the server) filters by User-Agent; "
                        "CryptoAPI's own retrieval passes (informational: a browser's or a script's check of this "
                        "URL is refused there, the services' is not)")


__all__ = ["IDENTITY_PATH_DIFFERS", "PROXY_FILTERS_AGENT", "PROXY_REJECTS_AGENT", "REFUSED", "SERVICE_STALE",
           "Finding", "add_finding", "refusal_findings"]
