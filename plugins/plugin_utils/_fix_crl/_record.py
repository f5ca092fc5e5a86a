# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host record of a fix_crl run: the one thing the fleet report reads (roles/fix_crl/README.md, "The host record").

:class:`HostRun` is the working state of one host's run; :func:`make_record` turns it into the record, with a
status and a one-line reason. Module results are cut down to the keys the report needs, so that 500 hosts'
records stay small.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import truncate

RECORD_SCHEMA = 1
FAILING_STATUSES = ("rolled_back", "failed", "unreachable")
_CRL_KEYS = ("results", "summary", "all_reachable", "all_usable", "purged", "purge_skipped_check_mode",
             "checked_at", "msg")
_TLS_KEYS = ("results", "summary", "all_pass", "worst_ms", "unfinished_ms", "max_handshake_ms", "msg")
_CERT_KEYS = ("subject", "thumbprint", "store", "not_after", "days_remaining", "has_private_key", "chain_complete",
              "flags")
_FLAGS = ("expired", "expiring_soon", "ldap_only", "no_endpoints", "chain_incomplete")


@dataclasses.dataclass
class HostRun:
    """What happened on one host so far; every step reads and extends it."""

    check_mode: bool
    errors: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    unreachable: bool = False
    stop: bool = False
    certificates: dict[str, t.Any] | None = None
    before: dict[str, t.Any] | None = None
    plan: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    apply: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    changed: bool = False
    checks: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    rollback: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    commands: int = 0

    def error(self, step: str, msg: str, *, unreachable: bool = False, stop: bool = True) -> None:
        """Record a failed step; a lost connection marks the host unreachable. Stops the host by default."""
        self.errors.append({"step": step, "msg": msg, "unreachable": unreachable})
        self.unreachable = self.unreachable or unreachable
        self.stop = self.stop or stop


def _pick(result: t.Mapping[str, t.Any] | None, keys: t.Iterable[str]) -> dict[str, t.Any] | None:
    return None if result is None else {key: result[key] for key in keys if key in result}


def _compact_checks(checks: t.Mapping[str, t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    return {phase: {"crl": _pick(check.get("crl"), _CRL_KEYS), "tls": _pick(check.get("tls"), _TLS_KEYS),
                    "crl_ok": check["crl_ok"], "tls_ok": check["tls_ok"], "passed": check["passed"],
                    "summary": check["summary"]}
            for phase, check in checks.items() if "summary" in check}


def status_of(run: HostRun) -> str:
    if run.rollback.get("performed"):
        return "rolled_back" if run.rollback.get("ok") else "failed"
    if run.unreachable:
        return "unreachable"
    if run.errors:
        return "failed"
    if run.check_mode and run.apply.get("changed"):
        return "would_change"
    if run.changed:
        return "changed" if run.checks.get("after", {}).get("passed") else "failed"
    return "compliant" if run.checks.get("before", {}).get("passed") else "failed"


def _summary(run: HostRun, phase: str) -> str:
    return run.checks.get(phase, {}).get("summary") or "not measured"


def reason_of(run: HostRun, status: str) -> str | None:
    desired = run.plan.get("desired") or {}
    target = "direct access" if desired.get("state", "present") == "absent" else f"proxy {desired.get('proxy', '?')}"
    views = ", ".join(run.plan.get("views") or [])
    error_text = "; ".join(f"{e['step']}: {truncate((str(e['msg']).splitlines() or [''])[0], 300)}"
                           for e in run.errors)
    if status == "rolled_back":
        after_rollback = run.checks.get("after_rollback", {}).get("summary") or (
            "not measured (the previous values were written back byte for byte; the measurement before the change "
            "describes them)")
        text = (f"verification failed after setting {target} ({_summary(run, 'after')}); rolled back to the previous "
                f"values because {run.rollback.get('why') or 'verification failed'}; after the rollback: "
                f"{after_rollback}")
        return text + (f"; {error_text}" if error_text else "")
    if status in ("failed", "unreachable") and error_text:
        return error_text
    if status == "failed" and run.changed and run.rollback.get("kept"):
        return (f"set {target} in {views} and kept it (the proxy path works and no check that passed before fails "
                f"now), but verification still fails where it already failed before the change: "
                f"{_summary(run, 'after')}")
    if status == "failed" and run.changed:
        return (f"verification failed after setting {target} and fix_crl_rollback is false, so the change is kept: "
                f"{_summary(run, 'after')}")
    if status == "failed":
        return ("verification failed and this run changed nothing, so there is nothing to roll back: "
                f"{_summary(run, 'before')}")
    if status == "would_change":
        return f"would set {target} in {views}; now: {_summary(run, 'before')}"
    if status == "changed":
        return f"set {target} in {views}; {_summary(run, 'after')}"
    return None


def _views_of(result: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    after = (result or {}).get("after")
    return None if after is None else {"views": after.get("views", after)}


def make_record(run: HostRun, *, host: str, extra_endpoints: t.Sequence[t.Any], flush: bool) -> dict[str, t.Any]:
    """The host record (schema 1) as the fleet report reads it."""
    status = status_of(run)
    certificates = run.certificates or {}
    flags = certificates.get("flags") or {}
    if run.rollback.get("performed"):
        after = _views_of(run.rollback)
    elif run.changed:
        after = _views_of(run.apply)
    else:
        after = {"views": run.before["views"]} if run.before else None
    return {
        "schema": RECORD_SCHEMA,
        "host": host,
        "status": status,
        "reason": reason_of(run, status) or None,
        "check_mode": run.check_mode,
        "desired": run.plan.get("desired"),
        "before": run.before or None,
        "planned": {
            "change": run.plan.get("change"),
            "views": run.plan.get("views") or [],
            "predicted_change": run.apply.get("changed"),
            "operations": run.apply.get("operations") or [],
            "diff": run.apply.get("diff"),
            "flush": flush and bool(run.apply.get("changed")),
            "peer_group": run.plan.get("peer_group"),
            "peers": run.plan.get("peers") or [],
        },
        "after": after,
        "certificates": [_pick(cert, _CERT_KEYS) for cert in certificates.get("certificates") or []],
        "flags": {**{name: list(flags.get(name) or []) for name in _FLAGS},
                  "views_disagree": (run.before or {}).get("views_disagree")},
        "endpoints": list(certificates.get("endpoints") or []) + list(extra_endpoints),
        "checks": _compact_checks(run.checks),
        "rollback": run.rollback or None,
        "errors": run.errors,
        "commands": run.commands,
        # What the playbook's rollout gate counts: the change did harm (rolled back) or the role could not do its
        # job (an error). A host that fails verification only where it failed before the run does not count.
        "counts_against_rollout": status == "rolled_back" or (
            status == "failed" and any(not e["unreachable"] for e in run.errors)),
    }


__all__ = ["FAILING_STATUSES", "RECORD_SCHEMA", "HostRun", "make_record", "reason_of", "status_of"]
