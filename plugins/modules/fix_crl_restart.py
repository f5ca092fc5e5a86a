#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/fix_crl_restart.py,
# which runs on the controller.

DOCUMENTATION = r"""
module: fix_crl_restart
short_description: Restart the services a fix_crl_host record found stale, then handshake with them again
version_added: 1.0.0
description:
  - The C(crlfix.windows.fix_crl) role's step after C(crlfix.windows.fix_crl_host), run with C(throttle=1) so that
    hosts restart one at a time inside each batch, and only when C(fix_crl_restart_services) is true and the
    host's record says its own service is stale (finding C(service_stale), the host's own proof passes but a
    mutual-TLS handshake with its own service is still slow).
  - In one remote command the host stops and starts each of the record's services (waiting at most O(wait_ms)
    for each), starts again the services that depended on it, then handshakes with its own service as
    C(fix_crl_host) did. A service that does not stop or start in time, or does not exist, is reported in the
    record's C(service.restart) with Windows' message and is never retried.
  - Returns the record with C(service.restart), the finding and the status updated (V(failed) with the reason
    while the service stays stale; what the host was before, once it is fresh), and writes it back to its file.
  - A record whose service is not stale is returned unchanged and nothing runs on the host; in check mode nothing
    is restarted either.
  - The probe's options (O(probe_samples), O(probe_timeout_ms), O(max_handshake_ms), O(check_revocation)) are the
    role's, for the handshakes with the host's own service; it is fresh when they pass.
options:
  record:
    description:
      - The host's C(fix_crl_host) result as registered (the summary with C(record_path), or the whole record).
    type: dict
    required: true
  wait_ms:
    description:
      - How long to wait for each service to stop, and then to run again, in milliseconds.
    type: int
    default: 120000
attributes:
  check_mode:
    details: Restarts nothing and runs nothing on the host; returns the record as it is.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
  - crlfix.windows._shared.probe
notes:
  - Restarting a Lync front end's services drops its calls and conferences for a moment; the role restarts only
    when asked (C(fix_crl_restart_services)), one host at a time, and C(fix_crl_serial) keeps a pool in service.
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Fix a Lync front end and prove it with its own service (RTCSRV checks this host's certificate itself)
  crlfix.windows.fix_crl_host:
    proxy: proxy.contoso.com:8080
    services: [RTCSRV, RTCMEDSRV]
    fail_host: false
  register: fix_crl_record

- name: Restart the services still holding state from before the fix, one host at a time
  crlfix.windows.fix_crl_restart:
    record: "{{ fix_crl_record }}"
  register: fix_crl_record_restarted
  throttle: 1
  when: fix_crl_record.service_stale
"""

RETURN = r"""
status:
  description: The host's status after the restart (see C(crlfix.windows.fix_crl_host)).
  returned: always
  type: str
reason:
  description: Why the host has that status; null for a compliant host.
  returned: always
  type: str
record_path:
  description: The record's file, written again, when the record came as a summary.
  returned: when the record came as a summary
  type: str
service:
  description: The record's C(service) (see C(crlfix.windows.fix_crl_host)), with C(restart) filled in.
  returned: when the whole record came
  type: dict
"""
