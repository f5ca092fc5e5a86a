# PRIVATE to the crlfix.windows collection; may change without notice.
"""The host's own running service: is it still stale after the fix, and its restart (issue 11 item 5).

Why a handshake with the host's own service: every other proof runs in a new process (the audit's PowerShell, a
one-shot task as each identity), and a new process sees the new WinHTTP proxy at once. A service that was already
running may not: its chain engine keeps a memory cache and an offline-URL back-off for its whole life, and WinHTTP
applies a new default proxy to new sessions only (cryptoapi-research.md 1.4, 1.5; identity-evidence-research.md §7).
The one place that shows what the running service does is a handshake *to* it with mutual TLS: the service checks
this host's certificate in its own process, so the handshake takes as long as the service's own revocation work.

So, in the audit's one command (mutual TLS on, ``services`` named), the probe also handshakes with the host's own
service port (``service_peer``). When the host's own proof passes and that handshake is still slow, the record says
so (finding ``service_stale``, ``service.stale``) and the host fails with the reason; it is never rolled back for it
(the proxy is right; putting the old value back cannot help). With ``restart_services`` the role's
``fix_crl_restart`` step restarts the named services (one more remote command, one host at a time) and handshakes
again (:func:`apply_restart`).
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.plugin_utils import _tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _findings, _identities
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import is_time_box_error, run_host_script

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

    from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions, Inventory
    from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import Peer

RESTART_SCRIPT = "service_restart"
MAX_RESTART_WAIT_MS = 300000


def service_peer(options: FixCrlOptions, inventory: Inventory) -> dict[str, t.Any] | None:
    """The host's own service as a probe target, or None when there is nothing to learn from one.

    Without mutual TLS the service checks nothing of ours, so the handshake says nothing about its state; without
    named services there is nothing to restart and no service known to listen on ``tls_port``.
    """
    if not options.mutual_tls or not options.services:
        return None
    name = inventory.hostname
    address = inventory.ansible_host(name) if options.peer_address_from == "ansible_host" else name
    return {"host": address, "port": options.tls_port, "sni": name}


def split_service(tls: t.Mapping[str, t.Any], peer: Peer | None, *,
                  max_handshake_ms: int) -> tuple[t.Mapping[str, t.Any], dict[str, t.Any] | None]:
    """(the ``tls_probe`` document of the peers, the service's interpreted result): the host probes its own service
    after the peers, and its result is taken out before either is interpreted, so the peers' totals never count it
    (it judges the service, not the proxy path: it never fails a phase nor rolls a change back)."""
    results = tls.get("results")
    if peer is None or not isinstance(results, list):
        return tls, None  # a document without a results list fails in interpret_document, naming it
    service = _tls_probe.interpret_document((peer,), {**tls, "results": results[-1:]},
                                            max_handshake_ms=max_handshake_ms)["results"][0]
    return {**tls, "results": results[:-1]}, service


def handshake_summary(result: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    """What the record keeps of the service's handshake."""
    if result is None:
        return None
    return {key: result.get(key) for key in ("peer", "verdict", "max_ms", "median_ms", "samples_ms", "protocol",
                                             "mutual", "errors")}


def stale_detail(handshake: t.Mapping[str, t.Any], services: t.Sequence[str], max_handshake_ms: int) -> str:
    took = f"{handshake.get('max_ms')} ms" if handshake.get("max_ms") is not None else (
        "; ".join(str(e) for e in (handshake.get("errors") or [])[:1]) or "no handshake")
    return (f"the host's own proof passes, but a mutual-TLS handshake with its own service on {handshake.get('peer')} "
            f"is {handshake.get('verdict')} ({took}, limit {max_handshake_ms} ms): the running service still holds "
            f"state from before the fix (its memory cache, offline back-off or WinHTTP session); restart "
            f"{', '.join(services)} (fix_crl_restart_services: true) or wait for its back-off to run out")


def _slow_in_the_service(result: t.Mapping[str, t.Any]) -> bool:
    """The handshake was slow (or cut by the audit's time box) while this host's own check of the certificate was not
    what failed: ``revocation_unknown`` is this host's view of its own certificate (a CDP it cannot use), not the
    service's state, and is left to the checks that already report it."""
    if result.get("verdict") == "slow":
        return True
    errors = result.get("errors") or []
    return result.get("verdict") == "error" and bool(errors) and all(is_time_box_error(e) for e in errors)


def judge_service(service: dict[str, t.Any] | None, *, phase_passed: bool, services: t.Sequence[str],
                  max_handshake_ms: int, findings: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    """The record's ``service`` from one phase's handshake; adds ``service_stale`` when it applies.

    Stale only when the phase's own proof passed: on a host that is not fixed yet a slow service is the outage
    itself, already reported by the checks.
    """
    findings[:] = [f for f in findings if f["code"] != _findings.SERVICE_STALE]
    if service is None:
        return None
    handshake = handshake_summary(service)
    stale = phase_passed and _slow_in_the_service(service)
    if stale:
        _findings.add_finding(findings, _findings.SERVICE_STALE, stale_detail(handshake, services, max_handshake_ms))
    target = {key: service.get(key) for key in ("host", "port", "sni")}
    return {"handshake": handshake, "stale": stale, "services": list(services), "target": target, "restart": None}


def restart_args(services: t.Sequence[str], wait_ms: int) -> dict[str, t.Any]:
    """The ``service_restart`` script's service arguments (its ``tls`` part is tls_probe's host_args)."""
    _identities.validate_names(services, ())  # the names host_audit takes, refused the same way
    return {"services": list(services), "wait_ms": min(max(int(wait_ms), 1000), MAX_RESTART_WAIT_MS)}


def apply_restart(record: dict[str, t.Any], restart: t.Mapping[str, t.Any], handshake: t.Mapping[str, t.Any] | None,
                  *, max_handshake_ms: int) -> dict[str, t.Any]:
    """The record after a restart (``record`` is changed and returned): the handshake again, the finding, the status.

    A restart that failed (a service that did not come back) leaves the finding and fails the host with the reason;
    it is reported, never retried.
    """
    service = dict(record.get("service") or {})
    summary = handshake_summary(handshake)
    failed = [s for s in restart.get("services") or [] if not s.get("restarted")]
    fresh = not failed and summary is not None and summary.get("verdict") == "pass"
    service.update(restart={"services": list(restart.get("services") or []), "ok": not failed,
                            "handshake": summary}, stale=not fresh)
    record["service"] = service
    record["commands"] = int(record.get("commands") or 0) + 1
    findings = [f for f in record.get("findings") or [] if f["code"] != _findings.SERVICE_STALE]
    if not fresh:
        if failed:
            detail = "the restart failed: " + "; ".join(
                f"{s.get('name')}: {s.get('error') or s.get('state') or 'not running'}" for s in failed)
        else:
            detail = "after the restart, " + stale_detail(summary or {}, service.get("services") or [],
                                                          max_handshake_ms)
        _findings.add_finding(findings, _findings.SERVICE_STALE, detail)
        record["status"], record["reason"] = "failed", f"service_stale: {detail}"
    else:
        record["status"] = service.get("status_when_fresh") or record.get("status")
        record["reason"] = service.get("reason_when_fresh")
    record["findings"] = sorted(findings, key=lambda f: (f["code"], f["identity"] or "", f["detail"]))
    return record


def restart_stale_service(connection: ConnectionBase, record: dict[str, t.Any], *, wait_ms: int, samples: int,
                          timeout_ms: int, max_handshake_ms: int, check_revocation: bool,
                          task_action: str) -> dict[str, t.Any]:
    """Restart the services of a record whose service is stale, handshake again, return the record changed.

    One remote command. A lost connection or a script that fails leaves the finding, with why, in the record; the
    host is failed with the reason and nothing is tried again.
    """
    service = record.get("service") or {}
    target = service.get("target") or {}
    peer = _tls_probe.normalize_peers([target])[0]
    args = {**restart_args(service.get("services") or [], wait_ms),
            "tls": _tls_probe.host_args([peer], samples=samples, timeout_ms=timeout_ms,
                                        check_revocation=check_revocation, mutual=True)}
    try:
        document = run_host_script(connection, RESTART_SCRIPT, args, task_action=task_action)
        handshake = _tls_probe.interpret_document([peer], document["tls"],
                                                  max_handshake_ms=max_handshake_ms)["results"][0]
        restart = {"services": document.get("services") or []}
    except (AnsibleConnectionFailure, ExpectedFailure, ValueError, KeyError, TypeError) as exc:
        names = service.get("services") or []
        restart = {"services": [{"name": n, "restarted": False, "state": None, "error": f"{task_action}: {exc}"}
                                for n in names]}
        handshake = None
    return apply_restart(record, restart, handshake, max_handshake_ms=max_handshake_ms)


__all__ = ["MAX_RESTART_WAIT_MS", "RESTART_SCRIPT", "apply_restart", "handshake_summary", "judge_service",
           "restart_args", "restart_stale_service", "service_peer", "split_service", "stale_detail"]
