"""Latency statistics (nearest-rank percentile) and the tls_probe verdicts."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils._latency_stats import (
    LatencySummary,
    is_revocation_unknown,
    latency_verdict,
    nearest_rank,
    slow_because,
    summarize,
    unknown_because,
)


@pytest.mark.parametrize(
    ("values", "percentile", "expected"),
    [
        ([7], 95, 7),
        ([3, 1, 2], 95, 3),  # ceil(0.95 * 3) = 3: the largest of three
        ([3, 1, 2], 50, 2),
        (list(range(1, 21)), 95, 19),  # ceil(0.95 * 20) = 19
        (list(range(1, 101)), 95, 95),
        (list(range(1, 101)), 100, 100),
        ([15, 20, 35, 40, 50], 30, 20),  # the textbook nearest-rank example
        ([15, 20, 35, 40, 50], 40, 20),
        ([15, 20, 35, 40, 50], 50, 35),
        ([15, 20, 35, 40, 50], 1, 15),
    ],
)
def test_nearest_rank(values, percentile, expected) -> None:
    assert nearest_rank(values, percentile) == expected


@pytest.mark.parametrize(("values", "percentile"), [([], 95), ([1], 0), ([1], 101), ([1], -5)])
def test_nearest_rank_refuses(values, percentile) -> None:
    with pytest.raises(ValueError, match="nearest_rank"):
        nearest_rank(values, percentile)


def test_summarize_skips_failed_samples_and_keeps_whole_numbers() -> None:
    summary = summarize([15012, None, 4, 3])
    assert summary == LatencySummary(count=3, min_ms=3, median_ms=4, p95_ms=15012, max_ms=15012)
    assert summary.as_dict() == {"min_ms": 3, "median_ms": 4, "p95_ms": 15012, "max_ms": 15012}
    assert isinstance(summary.median_ms, int)


def test_summarize_even_count_median_is_the_mean_of_the_middle_two() -> None:
    assert summarize([10, 1, 4, 3]).median_ms == 3.5


def test_summarize_nothing() -> None:
    assert summarize([]) is None
    assert summarize([None, None]) is None


@pytest.mark.parametrize("bad", [-1, "12", True])
def test_summarize_refuses_non_numbers(bad) -> None:
    with pytest.raises(ValueError, match="samples_ms"):
        summarize([1, bad])


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], False),
        (["NoError"], False),
        (["UntrustedRoot", "PartialChain"], False),
        (["RevocationStatusUnknown"], True),
        (["OfflineRevocation"], True),
        (["Revoked"], False),
    ],
)
def test_is_revocation_unknown(names, expected) -> None:
    assert is_revocation_unknown(names) is expected


FAST = summarize([12, 4, 3])
SLOW = summarize([1500, 20, 10])


@pytest.mark.parametrize(
    ("summary", "failed", "unknown", "expected"),
    [
        (FAST, 0, False, "pass"),
        (SLOW, 0, False, "slow"),
        (summarize([1000]), 0, False, "pass"),  # the threshold itself passes
        (summarize([1001]), 0, False, "slow"),
        (FAST, 0, True, "revocation_unknown"),  # a cached failure: fast, but not checked
        (SLOW, 0, True, "revocation_unknown"),
        (FAST, 1, True, "error"),
        (None, 3, False, "error"),
        (None, 0, False, "error"),  # no sample at all
    ],
)
def test_latency_verdict(summary, failed, unknown, expected) -> None:
    verdict = latency_verdict(summary=summary, failed_samples=failed, revocation_unknown=unknown,
                              max_handshake_ms=1000)
    assert verdict == expected


@pytest.mark.parametrize(("verdict", "http_crl", "expected"), [
    ("revocation_unknown", False, "peer_certificate"),  # LDAP-only or no CRL location: nobody outside can fetch it
    ("revocation_unknown", True, "this_host"),
    ("revocation_unknown", None, "this_host"),  # no certificate read: nothing shows it is the peer's
    ("pass", False, None),
    ("slow", False, None),
    ("error", False, None),
])
def test_unknown_because(verdict, http_crl, expected) -> None:
    assert unknown_because(verdict, http_crl) == expected


@pytest.mark.parametrize(("verdict", "mutual", "one_sided_ms", "cut_only", "expected"), [
    ("slow", True, 30, False, "peer"),  # fast without this host's certificate: the peer cannot check ours
    ("slow", True, 4000, False, "this_host"),
    ("slow", False, 30, False, "this_host"),  # one-sided samples: nothing of ours was checked
    ("slow", True, True, False, "this_host"),  # a bool is not a time
    ("error", True, 30, True, "peer"),  # every failure cut by the time box, fast alone
    ("error", True, None, True, "this_host"),
    ("error", True, 30, False, None),
    ("pass", True, 30, False, None),
])
def test_slow_because(verdict, mutual, one_sided_ms, cut_only, expected) -> None:
    assert slow_because(verdict, mutual, one_sided_ms, 1000, cut_only=cut_only) == expected
