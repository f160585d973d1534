"""Delivery statistics kept in a shard's counters: what one record counts for, and what the sums say.

A record counts once under its status; a Delivered record also counts once in the latency bucket
of ``completedAt - createdAt``; a Failed record also counts once under its ``statusDetails`` (the
failure reason). The counters move by :func:`counter_delta` (what the record counts for after,
minus before) in the transaction that writes the record, so every sum equals a recount of the
records, however ``createdAt`` or the deciding report moves, and whatever retention deletes.
Percentiles are bucket-accurate: the upper edge of the bucket the percentile falls in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .record import Status, TrackingRecord

# Upper edges of the latency buckets, in seconds; a last bucket holds everything slower.
LATENCY_BOUNDS: tuple[int, ...] = (
    1, 2, 3, 5, 10, 15, 30, 45, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200,
)  # fmt: skip
LATENCY_KEY = "L{:02d}"  # a counter key per bucket, a valid table property name
REASON_KEY = "reason:"  # a counter key per failure reason (stored together as JSON by the adapter)
MAX_REASON_CHARS = 200  # a reason counts under its first 200 characters
NO_DETAILS = "(no details)"
TOP_REASONS = 20


def latency_bucket(seconds: float) -> int:
    """The index of the bucket ``seconds`` falls in (the last, open bucket past every bound)."""
    for index, bound in enumerate(LATENCY_BOUNDS):
        if seconds <= bound:
            return index
    return len(LATENCY_BOUNDS)


def reason_of(details: str | None) -> str:
    return (details or NO_DETAILS)[:MAX_REASON_CHARS]


def contribution(record: TrackingRecord | None) -> dict[str, int]:
    """What ``record`` counts for in its shard's counters."""
    if record is None:
        return {}
    counts = {record.status.value: 1}
    if record.status is Status.DELIVERED and record.completed_at is not None:
        seconds = max(0.0, (record.completed_at - record.created_at).total_seconds())
        counts[LATENCY_KEY.format(latency_bucket(seconds))] = 1
    if record.status is Status.FAILED:
        counts[REASON_KEY + reason_of(record.status_details)] = 1
    return counts


def counter_delta(before: TrackingRecord | None, after: TrackingRecord | None) -> dict[str, int]:
    """How the counters move when ``before`` becomes ``after`` (None: no record); empty when they don't."""
    delta = contribution(after)
    for key, n in contribution(before).items():
        delta[key] = delta.get(key, 0) - n
    return {key: n for key, n in delta.items() if n}


@dataclass(frozen=True)
class Latency:
    """Bucket-accurate percentiles of send-to-final over Delivered messages (None with no message)."""

    p50_seconds: float | None
    p90_seconds: float | None
    p99_seconds: float | None
    count: int
    histogram: tuple[int, ...]  # messages per bucket of LATENCY_BOUNDS, then the open bucket


def latency_of(counters: Mapping[str, int]) -> Latency:
    histogram = tuple(max(0, int(counters.get(LATENCY_KEY.format(i), 0))) for i in range(len(LATENCY_BOUNDS) + 1))
    count = sum(histogram)

    def percentile(p: float) -> float | None:
        if count == 0:
            return None
        rank = max(1, math.ceil(p * count))
        seen = 0
        for index, n in enumerate(histogram):
            seen += n
            if seen >= rank:
                return float(LATENCY_BOUNDS[min(index, len(LATENCY_BOUNDS) - 1)])
        return float(LATENCY_BOUNDS[-1])  # pragma: no cover  # the histogram sums to count

    return Latency(percentile(0.5), percentile(0.9), percentile(0.99), count, histogram)


def failure_reasons(counters: Mapping[str, int], top: int = TOP_REASONS) -> dict[str, int]:
    """The ``top`` failure reasons by count (ties by reason), most frequent first."""
    reasons = [(key[len(REASON_KEY) :], n) for key, n in counters.items() if key.startswith(REASON_KEY) and n > 0]
    reasons.sort(key=lambda item: (-item[1], item[0]))
    return dict(reasons[:top])
