#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/fix_crl_host.py, which runs on the controller.

DOCUMENTATION = r"""
module: fix_crl_host
short_description: One Windows host's whole fix_crl run (audit, fix, prove, roll back) in one task
version_added: 1.0.0
description:
  - Does on one host what the R(fix_crl role,ansible_collections.crlfix.windows.docsite.fix_crl) promises, in as
    few remote commands as the job allows, and returns the host record the fleet report reads
    (M(crlfix.windows.fix_crl_report)); register it as C(fix_crl_record). The role is this one task; its variables
    are these options with the prefix C(fix_crl_).
  - B(Audit) (check mode), and a host that is already correct, cost B(one) remote command. A single PowerShell
    script reads both WinHTTP registry views and the certificate stores, fetches the certificates' HTTP(S)
    revocation URLs through the machine WinHTTP proxy and probes the peers with TLS handshakes, at the same time.
    A change costs three commands (that one, the write, the measurement with the URL cache purged), a rollback four.
  - The write and the byte-exact restore are compare-and-swap, the host writing only if the values read are still
    there. Every failure of the host is recorded with its step and reason, never raised (with O(fail_host=false) one
    host's trouble never stops the fleet). The task is C(changed) whenever the run wrote the registry (or would).
options:
  state:
    description:
      - V(present) gives the host the proxy in O(proxy); V(absent) gives it direct access (what
        C(netsh winhttp reset proxy) writes).
    type: str
    choices: [present, absent]
    default: present
  proxy:
    description:
      - The WinHTTP proxy the host must use, C(host:port) or per scheme C(http=host:port;https=host:port).
      - The empty string means direct access, like O(state=absent).
      - Usually set in group_vars per site; a host with O(state=present) and no O(proxy) is failed with the reason.
        Every form of M(crlfix.windows.winhttp_proxy) works (a dict of schemes to C(host[:port]) too).
    type: raw
  bypass:
    description:
      - Bypass list (hosts that are reached without the proxy); C(<local>) and C(*.domain) wildcards allowed.
      - Ignored for direct access.
    type: list
    elements: str
    default: []
  views:
    description:
      - The WinHTTP registry views to manage. V(native) is the 64-bit view (C(System32\netsh.exe)),
        V(wow6432) the 32-bit one (C(SysWOW64\netsh.exe)) that 32-bit services read; V(wow6432) is skipped on
        a 32-bit OS.
    type: list
    elements: str
    choices: [native, wow6432]
    default: [native, wow6432]
  extra_endpoints:
    description:
      - URLs the host must reach besides those of its certificates (for example the CRL of a partner's CA),
        as strings or C({url, kind}) dicts.
    type: list
    elements: raw
    default: []
  endpoint_requirement:
    description:
      - What an HTTP(S) revocation endpoint must be for verification to pass. V(reachable) is an HTTP answer through
        the proxy; V(usable) also a body that parses as the expected CRL (not stale) or certificate. LDAP endpoints
        are never fetched (an HTTP proxy cannot carry them); they are flagged.
    type: str
    choices: [reachable, usable]
    default: reachable
  flush:
    description:
      - After a change, purge the CryptoAPI URL cache before the CRL check, so a cached result hides nothing.
      - The purge and the chain engine's resync happen before the keep decision; a change that is rolled back leaves
        the services to fetch their CRLs again on the old path. V(false) keeps every cache, and the check after the
        change may then read a cached answer.
    type: bool
    default: true
  measure_before:
    description:
      - Keep a change that fails verification but made nothing worse than the first measurement (with V(false)
        always roll it back).
    type: bool
    default: true
  measure_after_rollback:
    description:
      - Measure the host once more after a rollback (a fifth remote command; the first command measured those bytes).
    type: bool
    default: false
  audit_time_box_ms:
    description:
      - In check mode, stop waiting for the CRL fetch and the peers' TLS probes this many milliseconds after they
        start and report what has not finished, instead of waiting out every retrieval timeout (null waits in full, as
        the fix does). Twice the default O(max_handshake_ms), so a handshake fast enough to pass finishes in it.
    type: int
    default: 2000
  peers:
    description:
      - Peers to probe, as M(crlfix.windows.tls_probe) takes them; when set it replaces the peers derived from
        O(peer_group), and the empty list means no probes.
    type: list
    elements: raw
  peer_group:
    description:
      - Inventory group whose other members are this host's peers. Default the first of O(peer_groups) the host
        belongs to; a host in none of them has no peers and is verified by the CRL check alone.
    type: str
  peer_groups:
    description:
      - Groups searched, in order, for the host's peer group when O(peer_group) is not set.
    type: list
    elements: str
    default: [lync_servers, exchange_servers, adfs_servers]
  max_peers:
    description:
      - At most this many peers per host (the next ones in the sorted group, wrapping around); V(0) means all.
    type: int
    default: 3
  peer_address_from:
    description:
      - Which name of a peer the host connects to; the TLS server name (SNI) is always the peer's inventory
        name. Use V(ansible_host) when inventory names do not resolve on the servers themselves.
    type: str
    choices: [inventory_hostname, ansible_host]
    default: inventory_hostname
  tls_port:
    description:
      - TCP port of the derived peers' TLS service (5061 is Lync/Skype SIP MTLS; use 443 for Exchange and ADFS).
    type: int
    default: 5061
  mutual_tls:
    description:
      - Present the host's own certificate as the client certificate in each probe, as Lync front ends talk SIP over
        mutual TLS, so a handshake slow only with the certificate is put down to the peer (C(slow_because=peer)).
      - With O(services) set, the probe also handshakes with the host's own service on O(tls_port), so a service that
        still holds state from before the fix is seen (finding C(service_stale)).
    type: bool
    default: true
  restart_services:
    description:
      - For the role's C(crlfix.windows.fix_crl_restart) step, which restarts O(services) on a host found
        C(service_stale), one host at a time, never in check mode, and handshakes again (C(service.restart)).
    type: bool
    default: false
  rollback:
    description:
      - Restore the previous values byte for byte when a change fails verification and made things worse (with V(false)
        it is kept and the host failed).
    type: bool
    default: true
  fail_host:
    description:
      - Fail the task when the host ends V(rolled_back) or V(failed); C(playbooks/fix-crl.yml) sets V(false) and
        fails those hosts after the fleet report is written, so that a failing canary still gets its report.
    type: bool
    default: true
  services:
    description:
      - Windows service names (e.g. C(RTCSRV)); their SCM start timeouts (7000, 7009, 7011) count as symptoms, and
        the proof runs as their accounts (empty, with O(verify_identities) too, means NETWORK SERVICE and SYSTEM).
    type: list
    elements: str
    default: []
  evidence_hours:
    description:
      - Hours of symptom events the audit counts (C(evidence.events)), and as many before a recorded fix.
    type: int
    default: 24
  enable_capi2_log:
    description:
      - Enable the C(Microsoft-Windows-CAPI2/Operational) log (off by default; CAPI2 11, 41, 53) in the run's first
        command, never in check mode; C(evidence.capi2_log.previous) keeps its state before, to restore it.
    type: bool
    default: false
  options_from_vars:
    description:
      - Read every option not given as an argument from the host variable C(<options_from_vars><option>), templated
        by this action and validated like an argument (the role passes V(fix_crl_)); a variable that does not
        template fails the host naming it. Not a role variable.
    type: str
  result_detail:
    description:
      - V(summary) returns the record's summary and writes the whole record to a file of the run on the controller
        (RV(record_path)) that M(crlfix.windows.fix_crl_report) reads; V(full) returns the whole record.
    type: str
    choices: [summary, full]
    default: summary
  verify_identities:
    description:
      - Accounts to prove the host as instead of the accounts of O(services), as Windows prints them (e.g.
        C(CONTOSO\svc-adfs$)); each one's CryptoAPI proxy is in the record (KB 2623724), finding
        C(identity_path_differs) when not the intended one; an account that needs a password is not run as.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    details: Reads and measures everything, predicts the write and the purge, writes nothing (one remote command).
  diff_mode:
    support: full
    details: Shows both views' proxy and bypass before and after.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
  - crlfix.windows._shared.certificates
  - crlfix.windows._shared.crl_fetch
  - crlfix.windows._shared.probe
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

- name: Keep the whole record in the result, to read more than its summary in the play
  crlfix.windows.fix_crl_host:
    proxy: proxy.contoso.com:8080
    result_detail: full
  check_mode: true
  register: fix_crl_full

- name: Show why the host fails, whose it is to fix, and how (its primary cause first)
  ansible.builtin.debug:
    msg: "{{ fix_crl_full.diagnosis | map(attribute='cause') }}"
"""

RETURN = r"""
schema:
  description: Version of the record layout.
  returned: always
  type: int
host:
  description: The inventory name.
  returned: always
  type: str
status:
  description: V(compliant), V(would_change), V(changed), V(rolled_back), V(failed) or V(unreachable).
  returned: always
  type: str
reason:
  description: One line saying why (null for compliant); it starts with the primary cause of RV(diagnosis) in words.
  returned: always
  type: str
check_mode:
  description: Whether this was an audit.
  returned: always
  type: bool
desired:
  description: The C(state), C(proxy), C(bypass) and C(views) asked for.
  returned: when O(result_detail=full); always in the record file
  type: dict
before:
  description: Both views as found (C(present), C(mode), C(proxy), C(bypass), C(raw_b64)), C(views_disagree).
  returned: when O(result_detail=full); always in the record file
  type: dict
planned:
  description: C(change), C(views), C(predicted_change), C(operations), C(diff), C(flush), C(peer_group), C(peers).
  returned: when O(result_detail=full); always in the record file
  type: dict
after:
  description: Both views after the run (C(raw_b64) null where only predicted or unknown).
  returned: when O(result_detail=full); always in the record file
  type: dict
certificates:
  description: The checked certificates (subject, thumbprint, store, not_after, days_remaining, flags, ...).
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: dict
flags:
  description: C(expired), C(expiring_soon), C(ldap_only), C(no_endpoints), C(chain_incomplete), C(views_disagree).
  returned: when O(result_detail=full); always in the record file
  type: dict
endpoints:
  description: The revocation endpoints found plus O(extra_endpoints).
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: raw
checks:
  description: Per phase (C(before), C(after), C(after_rollback)) the CRL and TLS results, C(crl_ok), C(tls_ok),
    C(identities_ok), C(passed), C(summary); CRL results have C(foreign_agent), the audit C(invalid_endpoints) (not
    fetched, not failing); a TLS peer's C(unknown_because) is V(peer_certificate) when its C(peer_certificate) has no
    http(s) CRL URL.
  returned: when O(result_detail=full); always in the record file
  type: dict
rollback:
  description: Whether a rollback ran, why, the comparison before/after, and what was restored (null without one).
  returned: when O(result_detail=full); always in the record file
  type: dict
errors:
  description: Failed steps, each C(step), C(msg), C(unreachable).
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: dict
commands:
  description: Remote commands this run sent to the host.
  returned: always
  type: int
evidence:
  description: The host's own evidence (the audit's one command), symptom C(events) of the last O(evidence_hours)
    (C(before), C(since) the fix), C(fixed_at), C(marker), C(hourly), C(logs), C(queries), C(chain_engine),
    C(capi2_log), C(clock) (the host's time against the controller's), C(gpp_registry), C(root_autoupdate), C(error).
  returned: when O(result_detail=full); always in the record file
  type: dict
identities:
  description:
    - Per account the proof ran as, C(sid), C(services), C(profile_loaded), C(effective_proxy) (C(source) V(netsh),
      V(ie), V(wpad) or V(direct), C(proxy), for WPAD C(pac_url), C(error)), C(runnable), C(chain_ok), C(chain_ms),
      C(crl), C(cache_purged), C(error). C(chain_ok) is false only when the chain built as the account shows
      revocation flags; null with C(not_run_reason) when the proof did not run or decide (C(run_outcome) V(late),
      V(no_result), V(not_started); C(task_result) its LastTaskResult in hex; C(start_ms) the task's start).
  returned: when O(result_detail=full); always in the record file
  type: dict
caller:
  description: The connecting account (C(name), C(sid)) and the C(effective_proxy) CryptoAPI uses as it.
  returned: when O(result_detail=full); always in the record file
  type: dict
findings:
  description: What the run found that needs a look, each C(code), C(identity) (null for the host) and C(detail),
    ordered by code then identity; R(the causes page,ansible_collections.crlfix.windows.docsite.causes) explains each.
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: dict
chain_cache_resync:
  description: After a fix, C(certutil -setreg chain\ChainCacheResyncFiletime @now) (each chain engine drops what it
    cached), with C(previous_b64) (null when unset; write it back to restore), C(written_b64), C(rc), C(output).
  returned: when O(result_detail=full); always in the record file
  type: dict
service:
  description:
    - The host's own running service, from a mutual-TLS handshake with it (O(mutual_tls) and O(services) set), with
      C(handshake), C(verdict) (C(state) V(fresh), V(stale), V(slow) or V(unjudged), C(detail)), C(stale) (proven
      stale, finding V(service_stale), the host V(failed), never rolled back for it; slow without that evidence is
      V(service_slow)), C(evidence) (C(processes) with C(process_started), C(changed_at) of the proxy value),
      C(services), C(target), C(status_when_fresh), C(reason_when_fresh) and C(restart) (what the role's restart step
      did, with its C(verdict)). Null when no such handshake was made.
  returned: when O(result_detail=full); always in the record file
  type: dict
trust_store:
  description: The Root store's C(count), C(issuer_list_bytes) and C(non_self_signed) entries (cert_revocation_info's).
  returned: when O(result_detail=full); always in the record file
  type: dict
diagnosis:
  description:
    - Why the host fails, from the R(cause catalogue,ansible_collections.crlfix.windows.docsite.causes), each cause
      that holds, primary first, with C(cause), C(title), C(owner) (V(server), V(network), V(pki), V(application)),
      C(fix), C(fixable_here), C(evidence) (what was seen), C(urls), C(proxies); V(undetermined) with what was seen
      when none holds. Empty for a compliant, changed or unreachable host.
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: dict
risks:
  description: The causes that hold on a host whose proof passes (compliant, or changed and proved), as RV(diagnosis)
    lists them; they fail nothing measured today (a failing OCSP responder while the CRL works). Else empty.
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: dict
counts_against_rollout:
  description: Whether the playbook's rollout gate counts this host (rolled back, or an error, not a lost connection).
  returned: always
  type: bool
counts:
  description: The length of every list of the record and of every flag list, what host events are filtered on.
  returned: when O(result_detail=summary)
  type: dict
  sample: {"certificates": 2, "endpoints": 3, "errors": 0, "expired": 0, "ldap_only": 1}
worst_ms:
  description: The slowest TLS handshake of each measured phase (C(before), C(after), C(after_rollback)), in ms.
  returned: when O(result_detail=summary)
  type: dict
  sample: {"before": 5012.3}
service_stale:
  description: Whether the host's own service is still stale (C(service.stale) of the record).
  returned: when O(result_detail=summary)
  type: bool
result_detail:
  description: V(summary) when the result is the summary (the record is in RV(record_path)).
  returned: when O(result_detail=summary)
  type: str
record_path:
  description: The file on the controller that holds the whole record (every key above), until the run ends.
  returned: when O(result_detail=summary)
  type: str
"""
