# PRIVATE to the crlfix.windows collection; may change without notice.
"""The restart of the host's own running service (``fix_crl_restart``): one remote command, then the judge again.

Why a running service can be stale: every other proof runs in a new process (the audit's PowerShell, a one-shot task
as each identity), and a new process sees the new WinHTTP proxy at once. A service that was already running may not:
its chain engine keeps a memory cache and an offline-URL back-off for its whole life, and WinHTTP applies a new
default proxy to new sessions only (Microsoft Learn, "WinHttpSetDefaultProxyConfiguration"; KB 2623724). The audit
sees it through a mutual-TLS handshake *to* the service, whose process checks this host's certificate itself; the judge
(``_judge.judge_service``) calls it stale only with evidence. With ``restart_services`` the role's ``fix_crl_restart``
step restarts the named services of a host whose service is stale (one more remote command, one host at a time) and
handshakes again; the judge judges that handshake (``_judge.judge_restart``) and the record decides the status again.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.crlfix.windows.plugins.plugin_utils import _tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _identities
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._evidence import ServiceMeasurement
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import run_host_script

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

RESTART_SCRIPT = "service_restart"
MAX_RESTART_WAIT_MS = 300000


def restart_args(services: t.Sequence[str], wait_ms: int) -> dict[str, t.Any]:
    """The ``service_restart`` script's service arguments (its ``tls`` part is tls_probe's host_args)."""
    _identities.validate_names(services, ())  # the names host_audit takes, refused the same way
    return {"services": list(services), "wait_ms": min(max(int(wait_ms), 1000), MAX_RESTART_WAIT_MS)}


def restart_service(connection: ConnectionBase, service: t.Mapping[str, t.Any], *, wait_ms: int, samples: int,
                    timeout_ms: int, max_handshake_ms: int, check_revocation: bool,
                    task_action: str) -> tuple[dict[str, t.Any], ServiceMeasurement | None]:
    """Restart the record's services and handshake with the service again: (the restart, the new measurement).

    One remote command. A lost connection or a script that fails is the restart's failure, with why, and no
    measurement; nothing is tried again.
    """
    target = service.get("target") or {}
    names = list(service.get("services") or [])
    try:
        peer = _tls_probe.normalize_peers([target], field="service.target")[0]
        args = {**restart_args(names, wait_ms),
                "tls": _tls_probe.host_args([peer], samples=samples, timeout_ms=timeout_ms,
                                            check_revocation=check_revocation, mutual=True,
                                            client_certificate=service.get("client_certificate"))}
        document = run_host_script(connection, RESTART_SCRIPT, args, task_action=task_action)
        handshake = _tls_probe.interpret_document([peer], document["tls"],
                                                  max_handshake_ms=max_handshake_ms)["results"][0]
    except (AnsibleConnectionFailure, ExpectedFailure, ValueError, KeyError, TypeError) as exc:
        return {"services": [{"name": n, "restarted": False, "state": None, "error": f"{task_action}: {exc}"}
                             for n in names]}, None
    return {"services": document.get("services") or []}, ServiceMeasurement(handshake=handshake)


__all__ = ["MAX_RESTART_WAIT_MS", "RESTART_SCRIPT", "restart_args", "restart_service"]
