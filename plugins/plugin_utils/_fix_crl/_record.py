# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host record of a fix_crl run: the one thing the fleet report reads (roles/fix_crl/README.md, "The host record").

:class:`HostRun` is the working state of one host's run: what each step measured and the judge's verdicts, never a
status. :class:`HostRecord` is the record made from it when the run ends: its findings are gathered from the verdicts
(``_findings``) and its status and reason are ``_decide.decide``'s, once. Module results are cut down to the keys the
report needs, so that 500 hosts' records stay small.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _causes, _findings, _judge
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._decide import (
    Facts,
    Status,
    decide,
    decide_without_service,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import ServiceMeasurement

if t.TYPE_CHECKING:
    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import Plan

RECORD_SCHEMA = 1
# Phases in the order they are measured: the last one measured is the one in force.
PHASES = ("before", "after", "after_rollback")

_CRL_KEYS = ("results", "summary", "all_reachable", "all_usable", "purged", "purge_skipped_check_mode",
             "checked_at", "msg")
_TLS_KEYS = ("results", "summary", "all_pass", "worst_ms", "unfinished_ms", "max_handshake_ms", "msg")
_CERT_KEYS = ("subject", "thumbprint", "store", "not_after", "days_remaining", "has_private_key", "chain_complete",
              "flags")
_FLAGS = ("expired", "expiring_soon", "ldap_only", "no_endpoints", "chain_incomplete")
_HANDSHAKE_KEYS = ("peer", "verdict", "max_ms", "median_ms", "samples_ms", "protocol", "mutual", "errors")


@dataclasses.dataclass
class HostRun:
    """What happened on one host so far: every step reads and extends it; the judge's verdicts are kept as made."""

    check_mode: bool
    errors: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    unreachable: bool = False
    stop: bool = False
    certificates: dict[str, t.Any] | None = None
    before: dict[str, t.Any] | None = None
    plan: Plan | None = None
    apply: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    changed: bool = False
    verdicts: dict[str, _judge.PhaseVerdict] = dataclasses.field(default_factory=dict)
    rollback: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    commands: int = 0
    evidence: dict[str, t.Any] | None = None  # _evidence.build_evidence of the first audit
    # the identities the proof ran as (the last phase that read them), the connecting account, the resync
    identities: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    caller: dict[str, t.Any] | None = None
    chain_cache_resync: dict[str, t.Any] | None = None
    work_folder: dict[str, t.Any] | None = None  # the identities' work folder as the host found it
    # the host's own service: its last measurement, the judge's verdict on it, and where it listens
    service: tuple[ServiceMeasurement, _judge.ServiceVerdict] | None = None
    service_target: dict[str, t.Any] | None = None
    services: tuple[str, ...] = ()
    client_certificate: dict[str, str] | None = None  # what the mutual probe presents (_tls_probe)

    def error(self, step: str, msg: str, *, unreachable: bool = False, stop: bool = True) -> None:
        """Record a failed step; a lost connection marks the host unreachable. Stops the host by default."""
        self.errors.append({"step": step, "msg": msg, "unreachable": unreachable})
        self.unreachable = self.unreachable or unreachable
        self.stop = self.stop or stop

    def last_verdict(self) -> _judge.PhaseVerdict | None:
        return next((self.verdicts[phase] for phase in reversed(PHASES) if phase in self.verdicts), None)


def _pick(result: t.Mapping[str, t.Any] | None, keys: t.Iterable[str]) -> dict[str, t.Any] | None:
    return None if result is None else {key: result[key] for key in keys if key in result}


def _check(verdict: _judge.PhaseVerdict) -> dict[str, t.Any]:
    check = verdict.as_check()
    return {**check, "crl": _pick(check["crl"], _CRL_KEYS), "tls": _pick(check["tls"], _TLS_KEYS)}


def service_record(measurement: ServiceMeasurement, verdict: _judge.ServiceVerdict,
                   target: t.Mapping[str, t.Any] | None, services: t.Sequence[str],
                   client_certificate: t.Mapping[str, str] | None) -> dict[str, t.Any]:
    """The record's ``service``: the handshake, the verdict on it, what Windows showed about the process."""
    return {"handshake": _pick(measurement.handshake, _HANDSHAKE_KEYS), "verdict": verdict.as_dict(),
            "stale": verdict.state == "stale", "services": list(services), "target": dict(target or {}),
            "client_certificate": dict(client_certificate) if client_certificate else None,
            "evidence": {"processes": [dict(p) for p in measurement.processes], "changed_at": measurement.changed_at,
                         "changed_source": measurement.changed_source,
                         "symptoms_since_change": list(measurement.symptoms_since_change)},
            "restart": None}


def _log_change(evidence: t.Mapping[str, t.Any] | None) -> bool:
    """fix_crl_enable_capi2_log enabled the CAPI2 log (or would, in check mode): a change of the host too."""
    capi2 = (evidence or {}).get("capi2_log") or {}
    return bool(capi2.get("changed") or capi2.get("predicted"))


def _views_of(result: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    after = (result or {}).get("after")
    return None if after is None else {"views": after.get("views", after)}


def _findings_of(run: HostRun) -> list[dict[str, t.Any]]:
    """The record's findings: the last phase's, the evidence's, the service's, once each, in record order."""
    last = run.last_verdict()
    passed, checked = _judge.explaining_checks(run.verdicts.get("before"), run.identities)
    found = [*(last.findings if last else ()), *_findings.evidence_findings(run.evidence, passed, checked),
             *_findings.work_folder_findings(run.work_folder)]
    if run.service is not None:
        found += run.service[1].findings
    return [f.as_dict() for f in _findings.ordered(found)]


def _with_decision(fields: dict[str, t.Any]) -> dict[str, t.Any]:
    """The record's fields with ``status`` and ``reason`` decided (and, for a stale service, what the host is once
    it is fresh), and what follows from them."""
    facts = Facts.of_record(fields)
    status, reason = decide(facts)
    service = fields.get("service")
    if service is not None:
        fresh_status, fresh_reason = decide_without_service(facts)
        service.update(status_when_fresh=fresh_status.value, reason_when_fresh=fresh_reason)
    # Why, in words: the primary cause of the catalogue that holds (none for a compliant host) leads the reason.
    diagnosis = _causes.diagnose({**fields, "status": status.value})
    if diagnosis and reason:
        reason = f"{diagnosis[0]['title']}: {reason}"
    # What the playbook's rollout gate counts: the change did harm (rolled back) or the role could not do its job
    # (an error). A host that fails verification only where it failed before the run does not count.
    fields.update(status=status, reason=reason, diagnosis=diagnosis,
                  risks=_causes.risks({**fields, "status": status.value}),
                  counts_against_rollout=status is Status.ROLLED_BACK or (
                      status is Status.FAILED and any(not e.get("unreachable") for e in fields["errors"])))
    return fields


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
    trust_store: dict[str, t.Any] | None = None
    diagnosis: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    risks: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)

    @classmethod
    def from_run(cls, run: HostRun, *, host: str, extra_endpoints: t.Sequence[t.Any], flush: bool) -> HostRecord:
        """The record of a finished run: the findings gathered and the status decided, once."""
        certificates = run.certificates or {}
        flags = certificates.get("flags") or {}
        plan = run.plan
        if run.rollback.get("performed"):
            after = _views_of(run.rollback)
        elif run.changed:
            after = _views_of(run.apply)
        else:
            after = {"views": run.before["views"]} if run.before else None
        service = None
        if run.service is not None:
            service = service_record(*run.service, run.service_target, run.services, run.client_certificate)
        fields = _with_decision({
            "host": host, "check_mode": run.check_mode, "desired": plan.desired if plan else None,
            "before": run.before or None,
            "planned": {
                "change": plan.changes if plan else None,
                "views": plan.views if plan else [],
                "predicted_change": run.apply.get("changed"),
                "operations": run.apply.get("operations") or [],
                "diff": run.apply.get("diff"),
                "flush": flush and bool(run.apply.get("changed")),
                "peer_group": plan.peer_group if plan else None,
                "peers": [{"host": p.host, "port": p.port, "sni": p.sni} for p in plan.peers] if plan else [],
            },
            "after": after,
            "certificates": [_pick(cert, _CERT_KEYS) for cert in certificates.get("certificates") or []],
            "flags": {**{name: list(flags.get(name) or []) for name in _FLAGS},
                      "views_disagree": (run.before or {}).get("views_disagree")},
            "endpoints": list(certificates.get("endpoints") or []) + [{"url": e.url, "kind": e.kind}
                                                                      for e in extra_endpoints],
            "checks": {phase: _check(verdict) for phase, verdict in run.verdicts.items()},
            "rollback": run.rollback or None, "errors": run.errors, "commands": run.commands,
            "evidence": run.evidence, "findings": _findings_of(run), "identities": run.identities,
            "caller": run.caller, "chain_cache_resync": run.chain_cache_resync, "service": service,
            "trust_store": certificates.get("trust_store"),
        })
        fields["changed"] = (run.changed or fields["status"] is Status.WOULD_CHANGE or _log_change(run.evidence))
        return cls(**fields)

    def with_restart(self, restart: t.Mapping[str, t.Any], measurement: ServiceMeasurement | None,
                     verdict: _judge.ServiceVerdict) -> HostRecord:
        """The record after the restart step: the restart and the judge's new verdict on the service, whose findings
        take the place of the old verdict's; the status is decided again by the same rule."""
        service = dict(self.service or {})
        service["restart"] = {"services": list(restart.get("services") or []),
                              "ok": all(s.get("restarted") for s in restart.get("services") or []),
                              "handshake": _pick(measurement.handshake, _HANDSHAKE_KEYS) if measurement else None,
                              "verdict": verdict.as_dict()}
        service["stale"] = verdict.state == "stale"
        kept = [f for f in self.findings if f["code"] not in _findings.SERVICE_CODES]
        findings = _findings.ordered([*_findings.from_dicts(kept), *verdict.findings])
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(service=service, findings=[f.as_dict() for f in findings], commands=self.commands + 1)
        return HostRecord(**_with_decision(fields))

    @classmethod
    def from_dict(cls, record: t.Mapping[str, t.Any]) -> HostRecord:
        """A record (``as_dict``, e.g. read back from its file) as a HostRecord."""
        fields = {f.name: record.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
                  for f in dataclasses.fields(cls)}
        return cls(**{**fields, "status": Status(record["status"])})

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


__all__ = ["PHASES", "RECORD_SCHEMA", "SUMMARY_KEYS", "HostRecord", "HostRun", "Status", "kept_change",
           "record_from_registered", "service_record"]
