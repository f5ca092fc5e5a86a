# PRIVATE to the crlfix.windows collection; may change without notice.
"""One host's fix_crl run: the order of its remote commands, as few as the job allows (docs/performance.md).

    audit (check mode)          1  host_audit: both WinHTTP views, certificates, CRL fetch and TLS probes at once,
                                   the measurement cut at audit_time_box_ms
    correct host                1  the same
    host that needs a change    3  host_audit, winhttp_apply (compare-and-swap, no re-read), host_audit after
    ... rolled back             4  + winhttp_apply restore (compare-and-swap against what this run wrote)

The measurement after a rollback is a fifth command and off by default (``measure_after_rollback``): the restore
writes the previous bytes back exactly, and the first command already measured the host with them.
This module only orders the commands: each measurement goes to the judge (``_judge``) as it comes, and the record
(``_record``) gathers the verdicts and decides the status once, at the end. Every failure is recorded in the
:class:`HostRun` (a lost connection as ``unreachable``), never raised, so one host's trouble never stops the fleet.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import validate_options
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _evidence, _identities, _judge
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import (
    CRL_MAX_BYTES,
    SCRIPT,
    HostAudit,
    HostAuditRequest,
    host_args,
    parse_host_audit,
    validate_request,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import (
    FixCrlOptions,
    Inventory,
    derive_peers,
    describe_before,
    make_plan,
    service_peer,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._record import HostRecord, HostRun
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import (
    Peer,
    client_certificate_args,
    normalize_peers,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import (
    Change,
    apply_change,
    plan_change,
    restore_from_args,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import state_from_raw

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

    from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import Endpoint


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
                 service: Peer | None, client_certificate: dict[str, str] | None) -> None:
        self.connection = connection
        self.options = options
        self.run = run
        self.task_action = task_action
        self.service = service
        self.client_certificate = client_certificate
        self.criteria = _judge.Criteria(options.endpoint_requirement, options.max_handshake_ms)

    def audit(self, request: HostAuditRequest) -> HostAudit:
        audit = run_host_audit(self.connection, request, check_mode=self.run.check_mode, task_action=self.task_action)
        self.run.commands += audit.commands
        return audit

    def request(self, *, with_certificates: bool, endpoints: t.Sequence[Endpoint], purge: bool,
                peers: t.Sequence[Peer], time_box_ms: int | None = None,
                evidence: dict[str, t.Any] | None = None) -> HostAuditRequest:
        o = self.options
        cert_options = None
        if with_certificates:
            cert_options = validate_options({
                "cert_stores": list(o.cert_stores), "chain_stores": list(o.chain_stores),
                "cert_thumbprints": list(o.cert_thumbprints), "cert_subject": o.cert_subject,
                "cert_ekus": list(o.cert_ekus), "expiry_warning_days": o.expiry_warning_days, "include_winhttp": True})
        return HostAuditRequest(
            cert_options=cert_options, endpoints=tuple(endpoints), crl_timeout_ms=o.crl_timeout_ms, purge_cache=purge,
            max_bytes=CRL_MAX_BYTES, peers=tuple(peers), samples=o.probe_samples,
            probe_timeout_ms=o.probe_timeout_ms, max_handshake_ms=o.max_handshake_ms,
            check_revocation=o.check_revocation, time_box_ms=time_box_ms, evidence=evidence, mutual=o.mutual_tls,
            service_peer=self.service, client_certificate=self.client_certificate,
            identities=_identities.host_args(o.services, o.verify_identities, chain={
                "stores": list(o.cert_stores), "timeout_ms": o.probe_timeout_ms,
                "purge_cache": purge and not self.run.check_mode, "resync": purge and not self.run.check_mode}))

    def judge(self, phase: str, audit: HostAudit | None, failure: Exception | None = None) -> None:
        """Judge one phase's measurements as they came (or the failure that cost them) and keep the verdicts."""
        run, plan = self.run, self.run.plan
        if audit is None:
            lost = isinstance(failure, AnsibleConnectionFailure)
            cost = failure if plan is None or plan.endpoints else None
            measurement = _judge.Measurement(crl=cost, tls=failure if plan is None or plan.peers else None, lost=lost)
            run.verdicts[phase] = _judge.judge_phase(measurement, self.criteria)
            return
        identities = self._identities(audit)
        measurement = _judge.Measurement(crl=audit.crl, tls=audit.tls, identities=identities, caller=run.caller,
                                         desired=plan.desired if plan else None)
        verdict = run.verdicts[phase] = _judge.judge_phase(measurement, self.criteria)
        service = _evidence.service_measurement(audit, run.evidence)
        if service is not None:
            run.service = (service, t.cast(_judge.ServiceVerdict, _judge.judge_service(
                service, proof_passed=verdict.passed, services=self.options.services,
                max_handshake_ms=self.options.max_handshake_ms)))

    def _identities(self, audit: HostAudit) -> dict[str, dict[str, t.Any]] | None:
        """The identities this measurement read (the record keeps the last ones), or None when it read none."""
        run, part = self.run, audit.identities
        if part is None or audit.winhttp_state is None:
            return None
        if isinstance(part, ExpectedFailure):
            run.identities, run.caller = {}, None
            run.error("identities", str(part), stop=False)
            return None
        try:
            ldap_only = ((run.certificates or {}).get("flags") or {}).get("ldap_only") or ()
            run.identities, run.caller = _identities.summarise(part, audit.winhttp_state, ldap_only)
        except ValueError as exc:
            run.error("identities", f"{SCRIPT}: {exc}", stop=False)
            return None
        if isinstance(part.get("resync"), t.Mapping):
            run.chain_cache_resync = dict(part["resync"])
        if isinstance(part.get("work_folder"), t.Mapping):
            run.work_folder = dict(part["work_folder"])
        return run.identities

    def winhttp(self, change: Change) -> dict[str, t.Any]:
        """Carry out a planned change; an expected failure is raised with its result."""
        if change.operations and not self.run.check_mode:
            self.run.commands += 1
        return apply_change(self.connection, change, check_mode=self.run.check_mode, diff=True,
                            task_action=self.task_action)


def _gather(steps: _Steps, peers: t.Sequence[dict[str, t.Any]]) -> tuple[HostAudit, tuple[Peer, ...]] | None:
    run, o = steps.run, steps.options
    try:
        probed = tuple(normalize_peers(list(peers))) if peers else ()
        _identities.validate_names(o.services, o.verify_identities)
        # An audit stops waiting at its time box: a host that cannot fetch its CRLs says so within it instead of
        # after every timeout. The fix measures in full: its first measurement is the rollback's baseline.
        request = steps.request(with_certificates=True, endpoints=o.extra_endpoints,
                                purge=run.check_mode and o.flush, peers=probed,
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
    except (ExpectedFailure, ValueError) as exc:  # a document that cannot be trusted, a host below the floor
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
    run.evidence = _evidence.build_evidence(audit.evidence, received_at=datetime.datetime.now(datetime.UTC))
    if o.enable_capi2_log and run.check_mode and not run.evidence.get("error"):
        _evidence.predict_capi2_log(run.evidence)
    return audit, probed


def _apply(steps: _Steps) -> None:
    run = steps.run
    try:
        run.apply = steps.winhttp(t.cast(t.Any, run.plan).change)
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
    run, o, plan = steps.run, steps.options, t.cast(t.Any, steps.run.plan)
    # The verification right after the change writes the fix marker (the time of the change, by the host's clock)
    # before it measures: the change's own record, in the command that already runs (no extra command).
    mark = None
    if phase == "after":
        mark = _evidence.host_args(hours=o.evidence_hours, services=(), mark=True, read=False)
    request = steps.request(with_certificates=False, endpoints=plan.endpoints, purge=o.flush, peers=plan.peers,
                            evidence=mark)
    try:
        audit = steps.audit(request)
    except (AnsibleConnectionFailure, ExpectedFailure) as exc:
        steps.judge(phase, None, exc)
        if isinstance(exc, AnsibleConnectionFailure):
            kept = " after the change (the change is kept, unverified)" if phase == "after" else ""
            run.error(f"verify {phase}", f"the connection was lost while verifying{kept}: {exc}", unreachable=True)
        return
    if mark is not None:
        run.evidence = _evidence.marker_written(run.evidence, audit.evidence)
    steps.judge(phase, audit)


def _roll_back(steps: _Steps) -> None:
    run, o = steps.run, steps.options
    comparison = _judge.compare_before_after(run.verdicts.get("before"), run.verdicts.get("after"),
                                             requirement=o.endpoint_requirement, baseline_allowed=o.measure_before)
    keep, why = _judge.keep_decision(comparison)
    after = run.verdicts.get("after")
    rollback: dict[str, t.Any] = {"performed": False, "kept": keep, "ok": False,
                                  "reason": after.summary if after else "the change could not be completed",
                                  "comparison": comparison, "why": why, "restored": None, "after": None, "msg": None}
    run.rollback = rollback
    # Both views as the audit read them, whatever the plan changed: whether one netsh writes both views is contested
    # (docs/dev/host-scripts.md), so both are put back (a view still as it was is left alone by the restore).
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
        restore = restore_from_args(previous)
        result = steps.winhttp(plan_change(state_from_raw(written, where="apply.after"), list(restore),
                                           restore=restore))
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
    target = service_peer(options, inventory)
    run.service_target, run.services = target, tuple(options.services)
    try:
        service = normalize_peers([target], field="service")[0] if target else None
        # The mutual probe presents the certificate the host's service presents: the one thumbprint the inventory
        # names, else the Server-Authentication certificate whose SAN holds the host's name.
        bound = options.cert_thumbprints[0] if len(options.cert_thumbprints) == 1 else None
        client = client_certificate_args(thumbprint=bound, fqdn=inventory.hostname) if options.mutual_tls else None
    except ValueError as exc:
        run.error("gather", str(exc))
        return HostRecord.from_run(run, host=inventory.hostname, extra_endpoints=options.extra_endpoints,
                                   flush=options.flush)
    run.client_certificate = client
    steps = _Steps(connection, options, run, task_action, service, client)
    peer_group, peers = derive_peers(options, inventory)
    gathered = _gather(steps, peers)
    if gathered is not None:
        audit, probed = gathered
        if options.state == "present" and options.proxy is None:
            run.error("plan", "fix_crl_proxy is not set for this host: set it in the group_vars of its site (the "
                      "empty string means direct access) or set fix_crl_state: absent")
        else:
            try:
                run.plan = make_plan(options, t.cast(t.Any, audit.winhttp_state), audit.endpoints,
                                     audit.ldap_endpoints, peer_group, probed)
            except ValueError as exc:
                run.error("plan", str(exc))
        if not run.stop:
            steps.judge("before", audit)
            if t.cast(t.Any, run.plan).changes:
                _apply(steps)
            if run.changed and not run.stop:
                _measure_after(steps, "after")
            if run.changed and options.rollback and not run.unreachable and not (
                    run.verdicts.get("after") and run.verdicts["after"].passed):
                _roll_back(steps)
    return HostRecord.from_run(run, host=inventory.hostname, extra_endpoints=options.extra_endpoints,
                               flush=options.flush)


__all__ = ["run_fix_crl_host", "run_host_audit"]
