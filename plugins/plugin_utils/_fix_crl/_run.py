# PRIVATE to the crlfix.windows collection; may change without notice.
"""One host's fix_crl run in as few remote commands as the job allows (the budgets of docs/performance.md).

    audit (check mode)          1  host_audit: both WinHTTP views, certificates, CRL fetch and TLS probes at once,
                                   the measurement cut at audit_time_box_ms
    correct host                1  the same
    host that needs a change    3  host_audit, winhttp_apply (compare-and-swap, no re-read), host_audit after
    ... rolled back             4  + winhttp_apply restore (compare-and-swap against what this run wrote)

The measurement after a rollback is a fifth command and off by default (``measure_after_rollback``): the restore
writes the previous bytes back exactly, and the first command already measured the host with them.
Every failure is recorded in the :class:`HostRun` (a lost connection as ``unreachable``), never raised, so one
host's trouble never stops the fleet; the result is always the host record.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import validate_options
from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import (
    DEFAULT_MAX_BYTES,
    normalize_endpoints,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _evidence, _findings, _identities, _service
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import (
    SCRIPT,
    HostAudit,
    HostAuditRequest,
    host_args,
    parse_host_audit,
    validate_request,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import (
    MeasuredPart,
    compare_before_after,
    judge_phase,
    keep_decision,
    tls_findings,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import (
    FixCrlOptions,
    Inventory,
    derive_peers,
    describe_before,
    make_plan,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord, HostRun
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import normalize_peers
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import manage_winhttp_proxy
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import state_from_raw

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase


def run_host_audit(connection: ConnectionBase, request: HostAuditRequest, *, check_mode: bool, task_action: str,
                   now: datetime.datetime | None = None) -> HostAudit:
    """One host_audit command, and a second (``crl_fetch``) when the host did not fetch every URL wanted.

    A part that fails in an expected way fails alone (it holds its ``ExpectedFailure``), the second command's
    failure included.

    Raises:
        ValueError: the request is not acceptable (nothing ran on the host).
        HostScriptError: the host_audit document as a whole cannot be trusted.
        AnsibleConnectionFailure: the transport failed.
    """
    validate_request(request)
    document = run_host_script(connection, SCRIPT, host_args(request, check_mode=check_mode), task_action=task_action)
    audit = parse_host_audit(document, request, check_mode=check_mode, now=now)
    pending = audit.pending_crl
    if pending is not None:
        audit.warnings.append(pending.warning())
        audit.commands += 1
        try:
            second = run_host_script(connection, "crl_fetch", pending.fetch_args(), task_action=task_action)
            audit.crl = pending.complete(second)
        except (ExpectedFailure, ValueError) as exc:
            audit.crl = exc if isinstance(exc, ExpectedFailure) else ExpectedFailure(str(exc))
        audit.pending_crl = None
    return audit


def _fields(failure: Exception) -> dict[str, t.Any]:
    """The result fields an expected failure carries (a ValueError, bad input, carries none)."""
    return dict(failure.fields) if isinstance(failure, ExpectedFailure) else {}


class _Steps:
    """The remote steps of one run, sharing the connection, the options and the run's working state."""

    def __init__(self, connection: ConnectionBase, options: FixCrlOptions, run: HostRun, task_action: str,
                 service_peer: dict[str, t.Any] | None = None) -> None:
        self.connection = connection
        self.options = options
        self.run = run
        self.task_action = task_action
        self.service_peer = service_peer

    def audit(self, request: HostAuditRequest) -> HostAudit:
        audit = run_host_audit(self.connection, request, check_mode=self.run.check_mode,
                               task_action=self.task_action)
        self.run.commands += audit.commands
        return audit

    def request(self, *, with_certificates: bool, endpoints: t.Sequence[t.Any], purge: bool,
                peers: t.Sequence[t.Any], time_box_ms: int | None = None,
                evidence: dict[str, t.Any] | None = None) -> HostAuditRequest:
        o = self.options
        cert_options = None
        if with_certificates:
            cert_options = validate_options({
                "cert_stores": list(o.cert_stores), "chain_stores": list(o.chain_stores),
                "cert_thumbprints": list(o.cert_thumbprints), "cert_subject": o.cert_subject,
                "cert_ekus": list(o.cert_ekus), "expiry_warning_days": o.expiry_warning_days, "include_winhttp": True})
        _identities.validate_names(o.services, o.verify_identities)
        return HostAuditRequest(
            cert_options=cert_options,
            endpoints=tuple(normalize_endpoints(list(endpoints), field="endpoints")) if endpoints else (),
            crl_timeout_ms=o.crl_timeout_ms, purge_cache=purge, max_bytes=DEFAULT_MAX_BYTES,
            peers=tuple(normalize_peers(list(peers))) if peers else (), samples=o.probe_samples,
            probe_timeout_ms=o.probe_timeout_ms, max_handshake_ms=o.max_handshake_ms,
            check_revocation=o.check_revocation, time_box_ms=time_box_ms, evidence=evidence, mutual=o.mutual_tls,
            service_peer=normalize_peers([self.service_peer])[0] if self.service_peer else None,
            identities=_identities.host_args(o.services, o.verify_identities, chain={
                "stores": list(o.cert_stores), "timeout_ms": o.probe_timeout_ms,
                "purge_cache": purge and not self.run.check_mode, "resync": purge and not self.run.check_mode}))

    def judge(self, phase: str, crl: MeasuredPart, tls: MeasuredPart, *, lost: bool = False) -> None:
        self.run.checks[phase] = judge_phase(crl, tls, requirement=self.options.endpoint_requirement,
                                             max_handshake_ms=self.options.max_handshake_ms, lost=lost)

    def judge_service(self, phase: str, service: t.Any) -> None:
        """The host's own service after the phase's own proof (identities included) is judged: stale or not."""
        o = self.options
        self.run.service = _service.judge_service(
            service, phase_passed=bool(self.run.checks.get(phase, {}).get("passed")), services=o.services,
            max_handshake_ms=o.max_handshake_ms, findings=self.run.findings)

    def winhttp(self, args: dict[str, t.Any], current: t.Any) -> dict[str, t.Any]:
        """``winhttp_proxy`` without its read (``current``); an expected failure is raised with its result."""
        if not self.run.check_mode:
            self.run.commands += 1
        return manage_winhttp_proxy(self.connection, args, check_mode=self.run.check_mode, diff=True,
                                    task_action=self.task_action, current=current)


def _gather(steps: _Steps, peers: list[dict[str, t.Any]]) -> HostAudit | None:
    run, o = steps.run, steps.options
    try:
        # An audit stops waiting at its time box: a host that cannot fetch its CRLs says so within it instead of
        # after every timeout. The fix measures in full: its first measurement is the rollback's baseline.
        request = steps.request(with_certificates=True, endpoints=o.extra_endpoints,
                                purge=run.check_mode and o.flush, peers=peers,
                                time_box_ms=o.audit_time_box_ms if run.check_mode else None,
                                evidence=_evidence.host_args(hours=o.evidence_hours, services=o.services, mark=False,
                                                             enable_capi2=o.enable_capi2_log and not run.check_mode))
    except ValueError as exc:
        run.error("gather", str(exc))
        return None
    try:
        audit = steps.audit(request)
    except AnsibleConnectionFailure as exc:
        run.error("gather", f"{steps.task_action}: {exc}", unreachable=True)
        return None
    except ExpectedFailure as exc:
        run.error("gather", f"{steps.task_action}: {exc}")
        return None
    if audit.winhttp_state is None:
        run.error("gather", str(audit.winhttp) or "the WinHTTP state could not be read")
        return None
    if isinstance(audit.certificates, ExpectedFailure):
        run.error("gather", str(audit.certificates) or "the certificate inventory failed without a message")
        return None
    run.certificates = audit.certificates
    run.before = describe_before(audit.winhttp_state)
    run.evidence = _evidence.build_evidence(audit.evidence)
    if o.enable_capi2_log and run.check_mode and not run.evidence.get("error"):
        _evidence.predict_capi2_log(run.evidence)
    return audit


def _read_identities(run: HostRun, audit: HostAudit, phase: str) -> None:
    """The record's identities, caller and path findings from this measurement (the last one wins).

    An identity whose chain fails fails the phase's check: the host is not proven for the account its service runs
    as, whatever the connecting admin measured.
    """
    part = audit.identities
    if part is None or audit.winhttp_state is None:
        return
    if isinstance(part, ExpectedFailure):
        run.identities, run.caller = {}, None
        run.error("identities", str(part), stop=False)
        return
    try:
        ldap_only = ((run.certificates or {}).get("flags") or {}).get("ldap_only") or ()
        run.identities, run.caller, findings = _identities.summarise(part, audit.winhttp_state, run.plan.get("desired"),
                                                                     ldap_only)
    except ValueError as exc:
        run.error("identities", f"{SCRIPT}: {exc}", stop=False)
        return
    if isinstance(part.get("resync"), t.Mapping):
        run.chain_cache_resync = dict(part["resync"])
    check = run.checks.get(phase)
    run.findings = [f for f in run.findings if f["code"] not in (_identities.IDENTITY_PATH_DIFFERS,
                                                                 _findings.PROXY_REJECTS_AGENT,
                                                                 _findings.PROXY_FILTERS_AGENT)]
    for finding in findings:
        _findings.add_finding(run.findings, finding["code"], finding["detail"], identity=finding["identity"])
    _findings.refusal_findings(run.findings, (check or {}).get("crl"))
    if check is None or "summary" not in check:
        return
    failures = _identities.chain_failures(run.identities)
    check["identities_ok"] = not failures
    if failures:
        check["passed"] = False
        check["summary"] = f"{check['summary']}; CryptoAPI {'; '.join(failures)}"


def _apply(steps: _Steps, current: t.Any) -> None:
    run, desired = steps.run, steps.run.plan["desired"]
    args = {"state": desired["state"], "views": run.plan["views"],
            "proxy": desired["proxy"] if desired["state"] == "present" else None,
            "bypass": desired["bypass"] if desired["state"] == "present" else None}
    try:
        run.apply = steps.winhttp(args, current)
    except AnsibleConnectionFailure as exc:
        # A lost apply may have written some views already: count it as a change, so the record reports
        # `after` as unknown instead of claiming the previous values are still in place.
        run.apply = {"changed": True, "after": None}
        run.changed = not run.check_mode
        run.error("apply", f"{steps.task_action}: {exc}; the connection was lost while applying: the host may hold "
                  "the new value in some views; the next run reads it again", unreachable=True)
        return
    except (ExpectedFailure, ValueError) as exc:
        # The half result (what ran, what the views hold now) still tells whether the registry changed.
        run.apply = {"changed": False, **_fields(exc)}
        run.changed = not run.check_mode and bool(run.apply.get("changed"))
        run.error("apply", str(exc) or "winhttp_proxy failed without a message")
        return
    run.changed = not run.check_mode and bool(run.apply.get("changed"))


def _measure_after(steps: _Steps, phase: str) -> None:
    run, o = steps.run, steps.options
    # The verification right after the change writes the fix marker (the time of the change, by the host's clock)
    # before it measures: the change's own record, in the command that already runs (no extra command).
    mark = None
    if phase == "after":
        mark = _evidence.host_args(hours=o.evidence_hours, services=(), mark=True, read=False)
    request = steps.request(with_certificates=False, endpoints=run.plan["endpoints"], purge=o.flush,
                            peers=run.plan["peers"], evidence=mark)
    try:
        audit = steps.audit(request)
    except (AnsibleConnectionFailure, ExpectedFailure) as exc:
        lost = isinstance(exc, AnsibleConnectionFailure)
        steps.judge(phase, exc if run.plan["endpoints"] else None, exc if run.plan["peers"] else None, lost=lost)
        if lost:
            kept = " after the change (the change is kept, unverified)" if phase == "after" else ""
            run.error(f"verify {phase}", f"the connection was lost while verifying{kept}: {exc}", unreachable=True)
        return
    steps.judge(phase, audit.crl, audit.tls)
    _read_identities(run, audit, phase)
    steps.judge_service(phase, audit.service)
    if mark is not None:
        _record_marker(run, audit.evidence)


def _record_marker(run: HostRun, part: t.Any) -> None:
    """What the fix's verification did to the fix marker, in the record (``evidence.marker``): restorable from it."""
    evidence = run.evidence if run.evidence is not None else _evidence.build_evidence(None)
    run.evidence = evidence
    if isinstance(part, ExpectedFailure) or not isinstance(part, t.Mapping):
        run.finding("fix_time_not_recorded", f"the time of the change could not be recorded on the host: {part}")
        return
    marker = part.get("marker") or {}
    evidence["marker"] = {"previous": marker.get("previous"), "written": marker.get("fixed_at")
                          if marker.get("written") else None}


def _roll_back(steps: _Steps) -> None:
    run, o = steps.run, steps.options
    comparison = compare_before_after(run.checks, requirement=o.endpoint_requirement, baseline_allowed=o.measure_before)
    keep, why = keep_decision(comparison)
    rollback: dict[str, t.Any] = {"performed": False, "kept": keep, "ok": False,
                                  "reason": run.checks.get("after", {}).get("summary")
                                  or "the change could not be completed",
                                  "comparison": comparison, "why": why, "restored": None, "after": None, "msg": None}
    run.rollback = rollback
    # Both views as the audit read them, whatever the plan changed: whether one netsh writes both views is contested
    # (windows-facts.md), so both are put back (a view still as it was is left alone by the restore).
    previous = dict(run.apply.get("previous_raw") or {})
    if previous:
        for view, value in ((run.before or {}).get("views") or {}).items():
            previous.setdefault(view, value.get("raw_b64"))
    if keep:
        return
    if not previous:
        run.error("rollback", "the rollback failed, the host keeps the new value: winhttp_proxy returned no previous "
                  "values to restore", stop=False)
        return
    # Compare-and-swap against what this run wrote: if something rewrote the value since, nothing is restored.
    written = {view: (value or {}).get("raw_b64") for view, value in (run.apply.get("after") or {}).items()
               if value is not None}
    try:
        result = steps.winhttp({"restore": previous}, state_from_raw(written, where="apply.after"))
    except AnsibleConnectionFailure as exc:
        rollback.update(performed=True, msg=str(exc))
        run.error("rollback", f"the rollback failed, the host keeps the new value: {exc}", unreachable=True)
        return
    except (ExpectedFailure, ValueError) as exc:
        rollback.update(performed=True, restored=previous, after=_fields(exc).get("after"), msg=str(exc))
        run.error("rollback", f"the rollback failed, the host keeps the new value: {exc}", stop=False)
        return
    rollback.update(performed=True, ok=True, restored=previous, after=result.get("after"))
    if o.measure_after_rollback:
        _measure_after(steps, "after_rollback")


def run_fix_crl_host(connection: ConnectionBase, options: FixCrlOptions, inventory: Inventory, *, check_mode: bool,
                     task_action: str) -> HostRecord:
    """Gather, plan, apply, verify and roll back on one host; return its record (``fix_crl_record``)."""
    run = HostRun(check_mode=check_mode)
    steps = _Steps(connection, options, run, task_action, _service.service_peer(options, inventory))
    peer_group, peers = derive_peers(options, inventory)
    audit = _gather(steps, peers)
    if audit is not None:
        if options.state == "present" and options.proxy is None:
            run.error("plan", "fix_crl_proxy is not set for this host: set it in the group_vars of its site (the "
                      "empty string means direct access) or set fix_crl_state: absent")
        else:
            try:
                run.plan = make_plan(options, audit.winhttp_state, run.certificates, peer_group, peers)
            except ValueError as exc:
                run.error("plan", str(exc))
    if not run.stop:
        steps.judge("before", audit.crl if audit else None, audit.tls if audit else None)
        if audit is not None:
            _read_identities(run, audit, "before")
            steps.judge_service("before", audit.service)
        if run.plan["change"]:
            _apply(steps, audit.winhttp_state if audit else None)
        if run.changed and not run.stop:
            _measure_after(steps, "after")
        if (run.changed and options.rollback and not run.unreachable
                and not run.checks.get("after", {}).get("passed")):
            _roll_back(steps)
    last = next((run.checks[phase] for phase in ("after_rollback", "after", "before") if phase in run.checks), None)
    for code, detail in tls_findings((last or {}).get("tls")):
        run.finding(code, detail)
    if run.evidence is not None:
        # "Every identity's chain check" is each identity the proof ran as; none read: the admin's own checks.
        chains = [{"identity": name, "chain": {"passed": values.get("chain_ok")}}
                  for name, values in (run.identities or {}).items()]
        for code, detail in _evidence.evidence_findings(run.evidence, run.checks, identities=chains):
            run.finding(code, detail)
    return HostRecord.from_run(run, host=inventory.hostname, extra_endpoints=options.extra_endpoints,
                               flush=options.flush)


__all__ = ["run_fix_crl_host", "run_host_audit"]
