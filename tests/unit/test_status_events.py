"""The outbox rules (one event per status change, none for duplicates, revisions without gaps),
the event's shape, and the worker's batching publisher against fakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mms_tracker.domain import (
    Change,
    DeliveryReport,
    Send,
    Status,
    TrackingRecord,
    absorb,
    apply_expiry,
    apply_report,
    apply_send,
)
from mms_tracker.service.ports import PendingEntry, PublishFailed
from mms_tracker.service.status_events import (
    BATCH_EVENTS,
    StatusPublishing,
    event_id,
    event_source,
    status_event,
)

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
MID = "msg-1"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def report(status: str, received: float, details: str | None = None) -> DeliveryReport:
    return DeliveryReport(
        event_id=f"e-{status}-{received}",
        event_type="Microsoft.Communication.SMSDeliveryReportReceived",
        message_id=MID,
        delivery_status=status,
        delivery_status_details=details or f"{status}.",
        received_timestamp=at(received),
        tag="camp",
    )


def sent(accepted: bool = True) -> Send:
    return Send(MID, "+18335852071", "+18004567891", "camp", accepted, T0)


def changes(record: TrackingRecord) -> list[tuple[int, str | None, str]]:
    return [(c.revision, c.previous_status and c.previous_status.value, c.status.value) for c in record.outbox]


def test_the_first_status_is_revision_one_and_each_change_one_more() -> None:
    first = apply_send(None, sent(), at(0)).after
    delivered = apply_report(first, report("Delivered", 5), at(6)).after
    failed = apply_report(delivered, report("Failed", 9), at(10)).after
    assert changes(failed) == [(1, None, "Accepted"), (2, "Accepted", "Delivered"), (3, "Delivered", "Failed")]
    assert failed.status_revision == 3
    assert failed.outbox[-1].at == at(10) and failed.outbox[-1].completed_at == at(9)


def test_duplicates_and_changes_that_keep_the_status_add_no_event() -> None:
    first = apply_send(None, sent(), at(0)).after
    queued = apply_report(first, report("Queued", 2), at(3))
    assert queued.changed and queued.after.status_revision == 1  # changed, but still Accepted
    delivered = apply_report(queued.after, report("Delivered", 5), at(6)).after
    again = apply_report(delivered, report("Delivered", 5), at(7))
    older_final = apply_report(delivered, report("Failed", 1), at(8))  # received earlier: Delivered stays
    assert again.outcome == "duplicate" and again.after.status_revision == 2
    assert older_final.changed and older_final.after.status_revision == 2
    assert len(older_final.after.outbox) == 2


def test_a_report_before_the_send_is_revision_one_and_the_send_adds_none() -> None:
    delivered = apply_report(None, report("Delivered", 5), at(6)).after
    filled = apply_send(delivered, sent(), at(7)).after
    assert changes(filled) == [(1, None, "Delivered")]


def test_rejected_expired_and_a_late_report_are_each_a_change() -> None:
    rejected = apply_send(None, sent(accepted=False), at(0)).after
    assert changes(rejected) == [(1, None, "Rejected")]
    accepted = apply_send(None, sent(), at(0)).after
    expiry = apply_expiry(accepted, at(3600))
    assert expiry is not None
    late = apply_report(expiry.after, report("Delivered", 4000), at(4001)).after
    assert changes(late) == [(1, None, "Accepted"), (2, "Accepted", "Expired"), (3, "Expired", "Delivered")]


def test_published_events_leave_the_outbox_on_the_next_change() -> None:
    first = apply_send(None, sent(), at(0)).after
    acknowledged = replace(first, published_revision=1)
    assert acknowledged.pending == ()
    delivered = apply_report(acknowledged, report("Delivered", 5), at(6)).after
    assert changes(delivered) == [(2, "Accepted", "Delivered")]


def test_folding_two_copies_keeps_every_pending_event_once() -> None:
    tagged = apply_send(None, sent(), at(0)).after
    untagged = apply_report(None, replace(report("Delivered", 5), tag=None), at(6)).after
    merged = absorb(tagged, untagged, at(7)).after
    revisions = [c.revision for c in merged.outbox]
    assert revisions == sorted(set(revisions)) and merged.status is Status.DELIVERED
    assert merged.outbox[-1].status is Status.DELIVERED and merged.status_revision == revisions[-1]


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("report"), st.sampled_from(["Delivered", "Failed", "Sent", "Queued"]), st.integers(0, 40)),
        st.tuples(st.just("send"), st.booleans(), st.just(0)),
        st.tuples(st.just("expire"), st.just(""), st.just(0)),
        st.tuples(st.just("ack"), st.just(""), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_every_status_change_is_one_event_with_the_next_revision(steps: list[tuple[str, Any, int]]) -> None:
    """Whatever arrives in whatever order: the events a subscriber gets (published or pending)
    are exactly the record's status changes, revisions 1, 2, 3... without gaps."""
    record: TrackingRecord | None = None
    seen: dict[int, tuple[Status | None, Status]] = {}
    statuses: list[Status] = []
    for n, (kind, value, received) in enumerate(steps):
        now = at(1000 + n)
        change: Change | None
        if kind == "report":
            change = apply_report(record, report(value, received), now)
        elif kind == "send":
            change = apply_send(record, sent(value), now)
        elif kind == "expire":
            change = apply_expiry(record, now)
        else:
            change = (
                None
                if record is None
                else Change(record, replace(record, published_revision=record.status_revision), "applied")
            )
        if change is None:
            continue
        record = change.after
        if not statuses or statuses[-1] is not record.status:
            statuses.append(record.status)
        for c in record.pending:
            assert seen.setdefault(c.revision, (c.previous_status, c.status)) == (c.previous_status, c.status)
    if record is None:
        return
    assert record.status_revision == len(statuses)
    assert sorted(seen) == list(range(1, len(statuses) + 1))
    assert [seen[r][1] for r in sorted(seen)] == statuses
    assert [seen[r][0] for r in sorted(seen)] == [None, *statuses[:-1]]


def test_the_event_is_the_contracts_cloud_event() -> None:
    record = apply_report(apply_send(None, sent(), at(0)).after, report("Delivered", 5), at(6)).after
    event = status_event(record, record.outbox[-1], event_source(None))
    assert event == {
        "specversion": "1.0",
        "type": "MmsTracker.MessageStatusChanged",
        "source": "/mms-tracker/local",
        "subject": f"/messages/{MID}",
        "id": event_id(MID, 2),
        "time": "2026-11-27T09:00:06Z",
        "datacontenttype": "application/json",
        "data": {
            "messageId": MID,
            "to": "+18335852071",
            "from": "+18004567891",
            "tag": "camp",
            "status": "Delivered",
            "previousStatus": "Accepted",
            "revision": 2,
            "statusDetails": "Delivered.",
            "createdAt": "2026-11-27T09:00:00Z",
            "updatedAt": "2026-11-27T09:00:06Z",
            "completedAt": "2026-11-27T09:00:05Z",
        },
    }
    assert event_source("mms-func-abc") == "/mms-tracker/mms-func-abc"


def test_event_ids_are_stable_per_revision_and_distinct_across_them() -> None:
    assert event_id(MID, 2) == event_id(MID, 2)
    assert len({event_id(MID, 1), event_id(MID, 2), event_id("msg-2", 1)}) == 3
    assert uuid.UUID(event_id(MID, 1)).version == 5


class FakeOutbox:
    def __init__(self) -> None:
        self.acknowledged: dict[str, int] = {}

    async def get(self, message_id: str) -> TrackingRecord | None:
        return None

    async def pending_status_events(self, now: dt.datetime, limit: int) -> list[PendingEntry]:
        return []

    async def postpone_status_event(self, entry: PendingEntry, next_at: dt.datetime) -> None:
        pass

    async def acknowledge_status_events(self, accepted: Sequence[tuple[TrackingRecord, list[int]]]) -> None:
        for record, revisions in accepted:
            self.acknowledged[record.message_id] = max(revisions)

    async def drop_status_entry(self, message_id: str, revision: int) -> None:
        pass


class FakeTopic:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[list[Mapping[str, Any]]] = []

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishFailed("HttpResponseError 503")
        self.requests.append(list(events))


def created(message_id: str) -> TrackingRecord:
    return apply_send(None, replace(sent(), message_id=message_id), at(0)).after


async def test_the_worker_publishes_many_pending_events_in_batches() -> None:
    outbox, topic = FakeOutbox(), FakeTopic()
    publishing = StatusPublishing(outbox, topic, "/mms-tracker/local")
    for n in range(250):
        publishing.notify(created(f"m{n}"))
    await publishing.drain()
    assert [len(r) for r in topic.requests] == [BATCH_EVENTS, BATCH_EVENTS, 50]
    assert len(outbox.acknowledged) == 250


async def test_the_worker_keeps_its_queue_while_the_topic_fails_and_publishes_after() -> None:
    outbox, topic = FakeOutbox(), FakeTopic(failures=3)
    publishing = StatusPublishing(outbox, topic, "/mms-tracker/local", retry_base_seconds=0.001)
    record = created("m1")
    publishing.notify(record)
    delivered = apply_report(record, report("Delivered", 5), at(6)).after
    publishing.notify(delivered)  # a newer copy of the record replaces the queued one
    publishing.notify(record)  # an older copy arriving late does not
    await asyncio.wait_for(publishing.drain(), timeout=10)
    assert publishing.failures == 3
    assert [e["data"]["revision"] for r in topic.requests for e in r] == [1, 2]
    assert outbox.acknowledged == {"m1": 2}
