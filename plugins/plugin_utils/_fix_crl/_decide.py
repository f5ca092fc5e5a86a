# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host's status and its one-line reason, decided once from the run's facts and the judge's verdicts.

:class:`Status` is the one list of host statuses (the report, the HTML page, the slice merge and the actions read it
from here). :func:`decide` is the one rule that turns a run into ``(status, reason)``: the host record calls it when
the run ends, and the restart step calls it again on the record with the service's new verdict, so both make the
status the same way. :class:`Facts` holds exactly what the rule reads, and is made from a record as well as from a run.
"""

from __future__ import annotations

import dataclasses
import enum
import typing as t

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import first_line


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


@dataclasses.dataclass(frozen=True)
class Facts:
    """What :func:`decide` reads: the run's facts and the judge's verdicts, as the host record keeps them.

    ``checks`` maps each measured phase to its verdict's ``passed`` and ``summary``; ``service`` is the service's
    verdict in force (``state``, ``detail``), None when it was not measured.
    """

    check_mode: bool
    errors: tuple[t.Mapping[str, t.Any], ...]
    planned_change: bool
    rollback: t.Mapping[str, t.Any]
    checks: t.Mapping[str, t.Mapping[str, t.Any]]
    finding_codes: frozenset[str]
    findings: tuple[t.Mapping[str, t.Any], ...]
    service: t.Mapping[str, t.Any] | None
    target: str
    views: tuple[str, ...]

    @property
    def unreachable(self) -> bool:
        return any(error.get("unreachable") for error in self.errors)

    @property
    def registry_written(self) -> bool:
        """The run wrote the host's registry (or lost the connection while writing it)."""
        return not self.check_mode and self.planned_change

    @classmethod
    def of_record(cls, record: t.Mapping[str, t.Any]) -> Facts:
        """The facts a host record (``HostRecord.as_dict``, or its fields) holds."""
        desired = record.get("desired") or {}
        planned = record.get("planned") or {}
        direct = desired.get("state", "present") == "absent"
        target = "direct access" if direct else f"proxy {desired.get('proxy', '?')}"
        findings = tuple(record.get("findings") or ())
        service = record.get("service") or None
        verdict = None
        if service is not None:
            restart = service.get("restart") or {}
            verdict = restart.get("verdict") or service.get("verdict")
        return cls(check_mode=bool(record.get("check_mode")), errors=tuple(record.get("errors") or ()),
                   planned_change=bool(planned.get("predicted_change")), rollback=record.get("rollback") or {},
                   checks=record.get("checks") or {}, finding_codes=frozenset(f["code"] for f in findings),
                   findings=findings, service=verdict, target=target, views=tuple(planned.get("views") or ()))


def _summary(facts: Facts, phase: str) -> str:
    return (facts.checks.get(phase) or {}).get("summary") or "not measured"


def _passed(facts: Facts, phase: str) -> bool:
    return bool((facts.checks.get(phase) or {}).get("passed"))


def _detail(facts: Facts, code: str) -> str:
    return next(str(f.get("detail")) for f in facts.findings if f.get("code") == code)


def _status(facts: Facts) -> Status:
    if facts.rollback.get("performed"):
        return Status.ROLLED_BACK if facts.rollback.get("ok") else Status.FAILED
    if facts.unreachable:
        return Status.UNREACHABLE
    if facts.errors:
        return Status.FAILED
    if facts.check_mode and facts.planned_change:
        return Status.WOULD_CHANGE
    if facts.registry_written:
        return Status.CHANGED if _passed(facts, "after") else Status.FAILED
    if not _passed(facts, "before"):
        return Status.FAILED
    # The host's own symptoms outrank a passing measurement: a symptom since the fix is not compliance.
    return Status.FAILED if "symptoms_since_fix" in facts.finding_codes else Status.COMPLIANT


def _reason(facts: Facts, status: Status) -> str | None:
    views = ", ".join(facts.views)
    error_text = "; ".join(f"{e.get('step')}: {first_line(e.get('msg'))}" for e in facts.errors)
    if status is Status.ROLLED_BACK:
        after_rollback = (facts.checks.get("after_rollback") or {}).get("summary") or (
            "not measured (the previous values were written back byte for byte; the measurement before the change "
            "describes them)")
        text = (f"verification failed after setting {facts.target} ({_summary(facts, 'after')}); rolled back to the "
                f"previous values because {facts.rollback.get('why') or 'verification failed'}; after the rollback: "
                f"{after_rollback}")
        return text + (f"; {error_text}" if error_text else "")
    if status in (Status.FAILED, Status.UNREACHABLE) and error_text:
        return error_text
    if status is Status.FAILED and facts.registry_written and facts.rollback.get("kept"):
        return (f"set {facts.target} in {views} and kept it (the proxy path works and no check that passed before "
                f"fails now), but verification still fails where it already failed before the change: "
                f"{_summary(facts, 'after')}")
    if status is Status.FAILED and facts.registry_written:
        return (f"verification failed after setting {facts.target} and fix_crl_rollback is false, so the change is "
                f"kept: {_summary(facts, 'after')}")
    if status is Status.FAILED and _passed(facts, "before") and "symptoms_since_fix" in facts.finding_codes:
        return ("the measurement passes, but the host logged symptoms since the fix: "
                f"{_detail(facts, 'symptoms_since_fix')}")
    if status is Status.FAILED:
        return ("verification failed and this run changed nothing, so there is nothing to roll back: "
                f"{_summary(facts, 'before')}")
    if status is Status.WOULD_CHANGE:
        return f"would set {facts.target} in {views}; now: {_summary(facts, 'before')}"
    if status is Status.CHANGED:
        return f"set {facts.target} in {views}; {_summary(facts, 'after')}"
    return None


def decide(facts: Facts) -> tuple[Status, str | None]:
    """The host's status and reason. A service proven stale fails a host that is otherwise compliant or changed
    (the proxy is right, the running service is not: never a rollback); a service that is only slow does not."""
    status = _status(facts)
    reason = _reason(facts, status)
    service = facts.service or {}
    if service.get("state") == "stale" and status in (Status.COMPLIANT, Status.CHANGED):
        return Status.FAILED, f"service_stale: {service.get('detail')}"
    return status, reason


def decide_without_service(facts: Facts) -> tuple[Status, str | None]:
    """What the host is once its service is fresh: the same rule without the service's verdict."""
    return decide(dataclasses.replace(facts, service=None))


__all__ = ["Facts", "Status", "decide", "decide_without_service"]
