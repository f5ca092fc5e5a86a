#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/fix_crl_host.py,
# which runs on the controller.

DOCUMENTATION = r"""
---
module: fix_crl_host
short_description: One Windows host's whole fix_crl run (audit, fix, prove, roll back) in one task
version_added: 0.2.0
description:
  - Does on one host what the R(fix_crl role,ansible_collections.crlfix.windows.docsite.fix_crl) promises, in as
    few remote commands as the job allows, and returns the host record the fleet report reads
    (M(crlfix.windows.fix_crl_report)). The role is this one task; its variables are these options with the
    prefix C(fix_crl_).
  - B(Audit) (check mode), and a host that is already correct, cost B(one) remote command. A single PowerShell
    script reads both WinHTTP registry views and the certificate stores, fetches the certificates' HTTP(S)
    revocation URLs through the machine WinHTTP proxy and probes the peers with TLS handshakes, the fetch and
    the probes at the same time. The certificates are parsed and judged on the controller.
  - A host that needs a change costs three commands (the one above, the write, the measurement after it with the
    CryptoAPI URL cache purged in the same command); a rolled-back host four (plus the byte-exact restore).
  - The write does not read the registry again. It carries the values the first command read and the host
    writes only if they are still there (compare-and-swap); otherwise nothing is written and the host is
    reported failed with both values. The restore is guarded the same way against what this run wrote.
  - Every failure of the host (lost connection, a refused script, a failed write) is recorded in the result
    with its step and reason, never raised; with O(fail_host=false) the task itself never fails, so one host's
    trouble never stops the fleet.
options:
  state:
    description: V(present) gives the host the proxy in O(proxy); V(absent) gives it direct access.
    type: str
    choices: [present, absent]
    default: present
  proxy:
    description:
      - The WinHTTP proxy, C(host:port) or C(http=host:port;https=host:port). The empty string means direct
        access. With O(state=present) and no O(proxy) the host is not changed and is reported failed.
    type: str
  bypass:
    description: Bypass list; C(<local>) and C(*.domain) wildcards allowed. Ignored for direct access.
    type: list
    elements: str
    default: []
  views:
    description: The WinHTTP registry views to manage (V(wow6432) is skipped on a 32-bit OS).
    type: list
    elements: str
    choices: [native, wow6432]
    default: [native, wow6432]
  cert_stores:
    description: LocalMachine certificate stores whose certificates must pass revocation checking.
    type: list
    elements: str
    default: [My]
  chain_stores:
    description: LocalMachine stores read to build the chains.
    type: list
    elements: str
    default: [CA, Root]
  cert_thumbprints:
    description: Only these certificates (SHA-1 thumbprints) of O(cert_stores); empty means all.
    type: list
    elements: str
    default: []
  cert_subject:
    description: Only certificates whose subject matches this pattern (as M(crlfix.windows.cert_revocation_info)).
    type: str
  cert_ekus:
    description: Only certificates with one of these extended key usages (names or OIDs).
    type: list
    elements: str
    default: []
  expiry_warning_days:
    description: Flag certificates that expire within this many days.
    type: int
    default: 30
  extra_endpoints:
    description: More revocation URLs to check from the host (strings or C(url)/C(kind) dicts).
    type: list
    elements: raw
    default: []
  endpoint_requirement:
    description:
      - Every HTTP(S) endpoint must answer (V(reachable)) or also give a current CRL or certificate (V(usable)).
    type: str
    choices: [reachable, usable]
    default: reachable
  crl_timeout_ms:
    description: Time allowed for all CRL fetches of one measurement (they run at the same time).
    type: int
    default: 15000
  flush:
    description: Purge the CryptoAPI URL cache in the measurement right after a change.
    type: bool
    default: true
  measure_before:
    description:
      - Use the first command's measurement as the baseline a failed change is compared with. Without it a change
        that fails verification is always rolled back.
    type: bool
    default: true
  measure_after_rollback:
    description:
      - Measure once more after a rollback (a fifth remote command). The restore writes the previous bytes back
        exactly and the first command measured the host with them, so this is off by default.
    type: bool
    default: false
  audit_time_box_ms:
    description:
      - In check mode, stop waiting for the CRL fetch and the TLS probes this many milliseconds after they start;
        what has not finished is reported as C(not finished within the audit's time box of <n> ms). A host
        without a working proxy then costs the audit this long instead of every retrieval timeout. Null waits
        for the full timeouts. The fix always measures in full (its first measurement is the rollback's
        baseline).
      - The default is twice the default O(max_handshake_ms), so a handshake fast enough to pass always
        finishes inside it.
    type: int
    default: 2000
  peers:
    description: TLS peers to probe (as M(crlfix.windows.tls_probe)); the empty list means no probes. Default derived.
    type: list
    elements: raw
  peer_group:
    description: The inventory group whose members are this host's peers. Default the first of O(peer_groups) it is in.
    type: str
  peer_groups:
    description: Groups searched for O(peer_group).
    type: list
    elements: str
    default: [lync_servers, exchange_servers, adfs_servers]
  max_peers:
    description: Peers per host, the next members of the sorted group after this host (0 means all).
    type: int
    default: 3
  peer_address_from:
    description: Connect to the peer's V(inventory_hostname) or its V(ansible_host); the SNI is the inventory name.
    type: str
    choices: [inventory_hostname, ansible_host]
    default: inventory_hostname
  tls_port:
    description: Port of the derived peers (5061 is Lync/Skype SIP over TLS).
    type: int
    default: 5061
  probe_samples:
    description: Handshakes per peer.
    type: int
    default: 3
  probe_timeout_ms:
    description: Socket timeout of one probe.
    type: int
    default: 20000
  max_handshake_ms:
    description: A slower handshake fails verification.
    type: int
    default: 1000
  check_revocation:
    description: Check revocation during the probe handshakes, as Schannel does for services.
    type: bool
    default: true
  rollback:
    description: Restore the exact previous values when verification fails after a change that made things worse.
    type: bool
    default: true
  fail_host:
    description: Fail the task when the host ends V(rolled_back), V(failed) or V(unreachable).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._attributes
attributes:
  check_mode:
    support: full
    details: Reads and measures everything, predicts the write and the purge, writes nothing (one remote command).
  diff_mode:
    support: full
    details: Shows both views' proxy and bypass before and after.
notes:
  - Register the result as C(fix_crl_record); the fleet report reads that host variable.
seealso:
  - module: crlfix.windows.winhttp_proxy
  - module: crlfix.windows.cert_revocation_info
  - module: crlfix.windows.crl_retrieval_check
  - module: crlfix.windows.tls_probe
  - module: crlfix.windows.fix_crl_report
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Audit one host (check mode), keep its record for the fleet report
  crlfix.windows.fix_crl_host:
    proxy: proxy.contoso.com:8080
    bypass: ["<local>", "*.contoso.com"]
  check_mode: true
  register: fix_crl_record

- name: Fix it, prove it with the SIP peers of its pool, roll back what fails
  crlfix.windows.fix_crl_host:
    proxy: proxy.contoso.com:8080
    peer_group: lync_servers
    fail_host: false
  register: fix_crl_record
"""

RETURN = r"""
schema:
  description: Version of the record layout.
  returned: always
  type: int
  sample: 1
host:
  description: The inventory name.
  returned: always
  type: str
status:
  description: V(compliant), V(would_change), V(changed), V(rolled_back), V(failed) or V(unreachable).
  returned: always
  type: str
reason:
  description: One line saying why (null for compliant).
  returned: always
  type: str
check_mode:
  description: Whether this was an audit.
  returned: always
  type: bool
desired:
  description: The C(state), C(proxy), C(bypass) and C(views) asked for.
  returned: always
  type: dict
before:
  description: Both views as found (C(present), C(mode), C(proxy), C(bypass), C(raw_b64)), C(views_disagree).
  returned: always
  type: dict
planned:
  description: C(change), C(views), C(predicted_change), C(operations), C(diff), C(flush), C(peer_group), C(peers).
  returned: always
  type: dict
after:
  description: Both views after the run (C(raw_b64) null where only predicted or unknown).
  returned: always
  type: dict
certificates:
  description: The checked certificates (subject, thumbprint, store, not_after, days_remaining, flags, ...).
  returned: always
  type: list
  elements: dict
flags:
  description:
    - Findings (C(expired), C(expiring_soon), C(ldap_only), C(no_endpoints), C(chain_incomplete),
      C(views_disagree)).
  returned: always
  type: dict
endpoints:
  description: The revocation endpoints found plus O(extra_endpoints).
  returned: always
  type: list
  elements: raw
checks:
  description:
    - Per phase (C(before), C(after), C(after_rollback)) the CRL retrieval and TLS probe results, C(crl_ok),
      C(tls_ok), C(passed) and a one-line C(summary).
  returned: always
  type: dict
rollback:
  description: Whether a rollback ran, why, the comparison before/after, and what was restored (null without one).
  returned: always
  type: dict
errors:
  description: Failed steps, each C(step), C(msg), C(unreachable).
  returned: always
  type: list
  elements: dict
commands:
  description: Remote commands this run sent to the host.
  returned: always
  type: int
  sample: 1
counts_against_rollout:
  description:
    - Whether the playbook's rollout gate counts this host (rolled back, or an error that was not a lost
      connection).
  returned: always
  type: bool
"""
