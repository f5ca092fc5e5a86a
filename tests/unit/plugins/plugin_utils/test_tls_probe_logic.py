"""tls_probe logic: peer validation, per-peer statistics and verdicts, host documents replayed at the seam."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import (
    Peer,
    PeerError,
    interpret_peer,
    normalize_peers,
    parse_peer,
    run_tls_probe,
)
from tests import pslint
from tests.unit.plugins.fixtures.host import FakeHost, compact
from tests.unit.plugins.fixtures.verify.verify_bodies import FIXTURES

MIXED_PEERS = [
    "lab-fe02.lab.test:5061",
    {"host": "lab-fe03.lab.test", "port": 5061},
    {"host": "lab-fe04.lab.test", "port": "5061", "sni": "lab-fe04.lab.test"},
    {"host": "127.0.0.1", "port": 5062, "sni": "lab-fe05.lab.test"},
    {"host": "[::1]", "port": 5063, "sni": "lab-fe06.lab.test"},
]


def args(**overrides):
    base = {"peers": MIXED_PEERS, "probe_samples": 3, "probe_timeout_ms": 20000, "max_handshake_ms": 1000,
            "check_revocation": True}
    base.update(overrides)
    return base


# --- peers -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("lab-fe02.lab.test:5061", Peer("lab-fe02.lab.test", 5061, "lab-fe02.lab.test")),
        ("10.0.0.12:443", Peer("10.0.0.12", 443, "10.0.0.12")),
        ("[2001:db8::10]:5061", Peer("2001:db8::10", 5061, "2001:db8::10")),
        ("[2001:DB8:0::10]:5061", Peer("2001:db8::10", 5061, "2001:db8::10")),
        ("LYNC-FE01:5061", Peer("LYNC-FE01", 5061, "LYNC-FE01")),
        ({"host": "10.0.0.13", "port": 5061, "sni": "lync-fe03.contoso.com"},
         Peer("10.0.0.13", 5061, "lync-fe03.contoso.com")),
        ({"host": "::1", "port": "443"}, Peer("::1", 443, "::1")),
        ({"host": "[::1]", "port": 443, "sni": None}, Peer("::1", 443, "::1")),
    ],
)
def test_parse_peer(value, expected) -> None:
    assert parse_peer(value, field="peers[0]") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lab-fe02.lab.test", r"peers\[2\]: expected host:port or \[IPv6\]:port, got 'lab-fe02.lab.test'"),
        ("2001:db8::10:5061", r"an IPv6 address needs brackets"),
        ("[lab-fe02]:5061", r"brackets are only for IPv6 addresses"),
        ("[2001:db8::zz]:5061", r"not a valid IPv6 address"),
        ("lab-fe02.lab.test:0", r"port must be an integer from 1 to 65535, got 0"),
        ("lab-fe02.lab.test:65536", r"port must be an integer from 1 to 65535, got 65536"),
        ("lab fe02:5061", r"not a valid host name or IP address: 'lab fe02'"),
        ("lab-fe02;calc:5061", r"not a valid host name or IP address"),
        ("-lab.test:5061", r"not a valid host name"),
        ({"host": "lab-fe02.lab.test"}, r"peers\[2\]: a peer dict needs 'host' and 'port'"),
        ({"host": "lab-fe02.lab.test", "port": True}, r"peers\[2\]\.port: port must be an integer"),
        ({"host": "lab-fe02.lab.test", "port": 5061, "sni": "bad sni"}, r"peers\[2\]\.sni: not a valid host"),
        ({"host": "a.test", "port": 1, "proto": "tls"}, r"unknown keys \['proto'\]"),
        (5061, r"peers\[2\]: expected host:port or a"),
    ],
)
def test_parse_peer_refuses(value, message) -> None:
    with pytest.raises(PeerError, match=message):
        parse_peer(value, field="peers[2]")


def test_display_brackets_ipv6() -> None:
    assert [p.display for p in normalize_peers(["[::1]:5061", "a.test:443"])] == ["[::1]:5061", "a.test:443"]


@pytest.mark.parametrize("value", [[], None, "a.test:443"])
def test_peers_must_be_a_non_empty_list(value) -> None:
    with pytest.raises(PeerError, match="peers: expected a non-empty list"):
        normalize_peers(value)


# --- one peer -------------------------------------------------------------------------------------------------

def sample(hs=5, tcp=1, status=(), error=None, protocol="Tls12"):
    return {"tcp_connect_ms": tcp, "handshake_ms": hs, "protocol": protocol, "chain_status": list(status),
            "policy_errors": "None", "error": error}


PEER = Peer("lab-fe02.lab.test", 5061, "lab-fe02.lab.test")


def test_interpret_peer_keeps_failed_samples_as_null() -> None:
    out = interpret_peer(PEER, {"samples": [sample(12), sample(None, None, error="boom"), sample(3)]},
                         max_handshake_ms=1000)
    assert out["samples_ms"] == [12, None, 3]
    assert out["tcp_connect_ms"] == [1, None, 1]
    assert (out["min_ms"], out["median_ms"], out["p95_ms"], out["max_ms"]) == (3, 7.5, 12, 12)
    assert out["errors"] == ["sample 2: boom"]
    assert out["verdict"] == "error"


def test_interpret_peer_without_samples_is_an_error() -> None:
    out = interpret_peer(PEER, {"samples": []}, max_handshake_ms=1000)
    assert out["verdict"] == "error"
    assert out["errors"] == ["the host ran no sample"]
    assert out["max_ms"] is None


def test_interpret_peer_tolerates_a_short_error_sample() -> None:
    # What the script returns when a peer's runspace itself failed: only chain_status and error.
    out = interpret_peer(PEER, {"samples": [{"chain_status": [], "error": "The pipeline has been stopped."}]},
                         max_handshake_ms=1000)
    assert out["samples_ms"] == [None]
    assert out["verdict"] == "error"


@pytest.mark.parametrize(("policy", "status", "error"), [
    # The twin's answer for a peer whose certificate is for another name. On Windows the probe's
    # callback accepts and the handshake completes (protocol set); a service would refuse it all the same.
    ("RemoteCertificateNameMismatch", (),
     "the certificate does not match the name probed (RemoteCertificateNameMismatch)"),
    ("RemoteCertificateChainErrors", ("UntrustedRoot",), "the certificate chain is not trusted (UntrustedRoot)"),
    ("RemoteCertificateChainErrors", ("Revoked",), "the certificate chain is not trusted (Revoked)"),
    ("RemoteCertificateNameMismatch, RemoteCertificateChainErrors", ("RevocationStatusUnknown",),
     "the certificate does not match the name probed (RemoteCertificateNameMismatch)"),
])
def test_a_handshake_a_service_would_refuse_is_never_a_pass(policy, status, error) -> None:
    refused = {**sample(12, status=status, protocol=None), "policy_errors": policy}
    out = interpret_peer(PEER, {"samples": [refused, refused]}, max_handshake_ms=1000)
    assert out["verdict"] == "error" and out["errors"] == [f"sample 1: {error}", f"sample 2: {error}"]
    assert out["samples_ms"] == [12, 12]  # the handshake happened: its time is measured all the same


def test_unknown_revocation_alone_is_the_outage_not_a_refused_certificate() -> None:
    unknown = {**sample(4012, status=("RevocationStatusUnknown", "OfflineRevocation")),
               "policy_errors": "RemoteCertificateChainErrors"}
    out = interpret_peer(PEER, {"samples": [unknown]}, max_handshake_ms=1000)
    assert out["verdict"] == "revocation_unknown" and out["errors"] == []


def test_interpret_peer_refuses_a_result_without_samples() -> None:
    with pytest.raises(HostScriptError, match="has no samples list"):
        interpret_peer(PEER, {"host": "x"}, max_handshake_ms=1000)


# --- the whole probe at the seam --------------------------------------------------------------------------------

@pytest.fixture
def mixed(monkeypatch):
    return FakeHost(monkeypatch, compact((FIXTURES / "tls_probe_mixed.json").read_text(encoding="utf-8")))


def run(**overrides):
    return run_tls_probe("conn", args(**overrides), task_action="crlfix.windows.tls_probe")


def test_one_remote_command_carrying_normalised_peers(mixed) -> None:
    run()
    assert mixed.calls == 1
    assert mixed.sent_name() == "tls_probe"
    assert mixed.sent_args() == {
        "peers": [
            {"host": "lab-fe02.lab.test", "port": 5061, "sni": "lab-fe02.lab.test"},
            {"host": "lab-fe03.lab.test", "port": 5061, "sni": "lab-fe03.lab.test"},
            {"host": "lab-fe04.lab.test", "port": 5061, "sni": "lab-fe04.lab.test"},
            {"host": "127.0.0.1", "port": 5062, "sni": "lab-fe05.lab.test"},
            {"host": "::1", "port": 5063, "sni": "lab-fe06.lab.test"},
        ],
        "samples": 3, "timeout_ms": 20000, "check_revocation": True,
    }


def test_mixed_verdicts(mixed) -> None:
    result = run()
    fast, slow, unknown, refused, flaky = result["results"]
    assert fast == {
        "peer": "lab-fe02.lab.test:5061", "host": "lab-fe02.lab.test", "port": 5061, "sni": "lab-fe02.lab.test",
        "samples_ms": [12, 4, 3], "tcp_connect_ms": [1, 0, 0], "min_ms": 3, "median_ms": 4, "p95_ms": 12,
        "max_ms": 12, "protocol": "Tls12", "protocol_mismatch": False, "chain_status": [], "policy_errors": ["None"],
        "revocation_unknown": False, "errors": [], "verdict": "pass", "mutual": False, "one_sided_ms": None,
        "slow_because": None,
        # A document from a script that did not label its samples: every completed one counts, as before.
        "handshakes": [None, None, None], "full_handshakes": 0, "resumed_handshakes": 0, "one_sided_handshake": None,
        # A healthy chain: the host keeps no certificate, and there is no unknown revocation to attribute.
        "peer_certificate": None, "unknown_because": None,
    }
    assert (slow["verdict"], slow["max_ms"], slow["p95_ms"], slow["median_ms"]) == ("slow", 1500, 1500, 1400)

    assert unknown["verdict"] == "revocation_unknown"
    assert unknown["revocation_unknown"] is True
    assert unknown["chain_status"] == ["RevocationStatusUnknown", "OfflineRevocation"]  # union, first seen order
    assert unknown["policy_errors"] == ["RemoteCertificateChainErrors"]
    assert unknown["min_ms"] == 15008
    # A document without peer_certificate_b64 (a script before it, or none kept): nothing shows it is the peer's.
    assert (unknown["peer_certificate"], unknown["unknown_because"]) == (None, "this_host")

    assert refused["verdict"] == "error"
    assert refused["samples_ms"] == [None, None, None]
    assert refused["min_ms"] is None
    assert refused["protocol"] is None
    assert len(refused["errors"]) == 3
    assert refused["errors"][0] == ("sample 1: No connection could be made because the target machine actively "
                                    "refused it 127.0.0.1:5062")

    assert flaky["peer"] == "[::1]:5063"
    assert flaky["verdict"] == "error"
    assert flaky["errors"] == ["sample 1: The TCP connection timed out"]
    assert flaky["samples_ms"] == [None, 9, 7]

    assert result["all_pass"] is False
    assert result["worst_ms"] == 15012
    assert result["summary"] == {"total": 5, "error": 2, "revocation_unknown": 1, "slow": 1, "pass": 1}
    assert result["changed"] is False
    assert result["max_handshake_ms"] == 1000


def test_threshold_moves_the_slow_verdict(mixed) -> None:
    result = run(max_handshake_ms=1500)
    assert result["results"][1]["verdict"] == "pass"
    assert result["summary"]["slow"] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"probe_samples": 0}, "probe_samples: must be an integer from 1 to 50, got 0"),
        ({"probe_samples": 51}, "probe_samples: must be an integer from 1 to 50, got 51"),
        ({"probe_timeout_ms": 0}, "probe_timeout_ms: must be an integer from 1 to"),
        ({"max_handshake_ms": -5}, "max_handshake_ms: must be an integer from 1 to"),
        ({"peers": ["a.test:443", "b.test"]}, r"peers\[1\]: expected host:port"),
    ],
)
def test_bad_options_fail_before_any_remote_command(monkeypatch, overrides, message) -> None:
    host = FakeHost(monkeypatch, "")
    with pytest.raises(PeerError, match=message):
        run(**overrides)
    assert host.calls == 0


def test_a_document_for_other_peers_is_refused(monkeypatch) -> None:
    doc = '{"script":"tls_probe","schema":1,"results":[{"host":"other.test","port":5061,"samples":[]}]}'
    FakeHost(monkeypatch, doc)
    with pytest.raises(HostScriptError, match=r"results\[0\] is not the answer for a.test:5061"):
        run(peers=["a.test:5061"])


def test_a_document_with_too_few_results_is_refused(monkeypatch) -> None:
    FakeHost(monkeypatch, '{"script":"tls_probe","schema":1,"results":[]}')
    with pytest.raises(HostScriptError, match="0 results for 1 peers"):
        run(peers=["a.test:5061"])


def test_tls_probe_ps1_reads_every_sent_argument_and_others_only_with_a_default(mixed) -> None:
    run()
    text = mixed.scripts[-1]  # the script as sent: its body and the fragments holding the option tables
    root = pslint.parse(text).root_node
    # The script hands its arguments whole to the engine (Invoke-CrlfixTlsProbes -Arguments $CrlfixArgs), which reads
    # them as $Arguments (_common.ps1's Get-CrlfixArgument reads $Arguments.PSObject, no argument of ours).
    assert "Invoke-CrlfixTlsProbes -Arguments $CrlfixArgs" in text
    direct = (pslint.member_reads(root, "CrlfixArgs") | pslint.member_reads(root, "Arguments")) - {"PSObject"}
    defaulted = pslint.defaulted_reads(root, "CrlfixArgs") | pslint.defaulted_reads(root, "Arguments")
    assert direct <= set(mixed.sent_args()) <= direct | defaulted
    # each peer entry is read as $peer.host / $peer.port / $peer.sni
    assert pslint.member_reads(root, "peer") == set(mixed.sent_args()["peers"][0])
    assert "@'" not in text and '@"' not in text
