"""Delivery statistics: what a record counts for, the percentiles the buckets give, the failure
reasons, their storage in the counter row, and the CSV cells a spreadsheet would run."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import replace

from mms_tracker.adapters.tables.encoding import OTHER_REASONS, counter_entity, counts_of
from mms_tracker.api.export import CSV_HEADER, csv_rows, defused
from mms_tracker.domain import Status, TrackingRecord
from mms_tracker.domain.statistics import (
    LATENCY_BOUNDS,
    contribution,
    counter_delta,
    failure_reasons,
    latency_bucket,
    latency_of,
)

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def record(status: Status, seconds: float | None = None, details: str | None = None) -> TrackingRecord:
    completed = None if seconds is None else T0 + dt.timedelta(seconds=seconds)
    return TrackingRecord("m", status, T0, T0, status_details=details, completed_at=completed)


def test_a_latency_falls_in_the_first_bucket_whose_edge_it_does_not_pass() -> None:
    assert [latency_bucket(s) for s in (0, 1, 1.001, 2, 59.9, 60, 61)] == [0, 0, 1, 1, 8, 8, 9]
    assert latency_bucket(LATENCY_BOUNDS[-1] + 1) == len(LATENCY_BOUNDS)  # the open bucket


def test_a_record_counts_its_status_and_its_latency_or_its_reason() -> None:
    assert contribution(None) == {}
    assert contribution(record(Status.ACCEPTED)) == {"Accepted": 1}
    assert contribution(record(Status.DELIVERED, 7)) == {"Delivered": 1, "L04": 1}  # 5 < 7 <= 10
    assert contribution(record(Status.DELIVERED, -3)) == {"Delivered": 1, "L00": 1}  # a clock skew counts as 0 s
    assert contribution(record(Status.FAILED, 7, "Carrier said no")) == {"Failed": 1, "reason:Carrier said no": 1}
    assert contribution(record(Status.FAILED, 7)) == {"Failed": 1, "reason:(no details)": 1}
    assert contribution(record(Status.EXPIRED, 7, "late")) == {"Expired": 1}


def test_the_delta_moves_a_bucket_when_created_at_moves_earlier_and_is_empty_when_nothing_counts_differently() -> None:
    delivered = record(Status.DELIVERED, 7)
    earlier = replace(delivered, created_at=T0 - dt.timedelta(seconds=100))  # the send came after the report
    assert counter_delta(delivered, earlier) == {"L04": -1, "L09": 1}
    assert counter_delta(delivered, replace(delivered, updated_at=T0 + dt.timedelta(days=1))) == {}
    assert counter_delta(delivered, None) == {"Delivered": -1, "L04": -1}  # retention counts it out
    failed = record(Status.FAILED, 9, "a")
    assert counter_delta(failed, replace(failed, status_details="b")) == {"reason:a": -1, "reason:b": 1}


def test_percentiles_are_the_upper_edge_of_the_bucket_they_fall_in() -> None:
    counters = {"L00": 50, "L04": 40, "L09": 9, "L18": 1}
    latency = latency_of(counters)
    assert (latency.p50_seconds, latency.p90_seconds, latency.p99_seconds, latency.count) == (1, 10, 120, 100)
    assert latency.histogram[18] == 1
    slow = latency_of({"L18": 1})
    assert slow.p50_seconds == LATENCY_BOUNDS[-1]  # the open bucket reports its lower edge
    assert latency_of({}).p50_seconds is None and latency_of({}).count == 0


def test_failure_reasons_are_the_top_20_most_frequent_first() -> None:
    counters = {f"reason:r{i:02d}": i for i in range(1, 26)} | {"Failed": 325, "reason:gone": 0}
    top = failure_reasons(counters)
    assert list(top) == [f"r{i:02d}" for i in range(25, 5, -1)]


def test_the_counter_row_keeps_every_counter_and_folds_reasons_past_its_size() -> None:
    counts = {"Accepted": 2, "Delivered": 3, "L03": 3, 'reason:a,b "quoted"': 4, "reason:x": 1}
    assert {k: v for k, v in counts_of(counter_entity("p", counts)).items() if v} == counts
    many = {f"reason:{i:04d}" + "x" * 190: 1 for i in range(200)} | {"reason:big": 500}
    stored = counts_of(counter_entity("p", many))
    reasons = {k: n for k, n in stored.items() if k.startswith("reason:")}
    assert sum(reasons.values()) == 700  # folded, never dropped
    assert reasons["reason:big"] == 500 and reasons["reason:" + OTHER_REASONS] > 0
    decremented = counts_of(counter_entity("p", stored | {"reason:0000" + "x" * 190: -1}))
    assert sum(n for k, n in decremented.items() if k.startswith("reason:")) == 699


def test_cells_a_spreadsheet_would_run_are_escaped_and_numbers_kept_whole() -> None:
    assert [defused(v) for v in ("=1+1", "+cmd|' /C calc'!A0", "-2", "@SUM(A1)", "\tx", "ok", "+18335852071")] == [
        "'=1+1",
        "'+cmd|' /C calc'!A0",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        "+18335852071",
    ]


def test_csv_rows_are_rfc_4180() -> None:
    r = replace(record(Status.FAILED, 5, 'a "b", c\nd'), to="+18335852071", from_="+18004567891", tag="t")
    text = (CSV_HEADER + csv_rows([r])).decode()
    assert text.startswith("messageId,to,from,tag,status,statusDetails,createdAt,updatedAt,completedAt\r\n")
    assert '"a ""b"", c\nd"' in text and text.endswith("\r\n")
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert row["statusDetails"] == 'a "b", c\nd' and row["completedAt"] == "2026-11-27T09:00:05Z"
