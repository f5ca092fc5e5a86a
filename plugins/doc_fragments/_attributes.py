# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes the crlfix.windows modules share; use with ansible.builtin.action_common_attributes(.flow)."""

from __future__ import annotations


class ModuleDocFragment:
    # crlfix.windows._attributes: every module is an action plugin that runs on the controller, supports check
    # mode and works on a Windows host, sending it one small PowerShell script per step. A module adds the
    # details of its check mode and its diff_mode; fix_crl_report, which never leaves the controller, states
    # its own platform.
    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  platform:
    platforms: windows
"""

    # crlfix.windows._attributes.read_only: a module that only reads the host.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
"""
