#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/winhttp_proxy_info.py,
# which runs on the controller.

DOCUMENTATION = r"""
module: winhttp_proxy_info
short_description: Read the machine-wide WinHTTP proxy of a Windows host from both registry views
version_added: 1.0.0
description:
  - Reads the C(WinHttpSettings) registry value that holds the machine-wide WinHTTP proxy (what
    C(netsh winhttp set proxy) writes) from the native (64-bit) registry view and from the WOW6432Node (32-bit)
    view, and decodes both.
  - Services running as LocalSystem, NetworkService or a service account, and CryptoAPI when it fetches CRLs,
    OCSP responses and CA certificates, use this proxy, not any user's Internet Explorer proxy.
  - The 64-bit and the 32-bit C(netsh) each set their own view; RV(views_disagree) tells when 32-bit
    services see a different proxy than 64-bit ones.
  - On Windows Server 2022 / build 20348 and later it also reports C(netsh winhttp show advproxy).
  - This module runs on the controller as an action plugin. It sends one small PowerShell script to the host
    (one remote command in total) and decodes the registry values on the controller.
  - The module never changes the host.
options: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
  - crlfix.windows._shared.read_only
notes:
  - The registry value is read rather than the text of C(netsh winhttp show proxy) because it does not depend
    on the display language.
  - The layout of C(WinHttpSettings) is not documented by Microsoft; the decoder follows the layout netsh writes
    and refuses values it cannot decode (RV(views.native.error)) instead of guessing.
seealso:
  - module: crlfix.windows.winhttp_proxy
  - plugin: crlfix.windows.winhttp_settings
    plugin_type: filter
  - name: Netsh commands for WinHTTP
    description: Microsoft Learn reference of C(netsh winhttp).
    link: https://learn.microsoft.com/en-us/windows/win32/winhttp/netsh-exe-commands
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Read the WinHTTP proxy
  crlfix.windows.winhttp_proxy_info:
  register: winhttp

- name: Warn when 32-bit services see another proxy than 64-bit ones
  ansible.builtin.debug:
    msg: "native={{ winhttp.views.native.mode }} wow6432={{ winhttp.views.wow6432.mode }}"
  when: winhttp.views_disagree

- name: Hosts without a machine-wide proxy
  ansible.builtin.group_by:
    key: "winhttp_{{ winhttp.views.native.mode }}"
"""

RETURN = r"""
computer_name:
  description: The host's NetBIOS name (C(COMPUTERNAME)).
  returned: always
  type: str
  sample: LYNC-FE01
os_build:
  description: The Windows build number.
  returned: always
  type: int
  sample: 17763
is_64bit:
  description: Whether the OS is 64-bit; a 32-bit OS has no WOW6432Node view.
  returned: always
  type: bool
  sample: true
views:
  description:
    - The decoded C(WinHttpSettings) value of each registry view.
    - V(wow6432) is V(null) on a 32-bit OS.
  returned: always
  type: dict
  contains:
    native:
      description:
        - The value under C(HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections), as
          the 64-bit C(%windir%\System32\netsh.exe) sets it. V(wow6432) has the same keys for the
          C(HKLM\SOFTWARE\WOW6432Node\...) twin set by C(%windir%\SysWOW64\netsh.exe).
      type: dict
      contains:
        present:
          description: Whether the value exists. Without it WinHTTP uses direct access.
          type: bool
          sample: true
        mode:
          description:
            - V(direct) (no proxy; also when the value is absent) or V(proxy).
            - V(null) when the value could not be decoded (see RV(views.native.error)).
          type: str
          sample: proxy
        proxy:
          description: The proxy server string as stored, for example V(proxy.contoso.com:8080) or
            V(http=p1:8080;https=p2:8443); empty when there is none.
          type: str
          sample: proxy.contoso.com:8080
        bypass:
          description: The bypass list entries in stored order.
          type: list
          elements: str
          sample: ['<local>', '*.contoso.com']
        raw_b64:
          description: The exact value, base64-encoded; V(null) when absent. Feed it to M(crlfix.windows.winhttp_proxy)
            O(crlfix.windows.winhttp_proxy#module:restore) to put it back byte for byte.
          type: str
          sample: GAAAAAAAAAABAAAAAAAAAAAAAAA=
        version:
          description:
            - The first DWORD of the value (V(24), 0x18, as netsh writes it on most builds).
            - V(null) when the value is absent (RV(views.native.present) is false) or could not be decoded;
              there is no such field then, and V(0) would be a real value.
          type: int
          sample: 24
        counter:
          description:
            - The change counter that every netsh write increments; V(null) as for RV(views.native.version).
          type: int
          sample: 3
        flags:
          description:
            - The flags DWORD (V(1) direct, V(3) manual proxy).
            - V(null) when the value is absent (RV(views.native.present) is false) or could not be decoded;
              there is no such field then, and V(0) would be a real value.
          type: int
          sample: 3
        error:
          description: Why the value could not be decoded (truncated, inconsistent lengths, non-ASCII); V(null)
            when it was decoded.
          type: str
          sample: null
views_disagree:
  description: Whether the two registry views would make WinHTTP behave differently (an absent value counts as
    direct access; proxy and bypass are compared case-insensitively, bypass order and duplicates ignored).
  returned: always
  type: bool
  sample: false
advproxy:
  description:
    - The output of C(netsh winhttp show advproxy), on build 20348 (Windows Server 2022) and later; V(null) on
      older builds.
    - The layout of that output is not documented by Microsoft; keys netsh did not print are V(null).
  returned: always
  type: dict
  contains:
    rc:
      description: The exit code of netsh.
      type: int
    output:
      description: What netsh printed.
      type: str
    error:
      description: Why the output could not be parsed, or V(null).
      type: str
    proxy_is_enabled:
      description: C(ProxyIsEnabled).
      type: bool
    proxy:
      description: C(Proxy).
      type: str
    proxy_bypass:
      description: C(ProxyBypass).
      type: str
    autoconfig_is_enabled:
      description: C(AutoConfigIsEnabled).
      type: bool
    autoconfig_url:
      description: C(AutoconfigUrl).
      type: str
    auto_detect:
      description: C(AutoDetect).
      type: bool
    per_user_proxy_settings:
      description: C(PerUserProxySettings).
      type: bool
    raw:
      description: The JSON object netsh printed, as is.
      type: dict
"""
