#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/crl_retrieval_check.py,
# which runs on the controller.

DOCUMENTATION = r"""
module: crl_retrieval_check
short_description: Prove from a Windows host that its revocation endpoints can be fetched through the WinHTTP proxy
version_added: 1.0.0
description:
  - The host fetches every given CRL, delta CRL, CA Issuers and OCSP URL the way CryptoAPI does, through
    WinHTTP and the machine-wide WinHTTP proxy (C(netsh winhttp set proxy)), bypass list included, and the
    controller reports per URL whether it was reachable, the HTTP status, the time taken, the size, whether
    the body is a CRL, delta CRL or certificate, its ThisUpdate/NextUpdate and whether the CRL is stale.
  - This module runs on the controller as an action plugin. The host does the measuring, in one remote command
    (a small PowerShell script using the C(WinHttp.WinHttpRequest.5.1) COM object); all parsing happens on
    the controller with the Python C(cryptography) library.
  - All URLs are fetched in parallel, so the host's total time is bounded by the slowest single URL
    (at most O(crl_timeout_ms)), not by the sum.
  - LDAP URLs are not fetched, because WinHTTP proxies only HTTP and HTTPS; they are reported unreachable
    with an error saying so. Certificates whose only distribution points are LDAP cannot be checked through
    an HTTP proxy.
  - OCSP URLs are only checked for reachability, no OCSP request is sent or parsed. An OCSP URL counts as
    reachable when any HTTP answer came back, except a proxy's gateway error (502, 503, 504), which only
    proves that the proxy is up.
  - Failures of single URLs are data in RV(results), never a task failure; the caller decides what is fatal,
    for example with RV(all_reachable) or RV(all_usable).
options:
  endpoints:
    description:
      - The URLs to fetch, either as URL strings or as dicts with the keys C(url) and C(kind), as
        M(crlfix.windows.cert_revocation_info) returns them in RV(crlfix.windows.cert_revocation_info#module:endpoints)
        (other keys of those dicts are ignored).
      - Each URL must use the scheme V(http), V(https) or V(ldap) and contain no whitespace or control
        characters; LDAP URLs may contain plain spaces (as in C(CN=Public Key Services)), since they are never
        fetched. An http(s) URL must also percent-encode quotes, C(<), C(>), C(\), C(^), backquotes, braces, C(|)
        and non-ASCII characters (RFC 3986). C(kind), when given, is V(crl), V(delta_crl), V(ocsp) or V(ca_issuers).
      - A URL given twice is fetched once.
    type: list
    elements: raw
    required: true
  purge_cache:
    description:
      - Before fetching, delete the host's CryptoAPI URL cache with C(certutil -urlcache * delete), so that
        the next revocation check by Windows (for example M(crlfix.windows.tls_probe), or the host's services)
        fetches again instead of using a cached success or failure.
      - This module's own fetch never uses that cache, so it is not affected by the purge.
      - Purging changes the host, so it is skipped in check mode (RV(purge_skipped_check_mode)).
      - Services keep their in-memory chain cache until it expires; the purge only empties the URL cache.
    type: bool
    default: false
  max_bytes:
    description:
      - Bodies longer than this many bytes are cut on the host and not parsed (RV(results[].truncated)).
    type: int
    default: 4194304
attributes:
  check_mode:
    details: The fetch only reads, so it runs in check mode too; only the cache purge of O(purge_cache) is skipped.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
  - crlfix.windows._shared.crl_fetch
notes:
  - Staleness is judged with the controller's clock (RV(checked_at)); a host whose clock is far off sees the
    CRLs differently.
  - The fetch runs as the account Ansible connects with, not as LocalSystem, but both use the same machine-wide
    WinHTTP proxy setting, which is what this module tests.
seealso:
  - module: crlfix.windows.cert_revocation_info
  - module: crlfix.windows.tls_probe
  - module: crlfix.windows.winhttp_proxy
  - plugin: crlfix.windows.crl_info
    plugin_type: filter
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Find the endpoints the host's certificates need
  crlfix.windows.cert_revocation_info:
  register: revocation

- name: Fetch them from the host, through its WinHTTP proxy
  crlfix.windows.crl_retrieval_check:
    endpoints: "{{ revocation.endpoints }}"
  register: retrieval

- name: Fail when an HTTP endpoint cannot be fetched or a CRL is stale
  ansible.builtin.assert:
    that: retrieval.results | rejectattr('url', 'match', 'ldap:') | rejectattr('usable') | list | length == 0
    fail_msg: "{{ retrieval.results | rejectattr('usable') | map(attribute='url') | list }}"

- name: Check two URLs with a short timeout, after purging the URL cache
  crlfix.windows.crl_retrieval_check:
    endpoints:
      - http://pki.contoso.com/crl/Issuing.crl
      - url: http://ocsp.contoso.com/ocsp
        kind: ocsp
    crl_timeout_ms: 5000
    purge_cache: true
"""

RETURN = r"""
results:
  description: One entry per URL, in the order of O(endpoints) (each URL once).
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: The URL.
      type: str
      sample: http://crl.public-ca.test/lab-int.crl
    kind:
      description:
        - The C(kind) given with the URL (V(crl), V(delta_crl), V(ocsp), V(ca_issuers)); V(null) for a plain URL.
      type: str
    reachable:
      description:
        - V(true) when the URL answered with HTTP 2xx (for OCSP, with any status but a proxy's gateway error).
        - Always V(false) for LDAP URLs.
      type: bool
    usable:
      description:
        - V(true) when the URL is reachable and what came back is what Windows needs from it, a CRL that is not
          stale for CRL URLs, a certificate for CA Issuers URLs, any answer for OCSP.
      type: bool
    http_status:
      description: The HTTP status, V(null) when no HTTP response came back.
      type: int
      sample: 200
    elapsed_ms:
      description: Milliseconds from the start of the request until the answer or the error; V(null) for LDAP.
      type: int
      sample: 41
    bytes:
      description: Size of the body in bytes, before any cut by O(max_bytes).
      type: int
      sample: 912
    truncated:
      description: The body was longer than O(max_bytes) and was not parsed.
      type: bool
    parsed_as:
      description:
        - V(crl), V(delta_crl), V(certificate) (DER, PEM or a PKCS#7 bundle) or V(none).
        - Always V(none) for OCSP, which is not parsed.
      type: str
      sample: crl
    this_update:
      description: ThisUpdate of the CRL, ISO 8601 UTC; V(null) when the body is not a CRL.
      type: str
      sample: '2026-11-26T03:00:00Z'
    next_update:
      description: NextUpdate of the CRL, ISO 8601 UTC; V(null) when the body is not a CRL or the CRL has none.
      type: str
      sample: '2026-11-27T03:00:00Z'
    stale:
      description: V(true) when NextUpdate is before RV(checked_at); V(null) when the body is not a CRL.
      type: bool
    fresh:
      description: V(true) when ThisUpdate <= RV(checked_at) and the CRL is not stale; V(null) when not a CRL.
      type: bool
    error:
      description:
        - Why the URL is not usable, V(null) when it is. Host errors are the text Windows gave, for example
          C(The operation timed out) or C(The server name or address could not be resolved).
      type: str
    foreign_agent:
      description:
        - What the URL answered when asked once more (C(HEAD)) with WinHttpRequest's own default User-Agent instead
          of CryptoAPI's, C(agent) (the string sent), C(http_status) and C(error); V(null) when not asked.
        - This module never asks (always V(null)); the C(crlfix.windows.fix_crl_host) audit does, so that its record
          can tell a proxy that filters by User-Agent (finding C(proxy_filters_agent)).
      type: dict
    winhttp_error:
      description: WinHTTP's error number of a request that got no HTTP answer (12002 timed out, 12007 name not
        resolved, 12029 cannot connect), when the host says; else V(null).
      type: int
    proxy_error:
      description: The proxy's own error name when it answered instead of the server (squid's C(X-Squid-Error),
        e.g. C(ERR_DNS_FAIL 0)); else V(null).
      type: str
    via:
      description: The C(Via) header of the answer (the proxies it went through), when there was one.
      type: str
    location:
      description: When the host asked an OCSP responder with a request for a certificate (RFC 6960 A.1 GET), the
        URL it asked (RV(results[].url) is the responder's); else V(null).
      type: str
    rejected:
      description: Why a fetched CRL is not valid for its certificates (not signed by their issuer), when the
        audit knows the issuer; else V(null).
      type: str
    ocsp_status:
      description: The OCSP responder's answer to the host's request (V(successful), V(malformed_request),
        V(internal_error), V(try_later), V(sig_required), V(unauthorized)); else V(null).
      type: str
    ocsp_cert_status:
      description: With V(successful), the certificate's status at the responder (V(good), V(revoked), V(unknown)).
      type: str
summary:
  description: Counts over RV(results).
  returned: always
  type: dict
  contains:
    total:
      description: Number of URLs.
      type: int
    reachable:
      description: URLs with RV(results[].reachable).
      type: int
    unreachable:
      description: URLs that are not reachable, LDAP included.
      type: int
    usable:
      description: URLs with RV(results[].usable).
      type: int
    stale:
      description: Stale CRLs.
      type: int
    ldap_skipped:
      description: LDAP URLs, not fetched.
      type: int
  sample: {total: 4, reachable: 3, unreachable: 1, usable: 2, stale: 1, ldap_skipped: 1}
all_reachable:
  description: Every URL is reachable (V(false) as soon as one LDAP URL is given).
  returned: always
  type: bool
all_usable:
  description: Every URL is usable.
  returned: always
  type: bool
purged:
  description: The URL cache was purged successfully.
  returned: always
  type: bool
purge_skipped_check_mode:
  description: O(purge_cache) was requested but skipped because the task ran in check mode.
  returned: always
  type: bool
purge:
  description: The exit code and output of C(certutil -urlcache * delete); V(null) when no purge ran.
  returned: always
  type: dict
  sample: {rc: 0, output: "CertUtil: -URLCache command completed successfully."}
checked_at:
  description: The controller time at which staleness was judged, ISO 8601 UTC.
  returned: always
  type: str
  sample: '2026-11-26T04:20:00Z'
changed:
  description: V(true) only when the URL cache was purged.
  returned: always
  type: bool
"""
