#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is the action plugin plugins/action/tls_probe.py,
# which runs on the controller.

DOCUMENTATION = r"""
module: tls_probe
short_description: Measure TLS handshakes with revocation checking from a Windows host to its peers
version_added: 1.0.0
description:
  - From the host, opens TLS connections to each peer and measures the handshake with certificate revocation
    checking switched on, as Schannel does it for a service such as Lync Server (SIP mutual TLS on port 5061)
    or Exchange (443). When Windows cannot fetch a CRL, the handshake takes as long as CryptoAPI's retrieval
    timeout (15 seconds or more by default) and the chain reports revocation unknown; that is the outage
    this collection fixes.
  - This module runs on the controller as an action plugin. The host does the measuring, in one remote command
    (a small PowerShell script using C(System.Net.Sockets.TcpClient) and C(System.Net.Security.SslStream)
    with C(checkCertificateRevocation)); statistics and verdicts are computed on the controller.
  - Peers are probed in parallel; the O(probe_samples) handshakes of one peer run one after the other, so a later
    sample sees what an earlier one left in Windows' CRL cache, like a real service does.
  - The probe accepts any certificate so that it can measure the handshake; RV(results[].chain_status) and
    RV(results[].policy_errors) say what Windows thought of the chain, and a handshake a service would refuse (a
    certificate for another name, an untrusted or revoked chain) gives the peer the verdict V(error).
  - Failures of single peers (refused connection, timeout, handshake error) are data in RV(results), never a task
    failure; the caller decides what is fatal, for example with RV(all_pass).
options:
  peers:
    description:
      - The peers to probe, each a string C(host:port), C([IPv6]:port), or a dict with the keys C(host),
        C(port) and optionally C(sni).
      - C(host) is a DNS name, an IPv4 address or an IPv6 address. C(sni) is the name sent as TLS server
        name and checked against the certificate; it defaults to C(host).
    type: list
    elements: raw
    required: true
  mutual_tls:
    description:
      - Present the host's own certificate as the client certificate (mutual TLS, as Lync Server front ends talk on
        5061), so the peer checks its revocation in its own process and the handshake measures both ends' work.
      - The certificate is the one the host's own service presents, as Lync presents its own certificate in MTLS
        both ways; Lync's certificates need only Server Authentication. Of C(LocalMachine\\My), with a private key
        and valid now, it is the one with O(client_thumbprint), else one usable for Server Authentication whose
        Subject Alternative Name holds the host's FQDN (the one valid longest). A machine certificate for Client
        Authentication only is never chosen. Without one the handshakes are one-sided and
        RV(client_certificate.error) says why.
      - One handshake more per peer, without the certificate, tells a peer slow only because it cannot check this
        host's certificate (RV(results[].slow_because) V(peer)).
    type: bool
    default: false
  client_thumbprint:
    description:
      - With O(mutual_tls), the SHA-1 thumbprint of the certificate bound to the host's service (40 hexadecimal
        digits, spaces ignored), presented instead of the one found by the host's FQDN.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - crlfix.windows._shared
  - crlfix.windows._shared.read_only
  - crlfix.windows._shared.probe
notes:
  - Statistics use the successful handshakes of a peer. The median is the ordinary median (the mean of the
    two middle values for an even count); the 95th percentile uses the nearest-rank method, so it is always
    one of the measured values (with 3 samples it is the largest).
  - The probe offers the OS's default protocols (C(SslProtocols.None), .NET Framework 4.7 and later) where .NET allows
    it, else TLS 1.0, 1.1 and 1.2 by name (Windows PowerShell 5.1 without C(SystemDefaultTlsVersions)); Schannel leaves
    out what the host disables. TLS 1.3 is negotiated only through the OS defaults, on Windows Server 2022 and later.
    A peer that speaks only protocols the host has disabled (a Lync Server 2010 front end on Windows Server 2008 R2
    speaks TLS 1.0 only) gets the verdict V(error) with RV(results[].protocol_mismatch) set.
  - The handshake runs as the account Ansible connects with; CryptoAPI uses the machine-wide WinHTTP proxy for
    its retrieval in either case.
seealso:
  - module: crlfix.windows.crl_retrieval_check
  - module: crlfix.windows.winhttp_proxy
author:
  - crlfix.windows maintainers (@crlfix)
"""

EXAMPLES = r"""
- name: Probe the SIP port of another Lync pool member, by name and by address
  crlfix.windows.tls_probe:
    peers:
      - lync-fe01.contoso.com:5061
      - host: 10.0.0.11                 # the same server by address, with the name its certificate must carry
        port: 5061
        sni: lync-fe01.contoso.com
    probe_samples: 5
  register: probe

- name: Fail when a handshake is slow or revocation could not be checked
  ansible.builtin.assert:
    that: probe.all_pass
    fail_msg: "{{ probe.results | rejectattr('verdict', 'eq', 'pass') | map(attribute='peer') | list }}"

# example: not run in the lab: the lab's twins listen on IPv4 loopback addresses only
- name: Baseline without revocation checking, over IPv6
  crlfix.windows.tls_probe:
    peers: ['[2001:db8::10]:443']
    check_revocation: false
    max_handshake_ms: 300
"""

RETURN = r"""
results:
  description: One entry per peer, in the order of O(peers).
  returned: always
  type: list
  elements: dict
  contains:
    peer:
      description: C(host:port) (C([IPv6]:port) for an IPv6 address).
      type: str
      sample: lync-fe02.contoso.com:5061
    host:
      description: The host name or address connected to.
      type: str
    port:
      description: The TCP port.
      type: int
      sample: 5061
    sni:
      description: The TLS server name sent.
      type: str
    samples_ms:
      description: Handshake time of each sample in milliseconds, V(null) for a sample that failed.
      type: list
      elements: int
      sample: [15012, 4, 3]
    tcp_connect_ms:
      description: TCP connect time of each sample in milliseconds, V(null) when the connect failed.
      type: list
      elements: int
      sample: [1, 0, 1]
    handshakes:
      description:
        - For each sample, V(full) or V(resumed) as the host saw it in the TLS records, V(null) when the sample did
          not complete or the host could not tell.
        - Windows resumes a TLS session a handshake of the same process made with the peer, so samples after the
          first are usually V(resumed); a resumed handshake sends no certificate and the peer checks nothing, so it
          does not count in the latency figures or the verdict.
      type: list
      elements: str
      sample: [full, resumed, resumed]
    full_handshakes:
      description: How many samples were full handshakes.
      type: int
      sample: 1
    resumed_handshakes:
      description: How many samples resumed an earlier session.
      type: int
      sample: 2
    min_ms:
      description: Fastest successful handshake that was not resumed; V(null) when none.
      type: int
    median_ms:
      description: Median of the successful handshakes that were not resumed (may be a fraction); V(null) when none.
      type: float
    p95_ms:
      description: 95th percentile (nearest rank) of the successful handshakes that were not resumed; V(null) when none.
      type: int
    max_ms:
      description: Slowest successful handshake that was not resumed; V(null) when none.
      type: int
    protocol:
      description:
        - The negotiated protocol as .NET names it (V(Tls), V(Tls11), V(Tls12), V(Tls13)); V(null) when no handshake
          completed.
      type: str
      sample: Tls12
    mutual:
      description: V(true) when every handshake that was not resumed presented the host's certificate to the peer.
      type: bool
    one_sided_ms:
      description:
        - With O(mutual_tls), the handshake without the host's certificate, in milliseconds; V(null) without
          O(mutual_tls) or when it failed.
      type: int
    one_sided_handshake:
      description: V(full) or V(resumed) for the handshake without the host's certificate; V(null) when unknown.
      type: str
    slow_because:
      description:
        - For a V(slow) peer, whose revocation work made it slow. V(peer) when the handshake without this host's
          certificate was fast, so the peer cannot check this host's certificate (the peer is not fixed yet). That
          does not count against this host in fix_crl. V(this_host) otherwise; V(null) when the peer is not slow.
      type: str
      choices: [peer, this_host]
    peer_certificate:
      description:
        - The certificate the peer presented, sent by the host only when its chain's revocation came back unknown or
          revoked (C(X509Certificate.GetRawCertData) in the validation callback); V(null) otherwise (a healthy chain
          costs nothing) and from a host script before it.
        - C(subject), C(thumbprint) (SHA-1, upper-case hex), C(crl_urls) (its CRL distribution points), C(ocsp_urls),
          C(http_crl) (whether any CRL location is http or https) and C(error) (why it could not be read, naming the
          field, the other keys then empty). The certificate itself is not kept.
      type: dict
      sample: {"subject": "CN=adfs10.lab.test", "thumbprint": "3F2A...", "crl_urls": ["ldap:///CN=Issuing%20CA,..."],
               "ocsp_urls": ["http://ocsp.public-ca.test/"], "http_crl": false, "error": null}
    unknown_because:
      description:
        - For a V(revocation_unknown) peer, whose state left it unknown. V(peer_certificate) when
          RV(results[].peer_certificate) names no http or https CRL location (LDAP only, or none). No host outside the
          issuer's domain can fetch such a CRL (Microsoft KB 884115), however right its proxy is, so the peer's
          certificate is to fix, not this host.
        - V(this_host) for another V(revocation_unknown) peer, also when no certificate was sent or it could not be
          read; V(null) when the peer is not V(revocation_unknown).
        - Only the end-entity certificate and its CRL locations are read. A CA certificate of the chain with LDAP-only
          CRLs counts as this host's; an http OCSP responder named beside LDAP-only CRLs may answer a host whose proxy
          works, so on a host whose own CRL fetch fails such a peer may be both.
      type: str
      choices: [peer_certificate, this_host]
    protocol_mismatch:
      description:
        - V(true) when a sample failed because the host and the peer share no TLS protocol (Schannel's
          C(SEC_E_ALGORITHM_MISMATCH)), so the peer speaks only protocols this host has disabled, or the reverse.
      type: bool
    chain_status:
      description:
        - Names of the C(X509ChainStatusFlags) Windows set on the peer's chain, over all samples; empty when the
          chain was good.
      type: list
      elements: str
      sample: [RevocationStatusUnknown, OfflineRevocation]
    policy_errors:
      description: C(SslPolicyErrors) values seen over all samples (V(None) when the certificate was fine).
      type: list
      elements: str
      sample: [RemoteCertificateChainErrors]
    revocation_unknown:
      description: V(true) when RV(results[].chain_status) holds C(RevocationStatusUnknown) or C(OfflineRevocation).
      type: bool
    errors:
      description:
        - The error of each failed sample, as C(sample N) followed by the text Windows gave, or by why a service
          would refuse the handshake the sample completed (C(the certificate does not match the name probed
          (RemoteCertificateNameMismatch)), C(the certificate chain is not trusted (UntrustedRoot))).
        - C(no full handshake ...) when every completed sample resumed an earlier session.
      type: list
      elements: str
      sample: ['sample 1: No connection could be made because the target machine actively refused it 10.0.0.12:5061']
    verdict:
      description:
        - The first that applies of V(error) (a sample failed, or completed a handshake a service would refuse),
          V(revocation_unknown) (revocation could not be checked), V(slow) (RV(results[].max_ms) above
          O(max_handshake_ms)) and V(pass).
      type: str
      sample: pass
offered_protocols:
  description:
    - The protocols the host offered, as C(SslProtocols) prints them; V(None) means the OS's own defaults.
  returned: always
  type: str
  sample: Tls, Tls11, Tls12
client_certificate:
  description:
    - With O(mutual_tls), the certificate presented as the client's, or why none was; V(null) without O(mutual_tls).
  returned: always
  type: dict
  contains:
    thumbprint:
      description: Its SHA-1 thumbprint; V(null) when none was found.
      type: str
    subject:
      description: Its subject; V(null) when none was found.
      type: str
    chosen_by:
      description: V(thumbprint) (O(client_thumbprint)) or V(fqdn) (Server Authentication, the FQDN in its SAN).
      type: str
    fqdn:
      description: The name its Subject Alternative Name had to hold.
      type: str
    error:
      description: Why no certificate was presented; V(null) when one was.
      type: str
all_pass:
  description: Every peer has the verdict V(pass).
  returned: always
  type: bool
worst_ms:
  description: The slowest successful handshake over all peers; V(null) when none succeeded.
  returned: always
  type: int
  sample: 15012
max_handshake_ms:
  description: The threshold the verdicts used (O(max_handshake_ms)).
  returned: always
  type: int
summary:
  description: Number of peers in total and per verdict.
  returned: always
  type: dict
  sample: {total: 3, pass: 1, slow: 0, revocation_unknown: 1, error: 1}
changed:
  description: Always V(false); the probe changes nothing.
  returned: always
  type: bool
"""
