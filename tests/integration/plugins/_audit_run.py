"""host_audit against a lab twin as the fix_crl action runs it: ``run_host_audit`` over Ansible's real winrm connection
plugin, built the way Ansible's task executor builds one from the lab inventory's variables, in this process."""

from __future__ import annotations

import typing as t

from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import validate_options
from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import Endpoint
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import HostAudit, HostAuditRequest
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._run import run_host_audit
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import parse_peer

CRL_TIMEOUT_MS = 2000


def audit_connection(lab, name: str) -> t.Any:
    h = lab.hosts[name]
    connection = connection_loader.get("winrm", PlayContext())
    connection.set_options(var_options={
        "ansible_host": h.address, "ansible_port": h.http_port, "ansible_user": h.user, "ansible_password": h.password,
        "ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": "http", "_extras": {}})
    return connection


def audit_request(lab, peer: str | None, *, certs: bool = True, endpoints: tuple[Endpoint, ...] = (), purge=False,
                  samples: int = 2, stop_after_unknown: bool = True, crl_timeout_ms: int = CRL_TIMEOUT_MS,
                  time_box_ms: int | None = None, port: int | None = None) -> HostAuditRequest:
    return HostAuditRequest(
        cert_options=validate_options({"cert_stores": ["My"], "chain_stores": ["CA", "Root"]}) if certs else None,
        endpoints=endpoints, crl_timeout_ms=crl_timeout_ms, purge_cache=purge, max_bytes=4194304,
        peers=(parse_peer(f"{peer}:{port or lab.tls_port}", field="peers[0]"),) if peer else (), samples=samples,
        probe_timeout_ms=8000, max_handshake_ms=3000, check_revocation=True, stop_after_unknown=stop_after_unknown,
        time_box_ms=time_box_ms)


def run_audit(lab, host: str, request: HostAuditRequest, *, check_mode: bool = False) -> tuple[HostAudit, int]:
    """The result and the number of shell commands the twin ran for it."""
    before = lab.metrics()["hosts"][host]["shell_commands"]
    connection = audit_connection(lab, host)
    try:
        result = run_host_audit(connection, request, check_mode=check_mode, task_action="test_host_audit")
    finally:
        connection.close()
    return result, lab.metrics()["hosts"][host]["shell_commands"] - before
