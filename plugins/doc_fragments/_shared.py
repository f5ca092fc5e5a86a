# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documentation the crlfix.windows modules share: their attributes (use with
ansible.builtin.action_common_attributes(.flow); ``_shared``, and ``_shared.read_only`` for a module that only reads),
and the options several modules take, one name each (the role variable's without ``fix_crl_``): the TLS probe's, the
certificates' and the CRL fetch's, with their notes."""

from __future__ import annotations


class ModuleDocFragment:
    # crlfix.windows._shared: every module is an action plugin that runs on the controller, supports check mode and
    # works on a Windows host, sending it one small PowerShell script per step. A module adds the details of its check
    # mode, and its diff_mode when it has one (the module's own attributes win over a fragment's); fix_crl_report,
    # which never leaves the controller, states its own platform. Fragments are plain literals (ansible-test's yamllint
    # reads them as such).
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
  diff_mode:
    support: none
  platform:
    platforms: windows
"""

    # crlfix.windows._shared.read_only: a module that only reads the host (with crlfix.windows._shared).
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    details: The module only reads, so it runs the same in check mode.
"""

    # crlfix.windows._shared.probe: how a TLS probe handshakes and what passes. The peers (tls_probe's and
    # fix_crl_host's peers, fix_crl_restart's own service) and mutual TLS (off in tls_probe, on in the role) are the
    # modules' own.
    PROBE = r"""
options:
  probe_samples:
    description:
      - Handshakes with each peer, one after the other (a later one sees what an earlier one left in Windows' CRL
        cache, as a service does), from 1 to 50.
    type: int
    default: 3
  probe_timeout_ms:
    description:
      - Time allowed for the TCP connect and for each socket read or write of a handshake, in milliseconds.
      - CryptoAPI's revocation retrieval during the handshake has its own timeouts (15 seconds per URL and 20 seconds
        per chain by default), so keep this above them to see a slow handshake instead of an error.
    type: int
    default: 20000
  max_handshake_ms:
    description:
      - A peer passes when its slowest successful handshake, with revocation checking, takes at most this many
        milliseconds; a slower one gets the verdict V(slow).
    type: int
    default: 1000
  check_revocation:
    description:
      - Check the revocation of the peer's certificate chain during the handshake, as Schannel does for services.
      - V(false) measures a baseline without revocation checking.
    type: bool
    default: true
"""

    # crlfix.windows._shared.certificates: the certificate stores and filters (cert_revocation_info, fix_crl_host).
    CERTIFICATES = r"""
options:
  cert_stores:
    description:
      - Names of the C(Cert:\LocalMachine) stores whose certificates are checked, for example V(My), V(WebHosting)
        or V(Remote Desktop).
    type: list
    elements: str
    default: [My]
  chain_stores:
    description:
      - Names of further C(Cert:\LocalMachine) stores read only to build chains (intermediate and root CAs); their
        certificates are not checked themselves, only as chain elements.
    type: list
    elements: str
    default: [CA, Root]
  cert_thumbprints:
    description:
      - Only certificates with one of these SHA-1 thumbprints; empty means every certificate of O(cert_stores).
      - Case, spaces, colons and the invisible left-to-right mark that the certificate dialog adds when a thumbprint
        is copied are ignored.
    type: list
    elements: str
    default: []
  cert_subject:
    description:
      - Only certificates whose subject matches this case-insensitive regular expression (searched, not anchored),
        so a plain substring like V(CN=lync) works as is.
      - The subject is matched in the form Windows shows, for example V(CN=lync.contoso.com, O=Contoso, C=US).
    type: str
  cert_ekus:
    description:
      - Only certificates valid for one of these extended key usages, each a dotted OID or a name such as
        V(serverAuth), V(clientAuth), V(Server Authentication), V(codeSigning), V(smartcardLogon); empty means no
        filter.
      - Like Windows, a certificate without an extended key usage extension, or with V(anyExtendedKeyUsage), is valid
        for every usage and always matches.
    type: list
    elements: str
    default: []
  expiry_warning_days:
    description:
      - A certificate that expires within this many days is flagged C(expiring_soon).
    type: int
    default: 30
notes:
  - Requires the Python library C(cryptography) on the controller.
"""

    # crlfix.windows._shared.crl_fetch: how long the CRL fetch waits (crl_retrieval_check, fix_crl_host).
    CRL_FETCH = r"""
options:
  crl_timeout_ms:
    description:
      - Time allowed for each revocation URL, in milliseconds; a URL still not answered by then is aborted and
        reported with the error C(The operation timed out), the text of WinHTTP's C(ERROR_WINHTTP_TIMEOUT).
      - The URLs are fetched at the same time, so this also bounds one whole CRL check. The default is Windows' own
        per-URL retrieval timeout for CryptoAPI (15 seconds).
    type: int
    default: 15000
notes:
  - Requires the Python library C(cryptography) on the controller.
"""
