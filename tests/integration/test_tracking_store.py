"""Correlation against a real Azurite: concurrency, report-before-send, expiry, poison, tag index."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from mms_tracker.domain import DeliveryReport, Send, Status
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.tracking import expire_due, record_report, record_sends, retire_old
from mms_tracker.settings import Settings
from tests.support import nonzero, poison_rows

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)


def report(
    message_id: str, status: str, received: float, event_id: str | None = None, tag: str | None = "camp"
) -> DeliveryReport:
    return DeliveryReport(
        event_id=event_id or f"{message_id}-{status}-{received}",
        event_type="Microsoft.Communication.SMSDeliveryReportReceived",
        message_id=message_id,
        delivery_status=status,
        delivery_status_details=f"{status} ({received})",
        received_timestamp=T0 + dt.timedelta(seconds=received),
        to="+18335852071",
        from_="+18004567891",
        tag=tag,
    )


def send(message_id: str, tag: str = "camp", accepted: bool = True) -> Send:
    return Send(message_id, "+18335852071", "+18004567891", tag, accepted, T0)


async def test_twenty_concurrent_reports_converge_with_all_twenty_in_history(runtime: Settings) -> None:
    store = RUNTIME.store()
    await record_sends(store, [send("m20")], T0, WINDOW)
    statuses = ["Delivered", "Failed", "Sent", "Queued"]
    reports = [report("m20", statuses[i % 4], i) for i in range(20)]
    await asyncio.gather(*(record_report(store, r, T0) for r in reports))
    record = await store.get("m20")
    assert record is not None
    assert len(record.events) == 20
    assert record.status is Status.FAILED  # the report at 17 s (17 % 4 == 1) is the latest final
    assert record.revision == 21  # the send, then each of the 20 reports exactly once
    index = await store.list_tag("camp", None, 100, None)
    assert [(i.message_id, i.status) for i in index.items] == [("m20", record.status)]


async def test_redelivered_report_is_recorded_once(runtime: Settings) -> None:
    store = RUNTIME.store()
    first = await record_report(store, report("mdup", "Delivered", 1, event_id="e1"), T0)
    again = await record_report(store, report("mdup", "Delivered", 1, event_id="e1"), T0)
    other_id = await record_report(store, report("mdup", "Delivered", 1, event_id="e2"), T0)
    assert (first.outcome, again.outcome, other_id.outcome) == ("applied", "duplicate", "duplicate")
    record = await store.get("mdup")
    assert record is not None and len(record.events) == 1


async def test_report_before_send_then_send(runtime: Settings) -> None:
    store = RUNTIME.store()
    await record_report(store, report("early", "Delivered", 1, tag=None), T0)
    early = await store.get("early")
    assert early is not None and early.status is Status.DELIVERED and not early.sent
    await record_sends(store, [send("early", tag="late-tag")], T0, WINDOW)
    record = await store.get("early")
    assert record is not None
    assert (record.status, record.sent, record.tag) == (Status.DELIVERED, True, "late-tag")
    page = await store.list_tag("late-tag", None, 10, None)
    assert [(i.message_id, i.status) for i in page.items] == [("early", Status.DELIVERED)]
    assert await store.due(T0 + WINDOW) == []  # already final: nothing to expire


async def test_expiry_then_late_report(runtime: Settings) -> None:
    store = RUNTIME.store()
    await record_sends(store, [send("silent"), send("answered")], T0, WINDOW)
    await record_report(store, report("answered", "Delivered", 1), T0)
    assert await expire_due(store, T0 + WINDOW - dt.timedelta(minutes=1)) == 0
    assert await expire_due(store, T0 + WINDOW + dt.timedelta(minutes=1)) == 1
    assert await expire_due(store, T0 + WINDOW + dt.timedelta(minutes=6)) == 0  # idempotent
    silent = await store.get("silent")
    answered = await store.get("answered")
    assert silent is not None and silent.status is Status.EXPIRED
    assert answered is not None and answered.status is Status.DELIVERED
    await record_report(store, report("silent", "Failed", 5), T0 + WINDOW + dt.timedelta(hours=1))
    late = await store.get("silent")
    assert late is not None and late.status is Status.FAILED
    summary = nonzero(await store.tag_counts("camp"))
    assert summary == {"Failed": 1, "Delivered": 1}


async def test_poison_is_recorded_with_reason_and_capped_payload(runtime: Settings) -> None:
    store = RUNTIME.store()
    envelope = {
        "id": "bad/1",
        "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
        "data": {"x": "y" * 50_000},
    }
    await store.record_poison(envelope, "no messageId", T0)
    await store.record_poison(envelope, "no messageId", T0)  # a redelivery overwrites, not duplicates
    [entry] = await poison_rows(store, T0)
    assert entry["reason"] == "no messageId"
    assert entry["truncated"] is True and len(entry["payload"]) <= 16_000


@pytest.mark.parametrize(
    "event_id",
    ["msg-1", "a/b\\c#d?e'f%g\u0000\u001f\u007f", "\U0001f4e8" * 200 + "\ud83d", "x" * 100_000, ""],
)
async def test_two_poison_events_under_one_id_are_two_entries_and_a_redelivery_is_one(
    runtime: Settings, event_id: str
) -> None:
    """ACS reuses the messageId as the event id: two different events under it keep both reasons.
    Keys are bounded for any id (Azurite takes 512 characters at most) and hold none of ``/ \\ # ?``."""
    store = RUNTIME.store()
    first = {"id": event_id, "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "data": {}}
    second = {"id": event_id, "eventType": "Contoso.Unknown", "data": {"messageId": "m-1"}}
    for envelope, reason in ((first, "no messageId"), (second, "unknown event type"), (first, "no messageId")):
        await store.record_poison(envelope, reason, T0)
    await store.record_poison(dict(reversed(list(first.items()))), "no messageId", T0)  # same content, keys reordered
    entries = await poison_rows(store, T0)
    assert sorted(e["reason"] for e in entries) == ["no messageId", "unknown event type"]
    assert all(len(e["RowKey"]) <= 512 and not set(e["RowKey"]) & set("/\\#?") for e in entries)
    listed, token = await store.poison_page(T0.date(), 1, None)
    while token is not None:
        more, token = await store.poison_page(T0.date(), 1, token)
        listed += more
    assert sorted(e.reason for e in listed) == ["no messageId", "unknown event type"]


async def test_rejected_recipient_is_counted_in_its_tag(runtime: Settings) -> None:
    store = RUNTIME.store()
    await record_sends(store, [send("ok", "t2"), send("app-made-id", "t2", accepted=False)], T0, WINDOW)
    assert nonzero(await store.tag_counts("t2")) == {"Accepted": 1, "Rejected": 1}


async def test_index_matches_records_after_duplicates_race_new_reports(runtime: Settings) -> None:
    store = RUNTIME.store()
    messages = [f"race-{i}" for i in range(20)]
    await record_sends(store, [send(m, "race") for m in messages], T0, WINDOW)
    statuses = ["Sent", "Failed", "Delivered", "Queued", "Failed"]
    reports = [report(m, statuses[n], n * 7 % 5) for m in messages for n in range(5)]
    deliveries = [r for r in reports for _ in range(3)]  # every report delivered three times at once
    await asyncio.gather(*(record_report(store, r, T0) for r in deliveries))
    page = await store.list_tag("race", None, 1000, None)
    index = {item.message_id: item for item in page.items}
    assert sorted(index) == sorted(messages)
    for m in messages:
        record = await store.get(m)
        assert record is not None and len(record.events) == 5
        row = index[m]
        assert (row.status, row.status_details, row.completed_at, row.revision) == (
            record.status,
            record.status_details,
            record.completed_at,
            record.revision,
        ), m


async def test_retention_deletes_records_completed_long_ago_with_their_counts(runtime: Settings) -> None:
    store = RUNTIME.store()
    keep = dt.timedelta(days=90)
    ids = ["old-delivered", "old-failed", "still-accepted"]
    await record_sends(store, [send(m, "ret") for m in ids], T0, WINDOW, keep)
    await record_report(store, report("old-delivered", "Delivered", 1, tag="ret"), T0)
    await record_report(store, report("old-failed", "Failed", 2, tag="ret"), T0)
    assert nonzero(await store.tag_counts("ret")) == {"Accepted": 1, "Delivered": 1, "Failed": 1}
    before_due = T0 + WINDOW + keep - dt.timedelta(hours=1)
    assert await retire_old(store, before_due, keep) == 0
    assert await retire_old(store, T0 + WINDOW + keep + dt.timedelta(hours=1), keep) == 2
    assert nonzero(await store.tag_counts("ret")) == {"Accepted": 1}
    assert await store.get("old-delivered") is None and await store.get("still-accepted") is not None
    assert [r.message_id for r in (await store.list_tag("ret", None, 10, None)).items] == ["still-accepted"]
    later = T0 + WINDOW + keep + dt.timedelta(days=1, hours=2)
    assert await retire_old(store, later, keep) == 0  # not final: looked at again, never deleted
    assert await store.get("still-accepted") is not None
