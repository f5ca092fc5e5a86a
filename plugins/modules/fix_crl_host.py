#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/fix_crl_host.py,
# which runs on the controller.

DOCUMENTATION = r"""
---
module: fix_crl_host
short_description: One Windows host's whole fix_crl run (audit, fix, prove, roll back) in one task
version_added: 1.0.0
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
  - Every failure of the host (options that fail their spec, lost connection, a refused script, a failed write)
    is recorded in the result with its step and reason, never raised; with O(fail_host=false) the task itself
    never fails, so one host's trouble never stops the fleet.
  - The task is C(changed) whenever the run wrote the host's registry (or would, in check mode), whatever the
    status. A change kept while verification still fails, or made before the connection was lost, is a change.
    Such a host is not reported C(unreachable) to Ansible (that result never counts as changed); its status says
    so. With O(fail_host=true) Ansible's recap counts the failed task, not the change.
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
      - Usually set in group_vars per site. A host with O(state=present) and no O(proxy) is not changed; it is
        reported as failed with the reason.
      - Every other form M(crlfix.windows.winhttp_proxy) takes from M(ansible.windows.win_http_proxy) works too, so
        its values can be kept - C(host) without a port, C(ftp=) and C(socks=) entries, or a dict of schemes
        (V(http), V(https), V(ftp), V(socks)) to C(host[:port]). A string stays the documented form.
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
  cert_stores:
    description:
      - LocalMachine certificate stores whose certificates must pass revocation checking.
    type: list
    elements: str
    default: [My]
  chain_stores:
    description:
      - LocalMachine stores read to build the chains (their certificates are not reported themselves).
    type: list
    elements: str
    default: [CA, Root]
  cert_thumbprints:
    description:
      - Only certificates with these SHA-1 thumbprints; empty means all certificates of O(cert_stores).
    type: list
    elements: str
    default: []
  cert_subject:
    description:
      - Only certificates whose subject matches this pattern (as M(crlfix.windows.cert_revocation_info) matches
        it).
    type: str
  cert_ekus:
    description:
      - Only certificates valid for one of these extended key usages (names or OIDs); empty means no EKU filter.
    type: list
    elements: str
    default: []
  expiry_warning_days:
    description:
      - Certificates expiring within this many days are flagged in the record and the report.
    type: int
    default: 30
  extra_endpoints:
    description:
      - URLs the host must reach besides those of its certificates (for example the CRL of a partner's CA),
        as strings or C({url, kind}) dicts.
    type: list
    elements: raw
    default: []
  endpoint_requirement:
    description:
      - What an HTTP(S) revocation endpoint must be for verification to pass. V(reachable) means an HTTP answer
        that proves the path through the proxy works; V(usable) also requires a body that parses as the
        expected CRL or certificate and a CRL that is not stale. LDAP endpoints are never fetched (an HTTP proxy
        cannot carry them); they are flagged in the report.
    type: str
    choices: [reachable, usable]
    default: reachable
  crl_timeout_ms:
    description:
      - Per-URL retrieval timeout of the CRL check, in milliseconds (Windows' default for chain building is
        15000). The URLs are fetched at the same time, so this also bounds one whole CRL check.
    type: int
    default: 15000
  flush:
    description:
      - After a change (and after a rollback), purge the host's CryptoAPI URL cache
        (C(certutil -urlcache * delete)) in the same command as the CRL check, so that cached failures do not
        linger and a cached success cannot hide a broken path. In check mode the purge is only reported.
    type: bool
    default: true
  measure_before:
    description:
      - Use the measurement of the first command (CRL check and TLS probes, taken with the gather) as the
        baseline a change that fails verification is compared with, so that the record shows the latency
        before and after and a change that made nothing worse is kept. With V(false) a change that fails
        verification is always rolled back.
    type: bool
    default: true
  measure_after_rollback:
    description:
      - Measure the host once more after a rollback (a fifth remote command). The restore writes the previous
        bytes back exactly, and the first command measured the host with them, so this is off by default.
    type: bool
    default: false
  audit_time_box_ms:
    description:
      - In check mode, stop waiting for the CRL fetch and the TLS probes this many milliseconds after they
        start; what has not finished is reported as C(not finished within the audit's time box of <n> ms). A
        host without a working proxy then costs the audit this long instead of every retrieval timeout (15 s
        per CRL, up to 20 s per handshake on Windows). Null waits for the full timeouts. The fix always
        measures in full (its first measurement is the rollback's baseline).
      - The default is twice the default O(max_handshake_ms), so a handshake fast enough to pass always
        finishes inside it.
    type: int
    default: 2000
  peers:
    description:
      - Peers to probe with TLS handshakes, C(host:port) strings or C({host, port, sni}) dicts (as
        M(crlfix.windows.tls_probe) takes them). When set it replaces the peers derived from O(peer_group); the
        empty list means no probes.
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
      - At most this many peers per host (the next ones after the host in the sorted group, wrapping around,
        so that every member is probed by someone); V(0) means all members.
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
  probe_samples:
    description:
      - Handshakes per peer.
    type: int
    default: 3
  probe_timeout_ms:
    description:
      - Timeout of one handshake (connect included), in milliseconds.
    type: int
    default: 20000
  max_handshake_ms:
    description:
      - A peer passes when its handshakes (with revocation checking) stay under this many milliseconds.
    type: int
    default: 1000
  check_revocation:
    description:
      - Check the peers' certificate revocation during the handshake, as Schannel does for the services.
    type: bool
    default: true
  mutual_tls:
    description:
      - Present the host's own certificate (the target certificate, with its private key) as the client certificate
        in each probe, as Lync front ends talk SIP over mutual TLS, so the peer's service then checks it in its own
        process, and a handshake slow only with the certificate is put down to the peer (C(slow_because=peer)).
      - With O(services) set, the probe also handshakes with the host's own service on O(tls_port), so a service
        that still holds state from before the fix is seen (finding C(service_stale)).
    type: bool
    default: true
  restart_services:
    description:
      - Restart the services named in O(services) on a host whose own proof passes while a handshake with its own
        service stays slow (finding C(service_stale)), then handshake with it again, in one more remote command.
        The role does it one host at a time inside each batch (C(throttle=1)); never in check mode. A restart that
        fails is reported (C(service.restart)) and never retried.
      - This module only records the finding; the role's C(crlfix.windows.fix_crl_restart) step restarts.
    type: bool
    default: false
  rollback:
    description:
      - Restore the previous WinHTTP values byte for byte when verification fails after a change that made
        things worse. With V(false) the change is kept and the host is reported as failed.
    type: bool
    default: true
  fail_host:
    description:
      - Fail the task when the host ends V(rolled_back) or V(failed) (the message names the status and the
        reason); a host that could not be reached is reported unreachable either way. C(playbooks/fix-crl.yml)
        sets V(false) and fails those hosts in its last play, after the fleet report is written, so that a
        failing canary still gets its report.
    type: bool
    default: true
  services:
    description:
      - Windows service names (not display names) whose Service Control Manager start timeouts (events 7000, 7009,
        7011 in the System log) count as symptoms in the record's C(evidence).
      - The proof also runs as these services' accounts (e.g. C(RTCSRV) for the Lync front end); the audit reads
        each service's account (its C(StartName), from the service's registry key) in the same remote command.
        Empty, and O(verify_identities) empty too, means C(NT AUTHORITY\NETWORK SERVICE) and C(NT AUTHORITY\SYSTEM).
    type: list
    elements: str
    default: []
  evidence_hours:
    description:
      - How many hours of symptom events the audit reads and counts (C(evidence.events)). When the host carries the
        time of an earlier fix, the same number of hours before that fix is read too, for the before/since counts.
    type: int
    default: 24
  enable_capi2_log:
    description:
      - Enable the C(Microsoft-Windows-CAPI2/Operational) event log (off by default on Windows) so that CAPI2 11,
        41 and 53 are logged from now on. A change of the host, made in the run's first command (no extra
        command); never in check mode, where C(evidence.capi2_log.predicted) says whether it would be made.
      - C(evidence.capi2_log.previous) keeps the log's state before, to restore it with
        C(wevtutil sl Microsoft-Windows-CAPI2/Operational /e:false); a rollback of the proxy leaves the log as it is.
    type: bool
    default: false
  options_from_vars:
    description:
      - Read every option not given as an argument from the host variable C(<options_from_vars><option>) when it
        is defined, templated by this action and validated like an argument. The C(crlfix.windows.fix_crl) role's
        task passes V(fix_crl_), so Ansible templates one argument per host instead of one per option.
      - A variable that does not template fails the host with the variable's name and Ansible's message.
      - Not a role variable.
    type: str
  result_detail:
    description:
      - What the task result holds. V(summary) writes the whole host record to a file of the run on the controller
        (under ansible-core's local tmp of the ansible-playbook process, removed when the run ends) and returns its
        summary with RV(record_path); M(crlfix.windows.fix_crl_report) reads the file. The host events AWX stores
        then stay small, whatever the record holds.
      - V(full) returns the whole record as the task result, for playbooks that register it and read more than
        the summary.
    type: str
    choices: [summary, full]
    default: summary
  verify_identities:
    description:
      - Accounts to prove the host as, instead of the accounts of O(services), as Windows prints them (e.g.
        C(NT AUTHORITY\NETWORK SERVICE), C(CONTOSO\svc-adfs$)).
      - For each identity the record gives the proxy CryptoAPI would use as that account (the C(netsh winhttp)
        value, then the account's own WinINet settings, then WPAD, else direct; KB 2623724) and the finding
        C(identity_path_differs) when it is not the connecting account's or the intended one. An account that is
        neither a built-in service account nor a gMSA would need its password; it is reported, not run as.
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
  - crlfix.windows._attributes
notes:
  - Register the result as C(fix_crl_record); the fleet report reads that host variable (and, for a summary, the
    record file it names).
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

- name: Show the certificates no proxy can help (only LDAP revocation endpoints)
  ansible.builtin.debug:
    msg: "{{ fix_crl_full.flags.ldap_only }}"
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
  description:
    - Findings (C(expired), C(expiring_soon), C(ldap_only), C(no_endpoints), C(chain_incomplete),
      C(views_disagree)).
  returned: when O(result_detail=full); always in the record file
  type: dict
endpoints:
  description: The revocation endpoints found plus O(extra_endpoints).
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: raw
checks:
  description:
    - Per phase (C(before), C(after), C(after_rollback)) the CRL retrieval and TLS probe results, C(crl_ok),
      C(tls_ok), C(passed) and a one-line C(summary).
    - Each CRL result (the per-URL fetch, the netsh path, sent with CryptoAPI's User-Agent) has C(foreign_agent),
      what the same URL answered to one C(HEAD) with WinHttpRequest's own default agent (C(agent), C(http_status),
      C(error)), null when the URL got no answer; a 401/403/407 only there is the finding C(proxy_filters_agent).
    - A URL in a certificate that is not a valid endpoint (whitespace, a quote, another scheme's syntax) is not
      fetched; the audit's C(crl) lists it in C(invalid_endpoints) (C(url), C(kind), C(reason)), counts it in
      C(summary.invalid), and the summary line names it. It does not fail the CRL check and hides no other result.
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
  sample: 1
evidence:
  description:
    - The host's own evidence (roles/fix_crl/README.md, "Evidence"), read in the audit's one command.
    - C(events) one entry per (C(log), C(provider), C(id)) with C(count), C(first), C(last) and the last C(message)
      (trimmed) in the last O(evidence_hours), and C(before)/C(since) the fix (null without a fix marker).
    - C(fixed_at) the time of the last fix (the host's marker), C(marker) its C(previous) value and whether this run
      C(written) it; C(hourly) symptom events per hour; C(logs) each log's C(exists)/C(enabled); C(queries) each
      query's C(status) (V(ok), V(no_log), V(denied), V(error)), C(read), C(counted), C(truncated).
    - C(chain_engine) per retrieval value its C(policy), C(config), C(default), C(in_force) and C(source).
    - C(capi2_log) what O(enable_capi2_log) did (C(previous), C(enabled), C(changed), C(predicted) in check mode,
      C(error)), null when not asked.
    - C(error) the text when the host could not read any of it (then a finding, never a failed host).
  returned: when O(result_detail=full); always in the record file
  type: dict
identities:
  description:
    - Per identity the proof ran as (account name as Windows prints it), C(sid), C(services) (the named services
      running as it), C(profile_loaded), C(effective_proxy) (C(source) one of C(netsh), C(ie), C(wpad), C(direct),
      and C(proxy); a WPAD path adds C(pac_url) and C(error), where C(proxy) null means nothing discovered and
      direct; an AutoConfigURL path adds C(script) and C(error); the order follows the host's OS build, KB 2623724),
      C(runnable) (false when a password would be needed), C(chain_ok), C(chain_ms), C(crl),
      C(cache_purged) and C(error). From the last measurement of the run.
  returned: when O(result_detail=full); always in the record file
  type: dict
caller:
  description: The connecting account (C(name), C(sid)) and the C(effective_proxy) CryptoAPI uses as it.
  returned: when O(result_detail=full); always in the record file
  type: dict
findings:
  description:
    - What the run found that needs a look, each C(code), C(identity) (null for the host) and C(detail), ordered by
      code then identity. Codes are listed in roles/fix_crl/README.md ("Findings"), among them
      V(symptoms_without_cause), V(symptoms_since_fix), V(capi2_log_disabled), V(slow_chain_timeouts),
      V(identity_path_differs), V(service_stale), V(proxy_rejects_agent), V(protocol_mismatch) and
      V(proxy_filters_agent) (informational, a URL answered 401/403/407 only to a foreign User-Agent while
      CryptoAPI's passed).
  returned: when O(result_detail=full); always in the record file
  type: list
  elements: dict
chain_cache_resync:
  description:
    - What a fix did to the chain engines' caches, after the proxy change (never in check mode), from
      C(certutil -setreg chain\ChainCacheResyncFiletime @now), each engine then drops what it cached before that
      time. C(previous_b64) is the value before (null when there was none; write it back to restore it),
      C(written_b64) the value now, C(rc) and C(output) certutil's. Null when the run did not resync.
  returned: when O(result_detail=full); always in the record file
  type: dict
service:
  description:
    - The host's own running service, from a mutual-TLS handshake with it (O(mutual_tls) and O(services) set), after
      the last measurement. C(handshake) (C(peer), C(verdict), C(max_ms), C(median_ms), C(samples_ms), C(protocol),
      C(mutual), C(errors)); C(stale) true when the host's own proof passed but that handshake did not (finding
      V(service_stale), the host is V(failed) with the reason and never rolled back for it); C(services) the named
      services; C(status_when_fresh) and C(reason_when_fresh) what the host is once the service is fresh; C(restart)
      null, or what the role's restart step did (C(services) each with C(name), C(restarted), C(state), C(error);
      C(ok); C(handshake) the handshake after it).
    - Null when no handshake with the host's own service was made.
  returned: when O(result_detail=full); always in the record file
  type: dict
counts_against_rollout:
  description:
    - Whether the playbook's rollout gate counts this host (rolled back, or an error that was not a lost
      connection).
  returned: always
  type: bool
counts:
  description:
    - The length of every list of the record (C(certificates), C(endpoints), C(errors), ...) and of every flag
      list (C(expired), C(ldap_only), ...), what host events are filtered on.
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
  description:
    - The file on the controller that holds the whole record (every key above), until the run ends.
  returned: when O(result_detail=summary)
  type: str
"""
