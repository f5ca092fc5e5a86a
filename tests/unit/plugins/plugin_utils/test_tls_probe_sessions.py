"""Full and resumed handshakes (F2 of the script review): only full handshakes judge latency.

.NET Framework resumes a TLS session an earlier handshake of the same process made with the peer (the SslStream
documentation quoted in dotnet/runtime#65563), so a probe's samples 2..n are usually resumed: the client sends no
certificate and the peer checks nothing. _ps1/_tls.ps1 labels each sample ``handshake`` ``full`` or ``resumed`` from
the TLS records (docs/dev/host-scripts.md, tls_probe); these samples are in that shape.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import (
    PeerError,
    client_certificate_args,
    host_args,
    interpret_document,
    parse_peer,
)

PEER = parse_peer("lync-fe02.contoso.com:5061", field="peers[0]")
MAX_MS = 1000


def sample(ms: int | None, kind: str | None, *, sent: bool | None = None, error: str | None = None,
           chain: list[str] | None = None) -> dict[str, t.Any]:
    return {"tcp_connect_ms": 1, "handshake_ms": ms, "protocol": "Tls12" if ms is not None else None,
            "mutual": True, "chain_status": chain or [], "policy_errors": "None", "error": error, "handshake": kind,
            "certificate_requested": kind == "full" if kind else None,
            "certificate_sent": sent if sent is not None else (kind == "full" if kind else None)}


def peer(samples: list[dict[str, t.Any]], one_sided: dict[str, t.Any] | None = None,
         **document: t.Any) -> dict[str, t.Any]:
    doc = {"offered_protocols": "Tls, Tls11, Tls12", **document,
           "results": [{"host": PEER.host, "port": PEER.port, "sni": PEER.sni, "samples": samples,
                        "one_sided": one_sided}]}
    return interpret_document([PEER], doc, max_handshake_ms=MAX_MS)


def test_a_slow_full_handshake_decides_and_fast_resumed_ones_do_not_dilute_it() -> None:
    # Sample 1: the peer checked this host's certificate and could not reach its CRL. Samples 2-3 resumed that
    # session: the peer checked nothing, so their 3 ms say nothing about it.
    result = peer([sample(4010, "full"), sample(3, "resumed"), sample(2, "resumed")])["results"][0]
    assert result["handshakes"] == ["full", "resumed", "resumed"]
    assert (result["full_handshakes"], result["resumed_handshakes"]) == (1, 2)
    assert (result["min_ms"], result["median_ms"], result["max_ms"], result["verdict"]) == (4010, 4010, 4010, "slow")
    assert result["samples_ms"] == [4010, 3, 2]  # every sample as measured, the labels beside them


def test_a_fast_resumed_handshake_never_passes_a_peer_whose_full_handshake_failed() -> None:
    result = peer([sample(None, None, error="The operation timed out"), sample(3, "resumed")])["results"][0]
    assert result["verdict"] == "error" and result["max_ms"] is None


def test_a_peer_with_no_full_handshake_says_so_and_judges_no_latency() -> None:
    # A psrp runspace keeps its process between commands: every sample may resume an earlier command's session.
    result = peer([sample(3, "resumed"), sample(2, "resumed")])["results"][0]
    assert result["full_handshakes"] == 0 and result["max_ms"] is None
    assert result["verdict"] == "error"
    assert result["errors"] == ["no full handshake: every completed sample resumed an earlier TLS session, so none "
                                "measured the peer's check of this host's certificate"]


def test_unlabelled_samples_count_as_before() -> None:
    # A host that could not tell (tap_error) or an older script: null labels; every completed sample counts.
    result = peer([sample(20, None), sample(10, None)], tap_error="Add-Type failed")["results"][0]
    assert result["handshakes"] == [None, None] and result["full_handshakes"] == 0
    assert (result["max_ms"], result["verdict"]) == (20, "pass")


def test_mutual_is_what_the_full_handshakes_presented_not_what_net_says_of_a_resumed_one() -> None:
    # IsMutuallyAuthenticated stays true on a resumed session (dotnet/runtime#65563); the tap saw no certificate go.
    presented = peer([sample(40, "full", sent=True), sample(3, "resumed")])["results"][0]
    assert presented["mutual"] is True
    # A full handshake where the peer asked for nothing, or the certificate did not go: not mutual.
    not_sent = peer([sample(40, "full", sent=False), sample(3, "resumed", sent=False)])["results"][0]
    assert not_sent["mutual"] is False


def test_the_one_sided_handshake_keeps_its_label_and_whose_work_it_was() -> None:
    result = peer([sample(4010, "full"), sample(3, "resumed")],
                  {"handshake_ms": 30, "error": None, "handshake": "full"})["results"][0]
    assert (result["one_sided_ms"], result["one_sided_handshake"], result["slow_because"]) == (30, "full", "peer")


def test_revocation_unknown_on_a_resumed_sample_still_counts() -> None:
    # The client validates the server's chain after a resumed handshake too (.NET's CompleteHandshake): its flags are
    # this host's own view of the peer's certificate.
    result = peer([sample(30, "full"), sample(3, "resumed", chain=["RevocationStatusUnknown", "OfflineRevocation"])])
    assert result["results"][0]["verdict"] == "revocation_unknown"


def test_the_certificate_presented_comes_back_as_the_host_reported_it() -> None:
    chosen = {"thumbprint": "AB" * 20, "subject": "CN=lync-fe01.contoso.com", "chosen_by": "fqdn",
              "fqdn": "lync-fe01.contoso.com", "error": None}
    assert peer([sample(30, "full")], client_certificate=chosen)["client_certificate"] == chosen
    assert peer([sample(30, "full")])["client_certificate"] is None


def test_the_bound_thumbprint_and_the_fqdn_travel_only_with_mutual() -> None:
    wanted = client_certificate_args(thumbprint="ab cd" + "0" * 36, fqdn="lync-fe01.contoso.com")
    assert wanted == {"thumbprint": "ABCD" + "0" * 36, "fqdn": "lync-fe01.contoso.com"}
    assert host_args([PEER], samples=1, timeout_ms=1, check_revocation=True, mutual=True,
                     client_certificate=wanted)["client_certificate"] == wanted
    assert "client_certificate" not in host_args([PEER], samples=1, timeout_ms=1, check_revocation=True,
                                                 client_certificate=wanted)
    assert client_certificate_args() is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("thumbprint", "not-hex", r"client_certificate\.thumbprint: expected 40 hexadecimal digits, got 'not-hex'"),
    ("thumbprint", "AB" * 19, "expected 40 hexadecimal digits"),
    ("fqdn", "bad name!", r"client_certificate\.fqdn: not a valid host name"),
])
def test_a_bad_certificate_choice_names_the_field_and_the_value(field: str, value: str, message: str) -> None:
    with pytest.raises(PeerError, match=message):
        client_certificate_args(**{field: value})
