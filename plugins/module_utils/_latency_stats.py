# PRIVATE to the crlfix.windows collection; may change without notice.
"""Summarise TLS handshake timings, judge a peer against a latency threshold and say whose state the verdict is.

Pure functions over integers (milliseconds), so the role and the tests can use
them without a host. The percentile method is **nearest-rank** (the smallest
sample such that at least p % of the samples are less than or equal to it;
NIST/Wikipedia "nearest-rank method"): it always returns one of the measured
values, never an interpolation, which is what an admin comparing the result
with a single slow handshake expects. The median is the ordinary median (the
mean of the two middle values for an even count).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import typing as t

# Verdicts, most severe first: a peer gets the first one that applies.
VERDICT_ERROR = "error"
VERDICT_REVOCATION_UNKNOWN = "revocation_unknown"
VERDICT_SLOW = "slow"
VERDICT_PASS = "pass"
VERDICTS: tuple[str, ...] = (VERDICT_ERROR, VERDICT_REVOCATION_UNKNOWN, VERDICT_SLOW, VERDICT_PASS)

# X509ChainStatusFlags names (Microsoft Learn, "X509ChainStatusFlags Enum") that mean
# CryptoAPI could not learn whether a certificate is revoked: the outage this
# collection exists for (CRL download failed or timed out).
REVOCATION_UNKNOWN_FLAGS: frozenset[str] = frozenset({"RevocationStatusUnknown", "OfflineRevocation"})


@dataclasses.dataclass(frozen=True)
class LatencySummary:
    """min/median/p95/max of the successful samples, in milliseconds."""

    count: int
    min_ms: int
    median_ms: float | int
    p95_ms: int
    max_ms: int

    def as_dict(self) -> dict[str, t.Any]:
        return {"min_ms": self.min_ms, "median_ms": self.median_ms, "p95_ms": self.p95_ms, "max_ms": self.max_ms}


EMPTY_SUMMARY: dict[str, t.Any] = {"min_ms": None, "median_ms": None, "p95_ms": None, "max_ms": None}


def nearest_rank(values: t.Sequence[int | float], percentile: float) -> int | float:
    """Return the ``percentile`` (0 < p <= 100) of ``values`` by the nearest-rank method.

    rank = ceil(p / 100 * n), 1-based, over the sorted values. Examples: the
    p95 of 3 samples is the largest (rank 3); of 20 samples the 19th; of 100
    samples the 95th.

    Raises:
        ValueError: no values, or a percentile outside (0, 100].
    """
    if not values:
        raise ValueError("nearest_rank: no values")
    if not 0 < percentile <= 100:
        raise ValueError(f"nearest_rank: percentile must be in (0, 100], got {percentile!r}")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def _whole(value: float | int) -> float | int:
    """Keep whole numbers as int so results read ``12`` rather than ``12.0``."""
    return int(value) if float(value).is_integer() else value


def summarize(samples_ms: t.Iterable[int | float | None]) -> LatencySummary | None:
    """Summarise the non-null samples; ``None`` when no sample succeeded."""
    values = [v for v in samples_ms if v is not None]
    if not values:
        return None
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"samples_ms: expected non-negative numbers, got {value!r}")
    return LatencySummary(
        count=len(values),
        min_ms=_whole(min(values)),
        median_ms=_whole(statistics.median(values)),
        p95_ms=_whole(nearest_rank(values, 95)),
        max_ms=_whole(max(values)),
    )


def is_revocation_unknown(chain_status: t.Iterable[str]) -> bool:
    """True when the chain status names say revocation could not be checked."""
    return any(name in REVOCATION_UNKNOWN_FLAGS for name in chain_status)


def latency_verdict(
    *, summary: LatencySummary | None, failed_samples: int, revocation_unknown: bool, max_handshake_ms: int
) -> str:
    """Judge one peer.

    - ``error``: at least one sample failed to connect or to complete the
      handshake (or no sample ran at all);
    - ``revocation_unknown``: every handshake completed, but CryptoAPI reported
      RevocationStatusUnknown or OfflineRevocation on some sample: the CRL could
      not be fetched, which is the outage even when the handshake was fast
      (a cached failure);
    - ``slow``: the slowest handshake took longer than ``max_handshake_ms``
      (the worst sample counts, because the outage shows as one slow handshake
      per CRL refresh, not as a slow average);
    - ``pass``: none of the above.
    """
    if failed_samples or summary is None:
        return VERDICT_ERROR
    if revocation_unknown:
        return VERDICT_REVOCATION_UNKNOWN
    if summary.max_ms > max_handshake_ms:
        return VERDICT_SLOW
    return VERDICT_PASS


def slow_because(verdict: str, mutual: bool, one_sided_ms: t.Any, max_handshake_ms: int,
                 cut_only: bool = False) -> str | None:
    """Whose revocation work made a slow peer slow: ``peer`` when the handshake without this host's certificate was
    fast (the peer cannot check our certificate: its own state is broken), else ``this_host``; None when not slow.

    A peer whose every failed sample the audit's time box cut (``cut_only``) was slow too, for as long as the box
    lasted: the one-sided handshake, made first, says whose work it was."""
    fast_alone = (isinstance(one_sided_ms, int) and not isinstance(one_sided_ms, bool)
                  and one_sided_ms <= max_handshake_ms)
    if verdict == VERDICT_ERROR and cut_only:
        return "peer" if fast_alone else "this_host"
    if verdict != VERDICT_SLOW:
        return None
    return "peer" if mutual and fast_alone else "this_host"


def unknown_because(verdict: str, http_crl: bool | None) -> str | None:
    """Whose state left a ``revocation_unknown`` peer unknown; None for another verdict.

    ``peer_certificate`` when the peer's certificate names no http or https CRL location (``http_crl`` false): with
    LDAP locations only, no host outside the issuer's domain can fetch its CRL (KB 884115), with none no host can,
    however right its proxy is. Else ``this_host``, also when ``http_crl`` is None (the certificate was not sent or
    could not be read: nothing shows it is the peer's). Only the end-entity certificate is read: an intermediate
    CA's LDAP-only CRL counts as this host's.
    """
    if verdict != VERDICT_REVOCATION_UNKNOWN:
        return None
    return "peer_certificate" if http_crl is False else "this_host"


__all__ = [
    "EMPTY_SUMMARY",
    "REVOCATION_UNKNOWN_FLAGS",
    "VERDICTS",
    "VERDICT_ERROR",
    "VERDICT_PASS",
    "VERDICT_REVOCATION_UNKNOWN",
    "VERDICT_SLOW",
    "LatencySummary",
    "is_revocation_unknown",
    "latency_verdict",
    "nearest_rank",
    "slow_because",
    "summarize",
    "unknown_because",
]
