#!/usr/bin/python
# Copyright: contributors to the crlfix.windows collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by the action plugin of the same name.

from __future__ import annotations

DOCUMENTATION = r"""
module: fix_crl_report
short_description: Write the fleet report of the fix_crl role and summarise it
version_added: 1.0.0
description:
  - Runs on the controller only and never connects to a host.
  - Reads the per-host record that the R(crlfix.windows.fix_crl,ansible_collections.crlfix.windows.docsite.fix_crl)
    role leaves in the host variable O(record_var) for every host in O(hosts), writes one JSON document for the
    run into O(dest) with a self-contained HTML page beside it (status colours per host, a chart of handshake
    latency before and after), and returns a short text summary and C(set_stats)-ready totals.
  - Hosts in O(hosts) without a record are reported with status V(not_run) (the rollout was stopped before them,
    or the role never ran there).
  - A record that is the summary of M(crlfix.windows.fix_crl_host) (its C(result_detail=summary), the default) is
    read from the file it names; a file that is gone or unreadable makes that host V(failed) with the reason.
  - The report is written in check mode too, because an audit (C(--check)) is exactly when it is wanted.
    Writing it never counts as a change.
  - Whether the run was an audit is what the records say (their C(check_mode)), not this task's own mode; hosts
    audited with C(check_mode=true) on their task make an audit report. Records of both kinds make a mixed run.
options:
  hosts:
    description:
      - Every host the run targeted, after C(--limit); use C(ansible_play_hosts_all) of the play that ran the role.
    type: list
    elements: str
    required: true
  records:
    description:
      - Host name to record. When omitted, each host's record is read from C(hostvars[host][record_var]).
    type: dict
  record_var:
    description:
      - Name of the host variable holding a host's record. When C(<record_var>_restarted) holds a record (the role's
        C(crlfix.windows.fix_crl_restart) step restarted the host's services), that one is read instead.
    type: str
    default: fix_crl_record
  dest:
    description:
      - Directory the report is written to; created when missing.
      - Defaults to C(reports/) in the current directory, as the C(fix-crl.yml) playbook's C(fix_crl_report_dir) does.
    type: path
  write:
    description:
      - Set to V(false) to build and summarise the report without writing a file (RV(path) is then null).
    type: bool
    default: true
  run_id:
    description:
      - Identifier of the run, also the report's file name without C(.json).
      - Defaults to C(fix-crl-<UTC time>-<controller pid>). An existing report of the same name is never overwritten.
    type: str
  rollout_stopped:
    description:
      - Set by the playbook's batch gate when it stopped the rollout (keys C(batch), C(failed_percentage),
        C(max_fail_percentage)); hosts without a record are then reported with that reason.
    type: dict
  context:
    description:
      - Free-form facts about the run copied into the report's C(run) object (playbook, limit, user, AWX job id).
    type: dict
    default: {}
  previous_report:
    description:
      - The report this run is compared with (RV(since_last_run)). Defaults to the newest run report in
        O(dest), which for a scheduled audit is the last run's.
    type: path
attributes:
  check_mode:
    details: Builds and writes the report in check mode as well; never reports a change.
  platform:
    platforms: posix
    details: Runs on the controller; use with C(run_once) and C(delegate_to=localhost).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
seealso:
  - module: crlfix.windows.crl_retrieval_check
  - module: crlfix.windows.tls_probe
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Write the fleet report of the hosts this play targeted
  crlfix.windows.fix_crl_report:
    hosts: "{{ ansible_play_hosts_all }}"
    dest: "{{ playbook_dir }}/../reports"
  run_once: true
  delegate_to: localhost
  register: fix_crl_report

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ fix_crl_report.summary_lines }}"
  run_once: true

- name: Hand the totals to AWX
  ansible.builtin.set_stats:
    data: "{{ fix_crl_report.stats }}"
  run_once: true
"""

RETURN = r"""
path:
  description: Absolute path of the JSON report, or null when O(write=false).
  returned: always
  type: str
  sample: /srv/crlfix/reports/fix-crl-20261126T050102Z-4242.json
html_path:
  description:
    - Absolute path of the self-contained HTML page written beside the JSON report (same name, C(.html)), or
      null when O(write=false).
    - The page needs no network to view; C(scripts/crlfix_report.py html) renders one from any JSON report.
  returned: always
  type: str
  sample: /srv/crlfix/reports/fix-crl-20261126T050102Z-4242.html
run_id:
  description: Identifier of the run (the report's file name stem).
  returned: always
  type: str
  sample: fix-crl-20261126T050102Z-4242
summary:
  description: The text summary, lines joined with newlines.
  returned: always
  type: str
summary_lines:
  description:
    - The text summary; first line the totals, second the worst TLS handshake before and after, then one line
      per host that rolled back, failed, was unreachable or was not run (with its reason), last the report path.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      fix-crl run: 4 hosts targeted, 4 checked: 1 compliant, 2 changed, 1 rolled back, 0 failed,
      0 unreachable, 0 not run
    - "worst TLS handshake: before 15012 ms (lync-fe02.lab.test), after 14 ms (lync-fe01.lab.test)"
totals:
  description:
    - Host counts per status (V(compliant), V(would_change), V(changed), V(rolled_back), V(failed), V(unreachable),
      V(not_run)), plus V(hosts) (targeted), V(checked) (the role measured or decided something) and
      V(changes_kept) (hosts whose registry the run changed and left changed, whatever their status; the summary's
      "changed"), and C(causes) and C(owners), the hosts per diagnosed cause and per owner, and C(risks), the
      passing hosts per cause among their risks.
  returned: always
  type: dict
  sample: {"hosts": 4, "checked": 4, "compliant": 1, "would_change": 0, "changed": 2, "rolled_back": 1,
           "failed": 0, "unreachable": 0, "not_run": 0, "changes_kept": 2}
worst_handshake:
  description:
    - Slowest TLS handshake over the fleet C(before) the run changed anything and C(after) it, each
      C({ms, host, phase, at_least}) or null when nothing was measured.
    - C(at_least) is true when that handshake did not finish within the audit's time box; it took at least C(ms).
  returned: always
  type: dict
incidents:
  description:
    - The report's incidents, biggest first; the summary and the HTML page lead with them. Each groups the hosts whose
      diagnosis names one cause of the R(cause catalogue,ansible_collections.crlfix.windows.docsite.causes) and
      share what it is about, C(key) (C({url}), C({proxy}) or empty), with C(cause), C(title), C(owner), C(fix),
      C(fixable_here), C(hosts), C(groups), C(paths) (the proxies, or V(direct), the hosts fetch through),
      C(evidence) (one host's), C(scope) and a one-line C(text).
    - C(scope) V(source) is a URL that fails through every path it was tried on (the publisher's problem);
      V(proxy) one that fails only through one proxy while another path fetched it (that proxy's, owner
      V(network)); V(hosts) a cause of the hosts themselves.
  returned: always
  type: list
  elements: dict
since_last_run:
  description:
    - Against the previous report (O(previous_report), else the newest run report in O(dest)), C(previous)
      (C(run_id), C(time), C(path)), C(newly_failing) and C(newly_fixed) hosts, and C(causes_appeared) and
      C(causes_cleared) (cause to hosts); null without a previous report.
  returned: always
  type: dict
problems:
  description: Host name to C({status, reason}) for every host that rolled back, failed, was unreachable or not run.
  returned: always
  type: dict
stats:
  description:
    - Ready for C(ansible.builtin.set_stats) (AWX shows it as the job's artifacts).
    - Keys C(fix_crl_totals), C(fix_crl_causes) and C(fix_crl_owners) (hosts per diagnosed cause and per owner, for
      routing a notification), C(fix_crl_incidents) (how many), C(fix_crl_risks) (passing hosts per cause among
      their risks), C(fix_crl_worst_handshake_ms) (C(before) and
      C(after)) and C(fix_crl_report_path).
  returned: always
  type: dict
"""
