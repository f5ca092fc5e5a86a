# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes the crlfix.windows modules share; use with ansible.builtin.action_common_attributes(.flow)."""

from __future__ import annotations

# Every module is an action plugin that runs on the controller and supports check mode; a module adds the
# details of its check mode and its diff_mode. The pieces are joined below, each attribute stated once.
_ACTION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""
_WINDOWS = r"""
  platform:
    platforms: windows
"""
_CHECK_MODE = r"""
  check_mode:
    support: full
"""
_READ_ONLY = r"""
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
"""


class ModuleDocFragment:
    # crlfix.windows._attributes: a module that runs on the controller only states its platform itself.
    DOCUMENTATION = _ACTION + _CHECK_MODE
    # crlfix.windows._attributes.windows: a module that works on a Windows host, one PowerShell script per step.
    WINDOWS = _ACTION + _WINDOWS + _CHECK_MODE
    # crlfix.windows._attributes.read_only: a module that only reads a Windows host.
    READ_ONLY = _ACTION + _WINDOWS + _READ_ONLY
