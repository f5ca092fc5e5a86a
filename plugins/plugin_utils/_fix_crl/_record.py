# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host record of a fix_crl run: the one thing the fleet report reads (roles/fix_crl/README.md, "The host record").

:class:`Status` is the one list of host statuses (the report, the HTML page, the slice merge and the action read it
from here). :class:`HostRun` is the working state of one host's run; :class:`HostRecord` is the record made from it,
with a status and a one-line reason, and the task result Ansible sees. Module results are cut down to the keys the
report needs, so that 500 hosts' records stay small.
"""

from __future__ import annotations

import dataclasses
import enum
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._findings import add_finding
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import truncate

RECORD_SCHEMA = 1


class Status(enum.StrEnum):
    """A host's outcome; the values are what reports, the HTML page and users' playbooks read. In report order."""

    COMPLIANT = "compliant"
    WOULD_CHANGE = "would_change"
    CHANGED = "changed"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    NOT_RUN = "not_run"

    @property
    def fails_host(self) -> bool:
        """The host needs someone's attention: ``fail_host`` fails it, the playbook's last play too."""
        return self in (Status.ROLLED_BACK, Status.FAILED, Status.UNREACHABLE)

    @property
    def is_problem(self) -> bool:
        """Listed with its reason in the summary: a host that fails, or one the run never reached."""
        return self.fails_host or self is Status.NOT_RUN

    @property
    def checked(self) -> bool:
        """The role got far enough to measure or decide something about the host."""
        return self not in (Status.UNREACHABLE, Status.NOT_RUN)


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
    evidence: dict[str, t.Any] | None = None  # _evidence.build_evidence of the first audit
    findings: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    # the identities the proof ran as, the connecting account (_identities), the chain engines' resync
    identities: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    caller: dict[str, t.Any] | None = None
    chain_cache_resync: dict[str, t.Any] | None = None
    service: dict[str, t.Any] | None = None  # the host's own service's handshake and its restart (_service.py)

    def error(self, step: str, msg: str, *, unreachable: bool = False, stop: bool = True) -> None:
        """Record a failed step; a lost connection marks the host unreachable. Stops the host by default."""
        self.errors.append({"step": step, "msg": msg, "unreachable": unreachable})
        self.unreachable = self.unreachable or unreachable
        self.stop = self.stop or stop

    def finding(self, code: str, detail: str, *, identity: str | None = None) -> None:
        """Add a finding (roles/fix_crl/README.md, "Findings"): a snake_case code, the identity or None, a detail."""
        add_finding(self.findings, code, detail, identity=identity)


def _pick(result: t.Mapping[str, t.Any] | None, keys: t.Iterable[str]) -> dict[str, t.Any] | None:
    return None if result is None else {key: result[key] for key in keys if key in result}


def _compact_checks(checks: t.Mapping[str, t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    return {phase: {"crl": _pick(check.get("crl"), _CRL_KEYS), "tls": _pick(check.get("tls"), _TLS_KEYS),
                    "crl_ok": check["crl_ok"], "tls_ok": check["tls_ok"],
                    "identities_ok": check.get("identities_ok"), "passed": check["passed"],
                    "summary": check["summary"]}
            for phase, check in checks.items() if "summary" in check}


def _has_finding(run: HostRun, code: str) -> bool:
    return any(finding["code"] == code for finding in run.findings)


def status_of(run: HostRun) -> Status:
    if run.rollback.get("performed"):
        return Status.ROLLED_BACK if run.rollback.get("ok") else Status.FAILED
    if run.unreachable:
        return Status.UNREACHABLE
    if run.errors:
        return Status.FAILED
    if run.check_mode and run.apply.get("changed"):
        return Status.WOULD_CHANGE
    if run.changed:
        return Status.CHANGED if run.checks.get("after", {}).get("passed") else Status.FAILED
    if not run.checks.get("before", {}).get("passed"):
        return Status.FAILED
    # The host's own symptoms outrank a passing measurement: a symptom since the fix is not compliance.
    return Status.FAILED if _has_finding(run, "symptoms_since_fix") else Status.COMPLIANT


def _summary(run: HostRun, phase: str) -> str:
    return run.checks.get(phase, {}).get("summary") or "not measured"


def reason_of(run: HostRun, status: Status) -> str | None:
    desired = run.plan.get("desired") or {}
    target = "direct access" if desired.get("state", "present") == "absent" else f"proxy {desired.get('proxy', '?')}"
    views = ", ".join(run.plan.get("views") or [])
    error_text = "; ".join(f"{e['step']}: {truncate((str(e['msg']).splitlines() or [''])[0], 300)}"
                           for e in run.errors)
    if status is Status.ROLLED_BACK:
        after_rollback = run.checks.get("after_rollback", {}).get("summary") or (
            "not measured (the previous values were written back byte for byte; the measurement before the change "
            "describes them)")
        text = (f"verification failed after setting {target} ({_summary(run, 'after')}); rolled back to the previous "
                f"values because {run.rollback.get('why') or 'verification failed'}; after the rollback: "
                f"{after_rollback}")
        return text + (f"; {error_text}" if error_text else "")
    if status in (Status.FAILED, Status.UNREACHABLE) and error_text:
        return error_text
    if status is Status.FAILED and run.changed and run.rollback.get("kept"):
        return (f"set {target} in {views} and kept it (the proxy path works and no check that passed before fails "
                f"now), but verification still fails where it already failed before the change: "
                f"{_summary(run, 'after')}")
    if status is Status.FAILED and run.changed:
        return (f"verification failed after setting {target} and fix_crl_rollback is false, so the change is kept: "
                f"{_summary(run, 'after')}")
    measured_ok = bool(run.checks.get("before", {}).get("passed"))
    if status is Status.FAILED and measured_ok and not run.changed and _has_finding(run, "symptoms_since_fix"):
        detail = next(f["detail"] for f in run.findings if f["code"] == "symptoms_since_fix")
        return f"the measurement passes, but the host logged symptoms since the fix: {detail}"
    if status is Status.FAILED:
        return ("verification failed and this run changed nothing, so there is nothing to roll back: "
                f"{_summary(run, 'before')}")
    if status is Status.WOULD_CHANGE:
        return f"would set {target} in {views}; now: {_summary(run, 'before')}"
    if status is Status.CHANGED:
        return f"set {target} in {views}; {_summary(run, 'after')}"
    return None


def _log_change(run: HostRun) -> bool:
    """fix_crl_enable_capi2_log enabled the CAPI2 log (or would, in check mode): a change of the host too."""
    capi2 = (run.evidence or {}).get("capi2_log") or {}
    return bool(capi2.get("changed") or capi2.get("predicted"))


def _views_of(result: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    after = (result or {}).get("after")
    return None if after is None else {"views": after.get("views", after)}


# The record's fields every task result carries, also the small one (``result_detail: summary``): what the playbook's
# rollout gate and last play read, and what an AWX user filters host events on.
SUMMARY_KEYS = ("schema", "host", "status", "reason", "check_mode", "changed", "counts_against_rollout", "commands")


@dataclasses.dataclass(frozen=True)
class HostRecord:
    """The host record (schema :data:`RECORD_SCHEMA`) as the fleet report reads it; :meth:`as_dict` is its form.

    ``changed`` is Ansible's: the run wrote the host's registry (the change kept, or undone by a rollback, or a
    write the lost connection left unknown), or would write it (check mode). A kept change is a change whatever
    the verdict, so that the recap, AWX and callbacks see every change that happened.
    """

    host: str
    status: Status
    reason: str | None
    check_mode: bool | None
    desired: dict[str, t.Any] | None
    before: dict[str, t.Any] | None
    planned: dict[str, t.Any]
    after: dict[str, t.Any] | None
    certificates: list[dict[str, t.Any] | None]
    flags: dict[str, t.Any]
    endpoints: list[t.Any]
    checks: dict[str, t.Any]
    rollback: dict[str, t.Any] | None
    errors: list[dict[str, t.Any]]
    commands: int
    counts_against_rollout: bool
    changed: bool
    evidence: dict[str, t.Any] | None = None
    findings: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    identities: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    caller: dict[str, t.Any] | None = None
    chain_cache_resync: dict[str, t.Any] | None = None
    service: dict[str, t.Any] | None = None

    @classmethod
    def from_run(cls, run: HostRun, *, host: str, extra_endpoints: t.Sequence[t.Any], flush: bool) -> HostRecord:
        status = status_of(run)
        reason = reason_of(run, status) or None
        service = run.service
        if service is not None and service.get("stale") and status in (Status.COMPLIANT, Status.CHANGED):
            # The proof passed but the running service did not (_service.py): the outage goes on until it is
            # restarted. What the host would be once it is fresh is kept, for the restart step to put back.
            detail = next(f["detail"] for f in run.findings if f["code"] == "service_stale")
            service = {**service, "status_when_fresh": status.value, "reason_when_fresh": reason}
            status, reason = Status.FAILED, f"service_stale: {detail}"
        certificates = run.certificates or {}
        flags = certificates.get("flags") or {}
        if run.rollback.get("performed"):
            after = _views_of(run.rollback)
        elif run.changed:
            after = _views_of(run.apply)
        else:
            after = {"views": run.before["views"]} if run.before else None
        return cls(
            host=host,
            status=status,
            reason=reason,
            check_mode=run.check_mode,
            desired=run.plan.get("desired"),
            before=run.before or None,
            planned={
                "change": run.plan.get("change"),
                "views": run.plan.get("views") or [],
                "predicted_change": run.apply.get("changed"),
                "operations": run.apply.get("operations") or [],
                "diff": run.apply.get("diff"),
                "flush": flush and bool(run.apply.get("changed")),
                "peer_group": run.plan.get("peer_group"),
                "peers": run.plan.get("peers") or [],
            },
            after=after,
            certificates=[_pick(cert, _CERT_KEYS) for cert in certificates.get("certificates") or []],
            flags={**{name: list(flags.get(name) or []) for name in _FLAGS},
                   "views_disagree": (run.before or {}).get("views_disagree")},
            endpoints=list(certificates.get("endpoints") or []) + list(extra_endpoints),
            checks=_compact_checks(run.checks),
            rollback=run.rollback or None,
            errors=run.errors,
            commands=run.commands,
            # What the playbook's rollout gate counts: the change did harm (rolled back) or the role could not do
            # its job (an error). A host that fails verification only where it failed before the run does not count.
            counts_against_rollout=status is Status.ROLLED_BACK or (
                status is Status.FAILED and any(not e["unreachable"] for e in run.errors)),
            changed=run.changed or status is Status.WOULD_CHANGE or _log_change(run),
            evidence=run.evidence,
            findings=sorted(run.findings, key=lambda f: (f["code"], f["identity"] or "", f["detail"])),
            identities=run.identities,
            caller=run.caller,
            chain_cache_resync=run.chain_cache_resync,
            service=service,
        )

    @classmethod
    def failed(cls, *, host: str, step: str, msg: str, check_mode: bool | None) -> HostRecord:
        """The record of a host the run could not even start on (bad arguments, a role task that failed)."""
        run = HostRun(check_mode=bool(check_mode))
        run.error(step, msg)
        return dataclasses.replace(cls.from_run(run, host=host, extra_endpoints=(), flush=False),
                                   check_mode=check_mode)

    def as_dict(self) -> dict[str, t.Any]:
        """The record as ``register: fix_crl_record`` keeps it (plain values: the status is its string)."""
        return {"schema": RECORD_SCHEMA, **{field.name: getattr(self, field.name)
                                            for field in dataclasses.fields(self)}, "status": self.status.value}

    # ---- the task result: the record's summary and where its file is, or the whole record ----
    def summary(self, record_path: str) -> dict[str, t.Any]:
        """The small task result: what playbooks and AWX filter on, and ``record_path``, the record's file.

        ``counts`` has the length of every list field of the record (certificates, endpoints, errors and whatever
        list a later field adds) and of every flag list; ``worst_ms`` the slowest handshake of each measured phase.
        """
        record = self.as_dict()
        counts = {name: len(value) for name, value in record.items() if isinstance(value, list)}
        counts.update({name: len(value) for name, value in self.flags.items() if isinstance(value, list)})
        return {
            **{key: record[key] for key in SUMMARY_KEYS},
            "counts": counts,
            "worst_ms": {phase: (check.get("tls") or {}).get("worst_ms") for phase, check in self.checks.items()},
            # What the role's restart step (fix_crl_restart) decides on without reading the record's file.
            "service_stale": bool((self.service or {}).get("stale")),
            "result_detail": "summary",
            "record_path": record_path,
        }

    def task_result(self, *, fail_host: bool, diff: bool, record_path: str | None = None) -> dict[str, t.Any]:
        """The task result of ``fix_crl_host``: the record (or, given ``record_path``, its :meth:`summary`), plus
        what Ansible reads (diff, unreachable, failed).

        A host whose connection was lost is unreachable to Ansible too (AWX's host events, callbacks), unless the
        run changed it: then the change is what Ansible must count (an unreachable result never counts as changed).
        """
        result = self.as_dict() if record_path is None else self.summary(record_path)
        if diff and self.planned["diff"]:
            result["diff"] = self.planned["diff"]
        if self.status is Status.UNREACHABLE and not self.changed:
            result.update(unreachable=True, msg=f"fix_crl: unreachable: {self.reason}")
        elif fail_host and self.status.fails_host:
            result.update(failed=True, msg=f"fix_crl: {self.status.value}: {self.reason}")
        return result


def record_from_registered(host: str, value: t.Any) -> t.Any:
    """What ``hostvars[host].fix_crl_record`` holds, as a record.

    Usually the record or its summary. When the role's task failed before its action could make one (an error the
    action did not expect), Ansible registers its failed result instead (``failed``, ``msg``, no ``schema``): that
    is read as the record of a host the role could not run on, with Ansible's message. Anything else is returned as
    it is.
    """
    if isinstance(value, t.Mapping) and "schema" not in value and value.get("failed") and "msg" in value:
        return HostRecord.failed(host=host, step="fix_crl", msg=str(value["msg"]), check_mode=None).as_dict()
    return value


def kept_change(record: t.Mapping[str, t.Any]) -> bool:
    """True when the run changed the host's registry and left it changed (whatever its status but rolled_back)."""
    changed = record.get("changed")
    if not isinstance(changed, bool):  # a record of a release before it said so: only "changed" tells
        return record.get("status") == Status.CHANGED
    return changed and record.get("check_mode") is False and record.get("status") != Status.ROLLED_BACK


__all__ = ["RECORD_SCHEMA", "SUMMARY_KEYS", "HostRecord", "HostRun", "Status", "kept_change", "reason_of",
           "record_from_registered", "status_of"]
