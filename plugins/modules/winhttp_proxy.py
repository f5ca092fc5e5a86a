#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/winhttp_proxy.py,
# which runs on the controller.

DOCUMENTATION = r"""
module: winhttp_proxy
short_description: Set the machine-wide WinHTTP proxy of a Windows host in both registry views
version_added: 1.0.0
description:
  - Sets (O(state=present)) or removes (O(state=absent), direct access as C(netsh winhttp reset proxy) gives)
    the machine-wide WinHTTP proxy that services and CryptoAPI revocation checking use.
  - Each registry view is written with its own netsh, C(%windir%\System32\netsh.exe) for the native view and
    C(%windir%\SysWOW64\netsh.exe) for the WOW6432Node view, and only when that view's current setting differs
    from the requested one. Settings are compared decoded and normalised (host names case-insensitively,
    bypass order and duplicates ignored), so an equal setting is never rewritten.
  - Returns the exact previous registry values (RV(previous_raw)); pass them to O(restore) to put them back
    byte for byte, for example when a later verification step fails.
  - This module runs on the controller as an action plugin. It reads the host in one remote command and, only
    when something must change, applies and reads back in a second one. With O(current) it skips the read.
  - Every write is a compare and swap; right before writing, the host checks that each view still holds the
    value the change was planned from, and when one does not (another tool or a Group Policy refresh wrote it
    in between), it writes nothing in any view and the task fails.
options:
  state:
    description:
      - V(present) sets O(proxy) and O(bypass) (or, with O(source=ie), the IE settings); it requires one of them.
      - V(absent) sets direct access (no proxy). A view without any value already counts as direct access and
        is left alone.
      - Left out, the meaning is that of M(ansible.windows.win_http_proxy); a proxy (or O(source)) sets it, no
        proxy (O(proxy) left out, null or the empty string) sets direct access.
      - Cannot be used with O(restore).
    type: str
    choices: [present, absent]
  proxy:
    description:
      - The proxy server as C(host), C(host:port), C(ipv4[:port]), C([ipv6][:port]), or per scheme, like
        C(http=host:port;https=host:port), for the schemes C(http), C(https), C(ftp) and C(socks). Without a
        port WinHTTP uses the scheme's default port; C(host) and C(host:80) are different values here.
      - A dict maps schemes to C(host[:port]), for example V(http) to C(proxy:8080) and V(https) to
        C(proxy:8443); it is written as the per-scheme string in the order http, https, ftp, socks, as
        M(ansible.windows.win_http_proxy) writes it.
      - "A dict with other keys fails with win_http_proxy's message,
        C(Invalid keys found in proxy: <keys>. Valid keys are http, https, ftp, socks.)"
      - Left out, null or the empty string means direct access (unless O(state=present)).
      - Anything else, including quotes, whitespace and shell characters, is refused.
    type: raw
  bypass:
    description:
      - Hosts reached without the proxy, one entry per item, for example V(<local>), V(*.contoso.com),
        V(10.*), V(crl.contoso.com), V(192.168.1.10) or V([fd00::1]); an entry may end in C(:port). A string is
        split at commas, like any Ansible list.
      - V(<local>) means every host name without a dot.
      - Order and duplicates do not matter; the list is written in the given order, duplicates removed.
      - "Needs O(proxy); without one the task fails with C(missing parameter(s) required by 'bypass': proxy)."
    type: list
    elements: str
  source:
    description:
      - V(ie) sets each view to the Internet Explorer (WinINet) proxy settings of the user Ansible connects as,
        with C(netsh winhttp import proxy source=ie), as M(ansible.windows.win_http_proxy) does.
      - Those settings are read in the same remote command as the views, so check mode, the comparison and
        the read-back work as for O(proxy). A user without IE settings, or whose IE proxy is not enabled, gives
        direct access (C(netsh winhttp reset proxy)).
      - Only the proxy and the bypass list are imported, not automatic detection or a PAC URL.
      - Cannot be used with O(proxy), O(bypass), O(restore) or O(current).
    type: str
    choices: [ie]
  views:
    description:
      - The registry views to manage. V(native) is what 64-bit processes use, V(wow6432) what 32-bit processes
        use. Managing only one can leave them disagreeing.
      - On a 32-bit OS there is only V(native); V(wow6432) is skipped.
      - Cannot be used with O(restore), which names its views itself.
    type: list
    elements: str
    choices: [native, wow6432]
    default: [native, wow6432]
  restore:
    description:
      - Put back exact previous values, as returned in RV(previous_raw) by an earlier run of this module or in
        RV(crlfix.windows.winhttp_proxy_info#module:views.native.raw_b64).
      - Maps a view (V(native), V(wow6432)) to the base64 of its value, or to V(null) to delete the value.
        Only the views named are touched; each is written only when its bytes differ.
      - The bytes are written to the registry directly, not through netsh, so the change counter is restored
        too. A value that does not decode as C(WinHttpSettings) is refused.
      - Cannot be used with O(state), O(proxy), O(bypass) or O(views).
    type: dict
  current:
    description:
      - The raw values of the registry views as an earlier task read them; the module then plans from these
        values and does not read the host itself. In check mode it runs no remote command at all; a change is
        applied and read back in one remote command.
      - Either a dict mapping V(native) (required) and V(wow6432) (left out on a 32-bit OS) to the base64 of
        the value or V(null) for no value, like RV(previous_raw) and the values in
        RV(crlfix.windows.winhttp_proxy_info#module:views.native.raw_b64);
      - or the views exactly as returned by RV(crlfix.windows.winhttp_proxy_info#module:views),
        by RV(crlfix.windows.cert_revocation_info#module:winhttp) (its C(views) key) or by RV(before). In this
        form V(null) for V(wow6432) means a 32-bit OS, as those modules return it.
      - The values must be fresh; the change is a compare and swap, so a view whose value changed since it was
        read is not written and the task fails with C(WinHttpSettings in view <view> changed since it was read).
      - A value that is not valid base64 or a view other than V(native) and V(wow6432) is refused.
    type: dict
attributes:
  check_mode:
    details: Reads the host (not with O(current)), predicts RV(after) and C(changed), and runs nothing that writes.
  diff_mode:
    support: full
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
notes:
  - Needs an elevated (administrator) connection, as netsh does.
  - Proxy and bypass values reach the host only as data, never as PowerShell code, and only after validation.
  - A Group Policy that pushes C(WinHttpSettings) overrides this module at the next refresh; the module fails
    when a view does not hold the requested setting right after the change.
  - C(netsh winhttp set advproxy) settings (build 20348+) are not managed; see
    M(crlfix.windows.winhttp_proxy_info) RV(crlfix.windows.winhttp_proxy_info#module:advproxy).
  - "Moving from M(ansible.windows.win_http_proxy): every value it accepts for O(proxy), O(bypass) and O(source)
    is accepted here with the same meaning and the same errors for bad keys. Where the two still differ, and why:
    this module writes both registry views (32-bit services read WOW6432Node), where win_http_proxy's
    C(WinHttpSetDefaultProxyConfiguration) writes the view of its own process; it compares values as WinHTTP
    matches them (host names case-insensitively, bypass order and duplicates ignored), so an equal value in
    another spelling is not rewritten; it refuses quotes, whitespace, non-ASCII and shell characters in
    any value, which win_http_proxy passes to WinHTTP unchecked; an explicit O(state=present) without a proxy
    fails instead of removing the proxy; and Ansible's argument validator words mutually exclusive options as
    C(proxy|source) where win_http_proxy's PowerShell wrapper says C(proxy, source)."
seealso:
  - module: crlfix.windows.winhttp_proxy_info
  - plugin: crlfix.windows.winhttp_settings_value
    plugin_type: filter
  - module: ansible.windows.win_http_proxy
    description: The PowerShell module of ansible.windows for the same setting.
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Send WinHTTP (services, CRL and OCSP fetching) through the proxy
  crlfix.windows.winhttp_proxy:
    proxy: proxy.contoso.com:8080
    bypass:
      - <local>
      - "*.contoso.com"
  register: winhttp

- name: Per-scheme proxies
  crlfix.windows.winhttp_proxy:
    proxy: http=proxy.contoso.com:8080;https=proxy.contoso.com:8443

- name: Direct access in both views
  crlfix.windows.winhttp_proxy:
    state: absent

- name: Read the certificates and both WinHTTP views in one remote command
  crlfix.windows.cert_revocation_info:
    include_winhttp: true
  register: gathered

- name: Set the proxy from what was read, without reading again (no remote command in check mode)
  crlfix.windows.winhttp_proxy:
    proxy: proxy.contoso.com:8080
    current: "{{ gathered.winhttp.views }}"

# The task before changed the views, so what `gathered` holds is stale now: a plan made from it would be
# refused (the write is a compare-and-swap). Read again before planning from raw values.
- name: Read both views again
  crlfix.windows.winhttp_proxy_info:
  register: fresh

- name: The same with the raw values spelled out (base64 or null per view, as previous_raw gives them)
  crlfix.windows.winhttp_proxy:
    proxy: proxy.contoso.com:8080
    current:
      native: "{{ fresh.views.native.raw_b64 }}"
      wow6432: "{{ fresh.views.wow6432.raw_b64 }}"

- name: Roll back to the exact previous values
  crlfix.windows.winhttp_proxy:
    restore: "{{ winhttp.previous_raw }}"
  when: winhttp is changed
"""

RETURN = r"""
before:
  description:
    - The setting of each registry view before the task; V(wow6432) is V(null) on a 32-bit OS.
  returned: always
  type: dict
  contains:
    native:
      description: The native view; V(wow6432) has the same keys.
      type: dict
      contains:
        present:
          description: Whether the C(WinHttpSettings) value exists.
          type: bool
        mode:
          description: V(direct) or V(proxy); V(null) when the value could not be decoded.
          type: str
        proxy:
          description: The proxy server string, empty for direct access.
          type: str
        bypass:
          description: The bypass entries.
          type: list
          elements: str
        raw_b64:
          description: The exact value, base64; V(null) when absent.
          type: str
  sample:
    native: {present: true, mode: direct, proxy: "", bypass: [], raw_b64: GAAAAAAAAAABAAAAAAAAAAAAAAA=}
    wow6432: {present: false, mode: direct, proxy: "", bypass: [], raw_b64: null}
after:
  description:
    - The setting of each view after the task, read back from the host; same keys as RV(before).
    - In check mode it is the prediction; the C(raw_b64) of a view netsh would write is then V(null), because
      netsh chooses the version and counter bytes.
  returned: always
  type: dict
previous_raw:
  description:
    - For every managed view, its exact value before the task as base64, or V(null) when there was none.
    - Pass this dict to O(restore) to put the values back byte for byte.
  returned: always
  type: dict
  sample: {native: GAAAAAAAAAABAAAAAAAAAAAAAAA=, wow6432: null}
operations:
  description: What was run (or, in check mode, would be run), in order; empty when nothing differed.
  returned: always
  type: list
  elements: dict
  contains:
    view:
      description: V(native) or V(wow6432).
      type: str
    action:
      description: V(set), V(reset), V(import) (O(source=ie)) or V(restore).
      type: str
    command:
      description: A readable form of the command or registry write.
      type: str
      sample: '%windir%\SysWOW64\netsh.exe winhttp set proxy proxy-server="proxy:8080" bypass-list="<local>"'
    proxy:
      description: The proxy given to netsh (V(set) only).
      type: str
    bypass:
      description: The bypass list given to netsh, entries joined with C(;) (V(set) only).
      type: str
    value_b64:
      description: The bytes written, or V(null) to delete the value (V(restore) only).
      type: str
    rc:
      description: Exit code of the operation; missing in check mode.
      type: int
    output:
      description: What netsh printed, or the registry error; missing in check mode.
      type: str
conflicts:
  description:
    - The views that no longer held the value the change was planned from (compare and swap); nothing was
      written and the task failed.
  returned: when a view changed between the read and the write
  type: list
  elements: dict
  contains:
    view:
      description: V(native) or V(wow6432).
      type: str
    expected_b64:
      description: The value the change was planned from, base64; V(null) for no value.
      type: str
    found_b64:
      description: The value the host held right before the write, base64; V(null) for no value.
      type: str
views_disagree:
  description: Whether the two views would make WinHTTP behave differently after the task.
  returned: always
  type: bool
diff:
  description: The settings before and after, one line per view.
  returned: when diff mode is on
  type: dict
"""
