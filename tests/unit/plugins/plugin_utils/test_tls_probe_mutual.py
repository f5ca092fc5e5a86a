"""Mutual TLS: the probe presents the host's certificate; whose work a slow handshake was.

The samples are in the shape _ps1/_tls.ps1 writes (docs/dev/host-scripts.md, tls_probe): ``mutual`` is
``SslStream.IsMutuallyAuthenticated``, ``one_sided`` the handshake without the certificate, made before the samples.
"""

from __future__ import annotations

import re
import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import (
    compare_before_after,
    judge_phase,
    tls_findings,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import PS1_DIR
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import (
    NO_COMMON_PROTOCOL,
    host_args,
    interpret_document,
    parse_peer,
)
from tests import pslint

PEER = parse_peer("lync-fe02.contoso.com:5061", field="peers[0]")
MAX_MS = 1000


def sample(ms: int | None, *, mutual: bool = True, error: str | None = None) -> dict[str, t.Any]:
    return {"tcp_connect_ms": 1, "handshake_ms": ms, "protocol": "Tls12" if ms else None, "mutual": mutual,
            "chain_status": [], "policy_errors": "None", "error": error}


def probe(samples: list[dict[str, t.Any]], one_sided: dict[str, t.Any] | None) -> dict[str, t.Any]:
    document = {"offered_protocols": "Tls, Tls11, Tls12",
                "results": [{"host": PEER.host, "port": PEER.port, "sni": PEER.sni, "samples": samples,
                             "one_sided": one_sided}]}
    return interpret_document([PEER], document, max_handshake_ms=MAX_MS)


def test_a_peer_slow_only_with_our_certificate_is_slow_because_of_the_peer() -> None:
    # The peer's Lync checks our certificate in its own process and cannot reach our CRL: 4 s; without it, 30 ms.
    result = probe([sample(4012), sample(4008)], {"handshake_ms": 30, "error": None})
    peer = result["results"][0]
    assert (peer["verdict"], peer["mutual"], peer["one_sided_ms"], peer["slow_because"]) == ("slow", True, 30, "peer")
    phase = judge_phase(None, result, requirement="usable", max_handshake_ms=MAX_MS)
    assert phase["tls_ok"] is True and phase["passed"] is True
    assert "1 slow only with this host's certificate, not counted" in phase["summary"]
    # It does not make the change look worse either (no rollback for the peer's state).
    before = judge_phase(None, probe([sample(20)], {"handshake_ms": 20, "error": None}), requirement="usable",
                         max_handshake_ms=MAX_MS)
    assert compare_before_after({"before": before, "after": phase}, requirement="usable",
                                baseline_allowed=True)["worse"] == []


@pytest.mark.parametrize(("samples", "one_sided"), [
    ([sample(4012), sample(4008)], {"handshake_ms": 4001, "error": None}),  # slow alone too: our own chain
    ([sample(4012, mutual=False)], {"handshake_ms": 30, "error": None}),  # the peer never took our certificate
    ([sample(4012)], {"handshake_ms": None, "error": "The TCP connection timed out"}),  # nothing to compare
    ([sample(4012)], None),  # one-sided probes (mutual off)
])
def test_any_other_slow_peer_is_this_hosts(samples, one_sided) -> None:
    result = probe(samples, one_sided)
    assert result["results"][0]["slow_because"] == "this_host"
    assert judge_phase(None, result, requirement="usable", max_handshake_ms=MAX_MS)["tls_ok"] is False


CUT = "not finished within the audit's time box of 2000 ms"
SKIPPED = {"tcp_connect_ms": None, "handshake_ms": None, "protocol": None, "mutual": False, "chain_status": [],
           "policy_errors": None, "error": None, "skipped": True}


def test_an_audit_cut_while_the_peer_checks_our_certificate_is_the_peer_s() -> None:
    # The audit's time box (2 s) ends while an unfixed peer still checks our certificate; the one-sided handshake,
    # made first, was fast: the peer's work, not this host's (the audit of a correct host in a pool that is not).
    result = probe([sample(None, error=CUT), dict(SKIPPED)], {"handshake_ms": 25, "error": None})
    peer = result["results"][0]
    assert (peer["verdict"], peer["slow_because"]) == ("error", "peer")
    assert judge_phase(None, result, requirement="usable", max_handshake_ms=MAX_MS)["tls_ok"] is True


@pytest.mark.parametrize(("samples", "one_sided"), [
    ([sample(None, error=CUT), dict(SKIPPED)], None),  # the box cut the one-sided handshake: this host was slow
    ([sample(None, error=CUT)], {"handshake_ms": 1900, "error": None}),  # slow alone too
    ([sample(None, error="The TCP connection timed out")], {"handshake_ms": 25, "error": None}),  # not a cut
])
def test_any_other_cut_or_error_counts_against_this_host(samples, one_sided) -> None:
    result = probe(samples, one_sided)
    assert result["results"][0]["slow_because"] in ("this_host", None)
    assert judge_phase(None, result, requirement="usable", max_handshake_ms=MAX_MS)["tls_ok"] is False


def test_a_fast_peer_has_no_blame_and_mutual_needs_every_completed_handshake() -> None:
    peer = probe([sample(12), sample(9, mutual=False)], {"handshake_ms": 8, "error": None})["results"][0]
    assert (peer["verdict"], peer["slow_because"], peer["mutual"]) == ("pass", None, False)


def test_no_common_protocol_is_a_finding_naming_the_peer_and_what_was_offered() -> None:
    result = probe([sample(None, error=NO_COMMON_PROTOCOL)], None)
    assert result["results"][0]["protocol_mismatch"] is True and result["offered_protocols"] == "Tls, Tls11, Tls12"
    [(code, detail)] = tls_findings(result)
    assert code == "protocol_mismatch" and detail.startswith("lync-fe02.contoso.com:5061: no TLS protocol in common")
    assert "offered Tls, Tls11, Tls12" in detail


def test_mutual_is_asked_only_when_wanted() -> None:
    assert "mutual" not in host_args([PEER], samples=1, timeout_ms=1, check_revocation=True)
    assert host_args([PEER], samples=1, timeout_ms=1, check_revocation=True, mutual=True)["mutual"] is True


def test_the_probe_presents_a_client_certificate_with_its_key_usable_for_client_authentication() -> None:
    # SslStream.AuthenticateAsClient(String, X509CertificateCollection, SslProtocols, Boolean) and
    # IsMutuallyAuthenticated (Microsoft Learn); the Client Authentication EKU or none (RFC 5280 4.2.1.12).
    tree = pslint.parse((PS1_DIR / "_tls.ps1").read_text(encoding="utf-8")).root_node
    code = pslint.code(tree)
    assert re.search(r"\.AuthenticateAsClient\(\$ServerName, \$Certificates, \$Protocols, \$CheckRevocation\)", code)
    assert "$stream.IsMutuallyAuthenticated" in code
    selection = pslint.functions(tree)["Get-CrlfixClientCertificate"]
    text = pslint.code(selection)
    assert "HasPrivateKey" in text and "'1.3.6.1.5.5.7.3.2'" in text and "Cert:\\LocalMachine\\My" in text
    # The one-sided handshake after the samples is the same handshake without certificates.
    assert "& $handshake $null" in code and "& $handshake $ClientCertificates" in code
