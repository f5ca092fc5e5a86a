# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which certificates are checked, and the CRL fetch: one name each in cert_revocation_info, crl_retrieval_check
and fix_crl_host (the fix_crl role)."""

from __future__ import annotations


class ModuleDocFragment:
    # crlfix.windows._certificates: the certificate stores and filters (cert_revocation_info, fix_crl_host).
    DOCUMENTATION = r"""
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
"""

    # crlfix.windows._certificates.crl_fetch: how long the CRL fetch waits (crl_retrieval_check, fix_crl_host).
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
"""
