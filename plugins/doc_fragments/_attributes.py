# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every crlfix.windows module against a Windows host shares."""

from __future__ import annotations


class ModuleDocFragment:
    # Each module is an action plugin that runs on the controller and sends one PowerShell script per step to a
    # Windows host. Use with ansible.builtin.action_common_attributes(.flow), which describe these attributes;
    # the module itself states check_mode and diff_mode, which differ between modules.
    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: windows
"""
