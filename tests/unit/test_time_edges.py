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
from mms_tracker.domain import Send, TrackingRecord, apply_expiry, apply_report, apply_send
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
