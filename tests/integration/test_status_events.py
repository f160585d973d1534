"""The status-event outbox against a real Azurite, with a topic that fails on schedule."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from mms_tracker.adapters.tables.encoding import shard_of
from mms_tracker.domain import DeliveryReport, Send, Status
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.ports import PublishFailed
from mms_tracker.service.status_events import retry_pending
from mms_tracker.service.tracking import expire_due, record_report, record_sends
from mms_tracker.settings import Settings
from tests.support import Azurite, app_environment, poll_async

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
SOURCE = "/mms-tracker/local"


class ScheduledTopic:
    """A topic that refuses publishes by a schedule (True: fail), then accepts; it keeps what it took."""

    def __init__(self, schedule: Sequence[bool] = ()) -> None:
        self.schedule = list(schedule)
        self.accepted: list[Mapping[str, Any]] = []
        self.calls = 0
        self.down = False

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.calls += 1
        failing = self.schedule.pop(0) if self.schedule else self.down
        if failing:
            raise PublishFailed("HttpResponseError 503")
        self.accepted.extend(events)

    def revisions(self) -> dict[str, list[int]]:
        found: dict[str, set[int]] = defaultdict(set)
        for event in self.accepted:
            found[event["data"]["messageId"]].add(event["data"]["revision"])
        return {m: sorted(r) for m, r in found.items()}


@pytest.fixture
async def topic(azurite: Azurite) -> AsyncIterator[ScheduledTopic]:
    topic = ScheduledTopic()
    env = app_environment(azurite.connection_string, STATUS_EVENTS_ENDPOINT="http://127.0.0.1:9/api/events")
    RUNTIME.configure(Settings.from_environment(env), status_publisher=topic)
    yield topic
    await RUNTIME.aclose()


def report(message_id: str, status: str, received: float) -> DeliveryReport:
    return DeliveryReport(
        event_id=f"{message_id}-{status}-{received}",
        event_type="Microsoft.Communication.SMSDeliveryReportReceived",
        message_id=message_id,
        delivery_status=status,
        delivery_status_details=f"{status} ({received})",
        received_timestamp=T0 + dt.timedelta(seconds=received),
        to="+18335852071",
        from_="+18004567891",
        tag="camp",
    )


def send(message_id: str) -> Send:
    return Send(message_id, "+18335852071", "+18004567891", "camp", True, T0)


async def drained() -> None:
    publishing = RUNTIME.status_publishing()
    assert publishing is not None
    await publishing.drain()


async def test_a_failing_topic_neither_fails_ingest_nor_loses_a_change(topic: ScheduledTopic) -> None:
    topic.schedule = [True, True]  # the first two publishes fail; the worker backs off and tries again
    store = RUNTIME.store()
    await record_sends(store, [send("m1"), send("m2")], T0, WINDOW)
    delivered = await record_report(store, report("m1", "Delivered", 5), T0)
    assert delivered.after.status is Status.DELIVERED  # recorded while the topic refuses
    await record_report(store, report("m1", "Failed", 9), T0)  # a later final: a third status
    await record_report(store, report("m1", "Failed", 9), T0)  # redelivered: no change, no event
    await record_report(store, report("m2", "Sent", 3), T0)  # not final: the status stays, no event

    async def published() -> dict[str, list[int]] | None:
        revisions = topic.revisions()
        return revisions if revisions.get("m1") == [1, 2, 3] and revisions.get("m2") == [1] else None

    assert await poll_async(published, deadline_seconds=20) == {"m1": [1, 2, 3], "m2": [1]}
    await drained()
    m1 = await store.get("m1")
    assert m1 is not None and (m1.status_revision, m1.published_revision, m1.pending) == (3, 3, ())
    by_revision = {e["data"]["revision"]: e["data"] for e in topic.accepted if e["data"]["messageId"] == "m1"}
    assert [(d["previousStatus"], d["status"]) for _, d in sorted(by_revision.items())] == [
        (None, "Accepted"),
        ("Accepted", "Delivered"),
        ("Delivered", "Failed"),
    ]
    later = T0 + dt.timedelta(days=1)
    assert await store.pending_status_events(later, 100) == []  # every index row went with its event


async def test_the_timer_publishes_what_a_worker_could_not_and_counts_the_overdue(topic: ScheduledTopic) -> None:
    topic.down = True
    store = RUNTIME.store()
    await record_sends(store, [send(f"t{n}") for n in range(3)], T0, WINDOW)
    await record_report(store, report("t0", "Delivered", 5), T0)
    await poll_async(lambda: _async(topic.calls >= 1), deadline_seconds=10)
    publishing = RUNTIME.status_publishing()
    assert publishing is not None
    await publishing.close()  # the worker stops with its queue unpublished
    record = await store.get("t0")
    assert record is not None and [c.revision for c in record.pending] == [1, 2]

    early = await retry_pending(store, topic, SOURCE, T0, dt.timedelta(hours=1))
    assert (early.published, early.failed) == (0, 0)  # within the grace the worker has, the timer waits

    timer_topic = ScheduledTopic([True])
    failing = await retry_pending(store, timer_topic, SOURCE, T0 + dt.timedelta(minutes=2), dt.timedelta(hours=1))
    assert (failing.published, failing.failed, failing.overdue) == (0, 4, 0)
    soon = T0 + dt.timedelta(minutes=2, seconds=50)
    backed_off = await retry_pending(store, timer_topic, SOURCE, soon, dt.timedelta(hours=1))
    assert backed_off.published == 0  # the next attempt is a minute after the failure
    late = T0 + dt.timedelta(hours=2)
    run = await retry_pending(store, timer_topic, SOURCE, late, dt.timedelta(hours=1))
    assert (run.published, run.failed, run.overdue) == (4, 0, 4)
    assert timer_topic.revisions() == {"t0": [1, 2], "t1": [1], "t2": [1]}
    assert await store.pending_status_events(late + dt.timedelta(days=1), 100) == []
    record = await store.get("t0")
    assert record is not None and record.pending == ()


async def test_expiry_then_a_late_report_are_two_more_revisions(topic: ScheduledTopic) -> None:
    store = RUNTIME.store()
    await record_sends(store, [send("e1")], T0, dt.timedelta(hours=1))
    assert await expire_due(store, T0 + dt.timedelta(hours=2)) == 1
    await record_report(store, report("e1", "Delivered", 7200 + 60), T0 + dt.timedelta(hours=3))

    async def published() -> list[int] | None:
        return topic.revisions().get("e1") if len(topic.revisions().get("e1", [])) == 3 else None

    assert await poll_async(published, deadline_seconds=10) == [1, 2, 3]
    statuses = sorted((e["data"]["revision"], e["data"]["status"]) for e in topic.accepted)
    assert statuses == [(1, "Accepted"), (2, "Expired"), (3, "Delivered")]


async def test_without_a_topic_revisions_count_and_nothing_waits(azurite: Azurite) -> None:
    RUNTIME.configure(Settings.from_environment(app_environment(azurite.connection_string)))
    try:
        store = RUNTIME.store()
        assert RUNTIME.status_publisher() is None
        await record_sends(store, [send("n1")], T0, WINDOW)
        await record_report(store, report("n1", "Delivered", 5), T0)
        record = await store.get("n1")
        assert record is not None and (record.status_revision, record.pending) == (2, ())
        assert await store.pending_status_events(T0 + dt.timedelta(days=1), 100) == []
    finally:
        await RUNTIME.aclose()


async def _async(value: bool) -> bool:
    return value


async def test_acknowledging_a_partition_at_once_survives_a_record_that_is_gone(topic: ScheduledTopic) -> None:

    topic.down = True
    same_shard = [m for m in (f"s{n}" for n in range(200)) if shard_of(m) == shard_of("s0")][:3]
    store = RUNTIME.store()
    await record_sends(store, [send(m) for m in same_shard[:2]], T0, WINDOW)
    publishing = RUNTIME.status_publishing()
    assert publishing is not None
    await publishing.close()
    records = [await store.get(m) for m in same_shard[:2]]
    assert all(r is not None and r.pending for r in records)
    ghost = replace(records[0], message_id=same_shard[2])  # retired meanwhile: its merge is refused
    await store.acknowledge_status_events([(r, [1]) for r in [records[0], ghost, records[1]] if r is not None])
    for message_id in same_shard[:2]:
        record = await store.get(message_id)
        assert record is not None and (record.published_revision, record.pending) == (1, ())
    assert await store.pending_status_events(T0 + dt.timedelta(days=1), 100) == []
