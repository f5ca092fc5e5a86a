#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/cert_revocation_info.py,
# which runs on the controller.

DOCUMENTATION = r"""
module: cert_revocation_info
short_description: List the revocation endpoints a Windows host's certificates depend on
version_added: 1.0.0
description:
  - Reads the certificates of C(Cert:\LocalMachine) stores of a Windows host in one remote command, builds each
    certificate's chain on the controller and returns every CRL distribution point, Freshest CRL (delta CRL),
    OCSP and CA Issuers URL that Windows (CryptoAPI) fetches to check the chain's revocation.
  - Use it to find out which URLs a host must reach through its machine-wide WinHTTP proxy, and which
    certificates cannot be checked through an HTTP proxy at all (LDAP-only distribution points).
  - This module runs on the controller as an action plugin. It only sends a small PowerShell script to the
    host; parsing and chain building use the Python C(cryptography) library on the controller.
  - Chains are built from the stores read (O(cert_stores) and O(chain_stores)), matching the issuer name and,
    when both are present, the authority/subject key identifiers. When several issuers fit, the one valid now
    and then the newest is used. Certificates missing from those stores are not downloaded, so such a chain is
    reported incomplete.
  - A store of O(cert_stores) that does not exist on the host is listed in RV(missing_stores).
  - The module never changes the host.
options:
  include_winhttp:
    description:
      - Also read both WinHTTP proxy registry views in the same remote command and return them in RV(winhttp),
        so that a caller needs only one round trip to know both the endpoints and the proxy.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
  - crlfix.windows._shared.read_only
  - crlfix.windows._shared.certificates
notes:
  - Only full-name URIs of distribution points are reported; distribution points given as a name relative to
    the CRL issuer have no URL to fetch.
seealso:
  - module: crlfix.windows.winhttp_proxy_info
  - module: crlfix.windows.winhttp_proxy
  - plugin: crlfix.windows.x509_revocation_endpoints
    plugin_type: filter
  - plugin: crlfix.windows.crl_info
    plugin_type: filter
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: List the endpoints of the machine certificates
  crlfix.windows.cert_revocation_info:
  register: revocation

- name: Show the HTTP URLs the host must reach
  ansible.builtin.debug:
    msg: "{{ revocation.endpoints | selectattr('scheme', 'in', ['http', 'https']) | map(attribute='url') | list }}"

- name: Only the TLS server certificate of Lync, with the WinHTTP proxy in the same round trip
  crlfix.windows.cert_revocation_info:
    cert_subject: 'CN=lync\d*\.contoso\.com'
    cert_ekus: [serverAuth]
    include_winhttp: true
  register: lync

- name: Fail when a certificate can only be checked over LDAP
  ansible.builtin.assert:
    that: lync.flags.ldap_only | length == 0
    fail_msg: "LDAP-only CRL distribution points: {{ lync.flags.ldap_only }}"

- name: Report one certificate by thumbprint, also from the Remote Desktop store
  crlfix.windows.cert_revocation_info:
    cert_stores: [My, Remote Desktop]
    cert_thumbprints: ['3B 1E 9A 7C 51 0D 4E 8F 22 6A 91 C4 D0 5F 7E 2B 8C 3D 6A 10']
"""

RETURN = r"""
computer_name:
  description: The host's computer name (C($env:COMPUTERNAME)); V(null) only when the task failed.
  returned: always
  type: str
  sample: LYNC-FE01
checked_at:
  description: The controller time at which expiry was judged, ISO 8601 UTC.
  returned: always
  type: str
  sample: '2026-11-26T04:20:00Z'
certificates:
  description: One entry per reported certificate, in store order (first store first), each thumbprint once.
  returned: always
  type: list
  elements: dict
  contains:
    subject:
      description: Subject as Windows shows it.
      type: str
      sample: CN=lync.contoso.com, O=Contoso, C=US
    issuer:
      description: Issuer as Windows shows it.
      type: str
    thumbprint:
      description: SHA-1 thumbprint, upper-case hex.
      type: str
      sample: 3B1E9A7C510D4E8F226A91C4D05F7E2B8C3D6A10
    serial:
      description: Serial number, upper-case hex.
      type: str
    store:
      description: The store the certificate was read from.
      type: str
      sample: My
    has_private_key:
      description: Whether the host holds the private key.
      type: bool
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      sample: '2027-11-26T00:00:00Z'
    days_remaining:
      description: Whole days from RV(checked_at) to RV(certificates[].not_after); negative once expired.
      type: int
    ekus:
      description: Extended key usage OIDs, or V(null) when the certificate has no such extension (all usages).
      type: list
      elements: str
    chain:
      description: The chain from the certificate itself to the root (or to the last issuer found).
      type: list
      elements: dict
      contains:
        subject:
          description: Subject of the element.
          type: str
        thumbprint:
          description: SHA-1 thumbprint of the element.
          type: str
        is_root:
          description: Whether the element is self-signed.
          type: bool
        store:
          description: Store the element was found in.
          type: str
        not_after:
          description: End of validity of the element, ISO 8601 UTC.
          type: str
    chain_complete:
      description: Whether the chain ends in a self-signed root.
      type: bool
    chain_problem:
      description: Why the chain is incomplete (the issuer that was not found), V(null) when complete.
      type: str
    endpoints:
      description: The URLs of every non-root chain element, the certificate first.
      type: list
      elements: dict
      contains:
        thumbprint:
          description: Thumbprint of the element.
          type: str
        subject:
          description: Subject of the element.
          type: str
        crl:
          description: CRL distribution point URLs (HTTP and LDAP), as written, in certificate order.
          type: list
          elements: str
        delta_crl:
          description: Freshest CRL (delta CRL) URLs.
          type: list
          elements: str
        ocsp:
          description: AIA OCSP responder URLs.
          type: list
          elements: str
        ca_issuers:
          description: AIA CA Issuers URLs.
          type: list
          elements: str
    flags:
      description: The certificate's findings, see RV(flags).
      type: dict
      contains:
        expired:
          description: The certificate is past its end of validity.
          type: bool
        expiring_soon:
          description: The certificate expires within O(expiry_warning_days).
          type: bool
        ldap_only:
          description: Some non-root chain element has CRL distribution points and all of them are LDAP,
            so its revocation cannot be checked through an HTTP proxy.
          type: bool
        no_endpoints:
          description: No non-root chain element carries any URL (for example a self-signed certificate).
          type: bool
        chain_incomplete:
          description: The chain does not reach a self-signed root with the stores read.
          type: bool
endpoints:
  description:
    - Every URL the reported certificates depend on, once per kind and URL, in the order first met.
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: The URL as written in the certificate.
      type: str
      sample: http://pki.contoso.com/crl/Contoso-Issuing-CA.crl
    kind:
      description: V(crl), V(delta_crl), V(ocsp) or V(ca_issuers).
      type: str
    scheme:
      description: Lower-case URL scheme (V(http), V(https), V(ldap), V(file)…); empty when the URL has none.
      type: str
    certificates:
      description: Thumbprints of the reported certificates whose chain needs the URL.
      type: list
      elements: str
    carried_by:
      description: Thumbprints of the chain elements that contain the URL.
      type: list
      elements: str
flags:
  description: Thumbprints of the reported certificates per finding (see C(certificates[].flags)).
  returned: always
  type: dict
  contains:
    expired:
      description: Expired certificates.
      type: list
      elements: str
    expiring_soon:
      description: Certificates that expire within O(expiry_warning_days).
      type: list
      elements: str
    ldap_only:
      description: Certificates with a chain element whose CRL distribution points are all LDAP.
      type: list
      elements: str
    no_endpoints:
      description: Certificates that depend on no URL at all.
      type: list
      elements: str
    chain_incomplete:
      description: Certificates whose chain could not be completed from the stores read.
      type: list
      elements: str
missing_stores:
  description: Store names asked for that do not exist on the host.
  returned: always
  type: list
  elements: str
unparsable_certificates:
  description:
    - Store entries the controller could not parse; they are skipped, not fatal.
  returned: always
  type: list
  elements: dict
  contains:
    store:
      description: Store name.
      type: str
    index:
      description: Position in the store listing.
      type: int
    thumbprint:
      description: SHA-1 of the raw bytes, V(null) when they were not even base64.
      type: str
    error:
      description: Why parsing failed.
      type: str
store_counts:
  description: Number of certificates read per store.
  returned: always
  type: dict
  sample: {My: 2, CA: 14, Root: 41}
trust_store:
  description:
    - The Root store as Schannel uses it, when O(chain_stores) reads it (else V(null)). C(count) certificates;
      C(issuer_list_bytes) the size of their subject names as a TLS server's trusted issuer list (over 16384 bytes,
      Schannel cuts it or fails the handshake, KB 933430); C(non_self_signed) each entry that is not a root
      (C(subject), C(issuer), C(thumbprint)), which can keep a Lync front end from starting.
  returned: always
  type: dict
  sample: {"count": 41, "issuer_list_bytes": 4211, "non_self_signed": []}
winhttp:
  description:
    - The host's C(winhttp_state) document (both WinHTTP registry views, OS build, C(netsh winhttp show advproxy)),
      as described in the collection's C(docs/dev/host-scripts.md), when O(include_winhttp=true); otherwise V(null).
  returned: always
  type: dict
"""
