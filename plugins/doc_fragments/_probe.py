# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TLS probe's options, one name each in tls_probe, fix_crl_host (the fix_crl role) and fix_crl_restart."""

from __future__ import annotations


class ModuleDocFragment:
    # crlfix.windows._probe: how a TLS probe handshakes and what passes. The peers (tls_probe's and fix_crl_host's
    # peers, fix_crl_restart's own service) and mutual TLS (off in tls_probe, on in the role) are the modules' own.
    DOCUMENTATION = r"""
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
