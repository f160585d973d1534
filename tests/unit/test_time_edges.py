"""Times at the calendar's edges, without I/O (issue 25): no reported or stored time, from 0001-01-01
to 9999-12-31, breaks a rule, a record's encoding, its API shape, or a schedule computed from it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mms_tracker.adapters.tables.encoding import decode_record, encode_record
from mms_tracker.api.models import MessageRecord
from mms_tracker.domain import (
    DEFAULT_MAX_FUTURE_SKEW,
    DeliveryReport,
    Send,
    Status,
    TrackingRecord,
    apply_expiry,
    apply_report,
    apply_send,
    received_ahead,
    ticks,
)
from mms_tracker.domain.reports import PoisonEvent, parse_envelope
from mms_tracker.domain.statistics import contribution
from mms_tracker.domain.timestamps import shifted
from mms_tracker.service.ports import PendingEntry, PublishFailed
from mms_tracker.service.status_events import retry_pending
from tests.support import reported_instants

FIRST = dt.datetime.min.replace(tzinfo=dt.UTC)
LAST = dt.datetime.max.replace(tzinfo=dt.UTC)
ANY_TIME = st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max, timezones=st.just(dt.UTC))
ANY_DELTA = st.timedeltas(min_value=dt.timedelta.min, max_value=dt.timedelta.max)
MID = "msg-1"


@settings(max_examples=200, deadline=None)
@given(ANY_TIME, ANY_DELTA)
@example(LAST, dt.timedelta(days=90))
@example(FIRST, -dt.timedelta(days=30))
@example(LAST, dt.timedelta(0))
def test_a_shifted_time_is_exact_inside_the_calendar_and_saturates_at_its_ends(
    moment: dt.datetime, delta: dt.timedelta
) -> None:
    result = shifted(moment, delta)
    try:
        assert result == moment + delta
    except OverflowError:
        assert result == (LAST if delta > dt.timedelta(0) else FIRST)
    assert result.tzinfo is moment.tzinfo


def event(status: str, received: str) -> dict[str, Any]:
    return {
        "id": MID,
        "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
        "data": {"messageId": MID, "deliveryStatus": status, "receivedTimestamp": received, "tag": "camp"},
    }


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["Delivered", "Failed", "Sent"]), reported_instants()), min_size=1, max_size=4),
    ANY_TIME,
    st.booleans(),
)
@example([("Failed", "9999-12-31T23:59:59.9999999Z"), ("Delivered", "0001-01-01T00:00:00Z")], LAST, True)
@example([("Delivered", "0001-01-01T00:00:00Z")], FIRST, False)
def test_any_reported_time_makes_a_record_that_is_stored_read_and_shown(
    reports: list[tuple[str, str]], clock: dt.datetime, send_first: bool
) -> None:
    """Whatever the report's time and the recording clock, the rules decide, the counters can be
    computed, the record survives its table encoding and the API shows it; a time outside the
    calendar once in UTC is poison, never an exception."""
    record: TrackingRecord | None = None
    send = Send(MID, "+18335852071", "+18004567891", "camp", True, clock)
    if send_first:
        record = apply_send(record, send, clock).after
    for status, received in reports:
        try:
            report = parse_envelope(event(status, received))
        except PoisonEvent:
            continue
        record = apply_report(record, report, clock).after
    if record is None:
        return
    record = apply_send(record, send, clock).after
    expired = apply_expiry(record, clock)
    for kept in (record, expired.after if expired else record):
        contribution(kept)
        assert decode_record(encode_record(kept, "camp|00")) == kept
        MessageRecord.of(kept).model_dump(mode="json")


class StuckOutbox:
    """One event pending since ``since`` after ``attempts`` failed publishes (as stored)."""

    def __init__(self, record: TrackingRecord, since: dt.datetime, attempts: int) -> None:
        self.record = record
        self.entry = PendingEntry(record.message_id, 1, since, attempts)
        self.postponed: list[dt.datetime] = []

    async def get(self, message_id: str) -> TrackingRecord | None:
        return self.record

    async def pending_status_events(self, now: dt.datetime, limit: int) -> list[PendingEntry]:
        return [self.entry]

    async def postpone_status_event(self, entry: PendingEntry, next_at: dt.datetime) -> None:
        self.postponed.append(next_at)

    async def acknowledge_status_events(self, accepted: Sequence[tuple[TrackingRecord, list[int]]]) -> None:
        raise AssertionError("the topic accepted nothing")

    async def drop_status_entry(self, message_id: str, revision: int) -> None:
        raise AssertionError("the event is still pending")


class DownTopic:
    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        raise PublishFailed("HttpResponseError 503")


@settings(max_examples=60, deadline=None)
@given(ANY_TIME, ANY_TIME, st.integers(0, 2**40))
@example(LAST, LAST, 10_000)
@example(FIRST, LAST, 45)
async def test_no_stored_time_or_attempt_count_makes_the_status_event_retry_timer_fail(
    since: dt.datetime, now: dt.datetime, attempts: int
) -> None:
    """A topic down for days counts thousands of attempts; the backoff stays an hour at most, and
    the next attempt's time saturates at 9999-12-31 instead of overflowing."""
    record = apply_send(None, Send(MID, "+18335852071", "+18004567891", "camp", True, since), since).after
    outbox = StuckOutbox(record, since, attempts)
    run = await retry_pending(outbox, DownTopic(), "/mms-tracker/local", now, dt.timedelta(minutes=60))
    assert run.failed == 1
    [next_at] = outbox.postponed
    pause = min(dt.timedelta(minutes=2 ** min(attempts, 6)), dt.timedelta(hours=1))  # one minute, doubling, to an hour
    assert next_at == shifted(now, pause)


# --- future-dated reports: REPORT_MAX_FUTURE_SKEW_SECONDS ---------------------------------------

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
SKEW = DEFAULT_MAX_FUTURE_SKEW  # 300 s


def dated(status: str, received: dt.datetime, extra: int = 0, details: str | None = None) -> DeliveryReport:
    return DeliveryReport(
        event_id=MID,  # ACS's samples reuse the messageId as the event id
        event_type="Microsoft.Communication.SMSDeliveryReportReceived",
        message_id=MID,
        delivery_status=status,
        delivery_status_details=details or f"{status} at {received.isoformat()}",
        received_timestamp=received,
        received_extra_ticks=extra,
        tag="camp",
    )


def sent_at(moment: dt.datetime) -> TrackingRecord:
    return apply_send(None, Send(MID, "+18335852071", "+18004567891", "camp", True, moment), moment).after


def test_a_failed_report_dated_2099_does_not_outrank_the_real_delivery_that_follows() -> None:
    """The issue's probe: a Failed dated 2099 used to beat every real report, and completedAt said 2099."""
    record = sent_at(T0)
    future = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    record = apply_report(record, dated("Failed", future), T0 + dt.timedelta(seconds=10)).after
    assert record.status is Status.FAILED and record.completed_at == T0 + dt.timedelta(seconds=10)
    real = dated("Delivered", T0 + dt.timedelta(seconds=50))
    record = apply_report(record, real, T0 + dt.timedelta(seconds=60)).after
    assert record.status is Status.DELIVERED
    assert record.completed_at == T0 + dt.timedelta(seconds=50)
    ahead = [e for e in record.events if e.delivery_status == "Failed"]
    assert [(e.received_timestamp, e.received_ahead) for e in ahead] == [(future, True)]  # kept as it came
    shown = MessageRecord.of(record).model_dump(mode="json", by_alias=True)
    assert {e["receivedTimestamp"] for e in shown["events"]} >= {"2099-01-01T00:00:00Z"}


def test_a_delivered_report_from_a_broken_clock_is_still_a_delivery_completed_when_recorded() -> None:
    recorded = T0 + dt.timedelta(minutes=1)
    record = apply_report(sent_at(T0), dated("Delivered", LAST, 9), recorded).after
    assert (record.status, record.completed_at) == (Status.DELIVERED, recorded)
    contribution(record)  # the latency bucket is send to recording: one minute
    assert decode_record(encode_record(record, "camp|00")) == record  # the decision is kept with the report


def test_the_skew_is_exact_to_the_100_ns() -> None:
    """Up to the skew the report's time is taken as given; one tick past it, the recording time."""
    edge = T0 + SKEW
    assert not received_ahead(dated("Delivered", edge), T0, SKEW)
    assert received_ahead(dated("Delivered", edge, extra=1), T0, SKEW)
    assert received_ahead(dated("Delivered", T0, extra=1), T0, dt.timedelta(0))
    assert not received_ahead(dated("Delivered", FIRST), LAST, dt.timedelta(0))
    assert not received_ahead(dated("Delivered", LAST, extra=9), LAST, SKEW)  # no overflow at the end
    record = apply_report(sent_at(T0), dated("Failed", edge), T0).after
    assert record.completed_at == edge


def test_a_clamped_report_delivered_again_later_stays_one_report_and_keeps_its_order() -> None:
    """Event Grid may redeliver a report once its date has come: it is the same report, decided once."""
    future = T0 + dt.timedelta(hours=2)
    once = apply_report(sent_at(T0), dated("Failed", future), T0).after
    again = apply_report(once, dated("Failed", future), future + dt.timedelta(minutes=1))
    assert again.outcome == "duplicate" and again.after == once


def test_a_far_past_report_pins_nothing() -> None:
    """0001-01-01 is taken as given: it is the oldest report there can be, and any later final outranks it."""
    record = apply_report(sent_at(T0), dated("Delivered", FIRST), T0).after
    assert (record.status, record.completed_at) == (Status.DELIVERED, FIRST)
    record = apply_report(record, dated("Failed", T0 + dt.timedelta(seconds=5)), T0 + dt.timedelta(seconds=6)).after
    assert record.status is Status.FAILED


OFFSETS = st.one_of(
    st.integers(-86_400, 86_400),  # seconds from the recording time: late reports, and clocks ahead
    st.sampled_from([299, 300, 301, 10**9]),
)
SKEWED = st.lists(
    st.tuples(
        st.sampled_from(["Delivered", "Failed", "Sent"]),
        st.integers(0, 3_600),  # when the report is recorded, in seconds after the send
        OFFSETS,
        st.integers(0, 9),  # the seventh fractional digit
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(SKEWED, st.sampled_from([dt.timedelta(0), SKEW, dt.timedelta(days=1)]), st.data())
def test_a_report_dated_past_the_skew_never_outranks_what_follows_in_any_order(
    specs: list[tuple[str, int, int, int]], skew: dt.timedelta, data: st.DataObject
) -> None:
    """Reports each recorded at its own time, applied in any order and some twice: the record is the
    same; completedAt is never more than the skew past the latest recording; and the winner is the
    latest final by its time as given, or by its recording time where it lay past the skew."""

    def recorded(seconds: int) -> dt.datetime:
        return T0 + dt.timedelta(seconds=seconds)

    def received(at: int, offset: int) -> dt.datetime:
        return shifted(recorded(at), dt.timedelta(seconds=offset))

    items = [(dated(s, received(at, off), x, f"{s} {i}"), recorded(at)) for i, (s, at, off, x) in enumerate(specs)]
    order = data.draw(st.permutations(items + data.draw(st.lists(st.sampled_from(items), max_size=3))))
    outcomes = []
    for sequence in (items, order):
        record = sent_at(T0)
        for report, now in sequence:
            record = apply_report(record, report, now, skew).after
        outcomes.append(record)
    first, other = outcomes
    assert (first.status, first.status_details, first.completed_at) == (
        other.status,
        other.status_details,
        other.completed_at,
    )
    assert {e.fingerprint for e in first.events} == {e.fingerprint for e in other.events}
    finals = [(r, now) for r, now in items if r.status is not None]
    if not finals:
        assert first.status is Status.ACCEPTED
        return

    def effective(item: tuple[DeliveryReport, dt.datetime]) -> tuple[int, str]:
        report, now = item
        ahead = report.received_ticks is not None and report.received_ticks > ticks(now + skew, 0)
        return (ticks(now, 0) if ahead else report.received_ticks) or 0, report.fingerprint

    winner, _ = max(finals, key=effective)
    assert (first.status, first.status_details) == (winner.status, winner.delivery_status_details)
    assert first.completed_at is not None
    assert first.completed_at <= max(now for _, now in items) + skew
