"""Times at the calendar's edges against a real Azurite (issue 25): no reported or stored time,
from 0001-01-01 to 9999-12-31, makes a timer fail.

A report's ``receivedTimestamp`` comes from outside (a carrier's clock, .NET's ``DateTime.MaxValue``
``9999-12-31T23:59:59.9999999``, anyone holding the webhook key), and every schedule the app keeps
is computed from stored times: retention from ``completedAt``, expiry from the send, the outbox's
next attempt from the change. One ``OverflowError`` on one entry used to stop the retention timer
for good, since every run met the same entry first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mms_tracker.api.models import MessageRecord
from mms_tracker.domain import Change, Send, Status
from mms_tracker.domain.timestamps import shifted
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.ports import PublishFailed, SendIntent
from mms_tracker.service.reconciler import ReconcileDeps, reconcile_sends
from mms_tracker.service.status_events import retry_pending
from mms_tracker.service.tracking import expire_due, ingest_event, record_sends, retire_old
from mms_tracker.settings import Settings
from tests.support import Azurite, app_environment, reported_instants, serve_function_app

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
KEEP = dt.timedelta(days=1)
FIRST = dt.datetime.min.replace(tzinfo=dt.UTC)
LAST = dt.datetime.max.replace(tzinfo=dt.UTC)
REPORT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"


def envelope(message_id: str, status: str, received: str, event_id: str | None = None) -> dict[str, Any]:
    """An Event Grid delivery-report event as ACS sends it (tests/fixtures/sms_delivery_report.eventgrid.json)."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Communication/CommunicationServices/z",
        "subject": f"/phonenumber/18335852071/message/{message_id}",
        "eventType": REPORT_TYPE,
        "eventTime": "2026-11-27T09:00:00Z",
        "dataVersion": "1.0",
        "data": {
            "messageId": message_id,
            "from": "+18004567891",
            "to": "+18335852071",
            "deliveryStatus": status,
            "deliveryStatusDetails": f"{status} at {received}",
            "receivedTimestamp": received,
            "tag": "camp",
        },
    }


def send(message_id: str, at: dt.datetime = T0) -> Send:
    return Send(message_id, "+18335852071", "+18004567891", "camp", True, at)


async def test_a_record_completed_in_9999_does_not_stop_retention_of_the_others(runtime: Settings) -> None:
    """A record stored with ``completedAt`` 9999-12-31 (a report's time taken as it came) is looked at
    by retention like any other; the records beside it are retired on time."""
    store = RUNTIME.store()
    ids = ["old-delivered", "old-failed", "far"]
    await record_sends(store, [send(m) for m in ids], T0, WINDOW, KEEP)
    for m, status in (("old-delivered", "Delivered"), ("old-failed", "Failed")):
        await ingest_event(store, envelope(m, status, "2026-11-27T09:00:01Z"), T0)

    def completed_in_9999(record: Any) -> Change:
        after = replace(record, status=Status.FAILED, completed_at=LAST, revision=record.revision + 1)
        return Change(record, after, "applied")

    await store.apply("far", completed_in_9999, tag="camp")
    due = T0 + WINDOW + KEEP + dt.timedelta(hours=1)
    assert await retire_old(store, due, KEEP) == 2
    assert await store.get("old-delivered") is None and await store.get("old-failed") is None
    far = await store.get("far")
    assert far is not None and far.completed_at == LAST  # kept: it is not RETENTION_DAYS past its completion
    assert await retire_old(store, due + dt.timedelta(days=3), KEEP) == 0  # and the next runs go on


async def test_a_report_dated_9999_does_not_stop_retention_of_the_others(runtime: Settings) -> None:
    """``9999-12-31T23:59:59.9999999Z`` through ingest, as the issue's probe sent it: retention goes on."""
    store = RUNTIME.store()
    ids = ["old-1", "old-2", "far"]
    await record_sends(store, [send(m) for m in ids], T0, WINDOW, KEEP)
    await ingest_event(store, envelope("old-1", "Delivered", "2026-11-27T09:00:01Z"), T0)
    await ingest_event(store, envelope("old-2", "Failed", "2026-11-27T09:00:02Z"), T0)
    await ingest_event(store, envelope("far", "Failed", "9999-12-31T23:59:59.9999999Z"), T0)
    assert await retire_old(store, T0 + WINDOW + KEEP + dt.timedelta(hours=1), KEEP) >= 2
    assert await store.get("old-1") is None and await store.get("old-2") is None


async def test_poison_since_a_day_before_the_year_1000_lists_what_came_after(runtime: Settings) -> None:
    """Day keys are zero-padded (``strftime("%Y")`` is not, before the year 1000), so ``since=0999-01-01``
    sorts before every later day instead of after them."""
    store = RUNTIME.store()
    await store.record_poison({"id": "e1", "eventType": "x"}, "unknown event type", T0)
    entries, _ = await store.poison_page(dt.date(999, 1, 1), 10, None)
    assert [e.event_id for e in entries] == ["e1"]
    assert (await store.poison_page(dt.date(1, 1, 1), 10, None))[0] == entries


# --- records made by a report alone expire too -------------------------------------------------


async def test_a_record_made_by_a_non_final_report_alone_expires(runtime: Settings) -> None:
    """An id no send recorded: its record falls due for expiry the window after its first report was
    recorded (the app's clock: a report's own time may be 0001 or 9999), and a redelivery later on
    does not move it."""
    store = RUNTIME.store()
    cases = {
        "orphan": "2026-11-27T08:59:58Z",
        "orphan-past": "0001-01-01T00:00:00Z",
        "orphan-ahead": "9999-12-31T23:59:59.9999999Z",
    }
    for message_id, received in cases.items():
        await ingest_event(store, envelope(message_id, "Sent", received), T0, WINDOW + KEEP, expire_after=WINDOW)
    later = T0 + dt.timedelta(hours=5)
    again = envelope("orphan", "Sent", cases["orphan"])
    await ingest_event(store, again, later, WINDOW + KEEP, expire_after=WINDOW)
    await ingest_event(store, envelope("orphan", "Queued", "2026-11-27T10:00:00Z"), later, expire_after=WINDOW)
    assert await expire_due(store, T0 + WINDOW - dt.timedelta(minutes=1)) == 0
    assert await expire_due(store, T0 + WINDOW + dt.timedelta(minutes=1)) == 3
    for message_id in cases:
        record = await store.get(message_id)
        assert record is not None and record.status is Status.EXPIRED and not record.sent
    assert await expire_due(store, later + WINDOW + dt.timedelta(minutes=1)) == 0  # the later entry is a no-op
    assert await store.due(later + WINDOW) == [] and await store.due(T0 + WINDOW) == []


async def test_a_send_that_fills_in_a_report_made_record_leaves_expiry_whole(runtime: Settings) -> None:
    """The report comes first (two hours after the send began, its record write delayed: the reconciler
    writes it later, with the intent's time); each made an entry, in its own hour: the first due expires
    the record once, the other finds it expired, and no entry is left behind."""
    store = RUNTIME.store()
    reported = T0 + dt.timedelta(hours=2)
    await ingest_event(store, envelope("filled", "Sent", "2026-11-27T10:59:00Z"), reported, expire_after=WINDOW)
    await record_sends(store, [send("filled")], reported + dt.timedelta(minutes=1), WINDOW, KEEP)
    assert await expire_due(store, T0 + WINDOW - dt.timedelta(minutes=1)) == 0
    assert await expire_due(store, T0 + WINDOW + dt.timedelta(minutes=1)) == 1
    assert await expire_due(store, reported + WINDOW + dt.timedelta(minutes=1)) == 0
    record = await store.get("filled")
    assert record is not None and (record.status, record.sent, record.revision) == (Status.EXPIRED, True, 3)
    assert await store.due(T0 + WINDOW) == [] and await store.due(reported + WINDOW) == []
    await ingest_event(store, envelope("filled", "Delivered", "2026-11-27T11:00:00Z"), reported + WINDOW)
    record = await store.get("filled")
    assert record is not None and record.status is Status.DELIVERED  # a late real report still replaces Expired


# --- future-dated reports through the app (REPORT_MAX_FUTURE_SKEW_SECONDS) ------------------------

WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_delivery_report"
BATCH = "/api/events/delivery-reports"
NOTIFY = {"aeg-event-type": "Notification"}


@pytest.mark.parametrize(("skew", "path", "winner"), [(None, WEBHOOK, "Delivered"), ("86400", BATCH, "Failed")])
async def test_a_report_dated_ahead_of_the_skew_does_not_pin_the_status(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, skew: str | None, path: str, winner: str
) -> None:
    """A Failed dated an hour ahead, then the real Delivered: with the default skew (300 s) the Failed
    counts as received when it was recorded and the Delivered that follows wins; with a skew of a day
    the Failed's own time stands and it wins, as the later final. Its own timestamp stays in events."""
    env = app_environment(azurite.connection_string, **({"REPORT_MAX_FUTURE_SKEW_SECONDS": skew} if skew else {}))
    client = await serve_function_app(monkeypatch, env)
    try:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ahead = (now + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        message_id = "skew-" + uuid.uuid4().hex[:8]
        for status, received in (("Failed", ahead), ("Delivered", (now + dt.timedelta(seconds=2)).isoformat())):
            body = envelope(message_id, status, received)
            response = await client.post(path, json=[body] if path == BATCH else body, headers=NOTIFY)
            assert response.status in (200, 202), await response.text()
        record = await (await client.get(f"/api/messages/{message_id}")).json()
        assert record["status"] == winner
        assert ahead in {e["receivedTimestamp"] for e in record["events"]}
        assert record["completedAt"] <= ahead
    finally:
        await client.close()
        await RUNTIME.aclose()


@pytest.mark.parametrize("path", [WEBHOOK, BATCH])
async def test_both_ingest_routes_schedule_a_report_made_record_for_expiry(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """EXPIRY_WINDOW_HOURS reaches the report path: a Sent report for an id no send recorded is due then."""
    client = await serve_function_app(monkeypatch, app_environment(azurite.connection_string, EXPIRY_WINDOW_HOURS="5"))
    try:
        message_id = "orphan-" + uuid.uuid4().hex[:8]
        body = envelope(message_id, "Sent", "2026-11-27T09:00:00Z")
        before = dt.datetime.now(dt.UTC)
        response = await client.post(path, json=[body] if path == BATCH else body, headers=NOTIFY)
        assert response.status in (200, 202), await response.text()
        after = dt.datetime.now(dt.UTC)
        hours = {moment.replace(minute=0, second=0, microsecond=0) for moment in (before, after)}  # one, or two
        [(due_id, due_at)] = [d for hour in hours for d in await RUNTIME.store().due(hour + dt.timedelta(hours=5))]
        assert due_id == message_id
        assert before + dt.timedelta(hours=5) <= due_at <= after + dt.timedelta(hours=5)
    finally:
        await client.close()
        await RUNTIME.aclose()


# --- the property: any time, any timer -------------------------------------------------------------

STATUSES = st.sampled_from(["Delivered", "Failed", "Sent", "Queued"])
CLOCKS = st.one_of(
    st.sampled_from([T0, FIRST, LAST, FIRST + dt.timedelta(hours=1), LAST - dt.timedelta(minutes=1)]),
    st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max, timezones=st.just(dt.UTC)),
)
ANY_TIME = st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max, timezones=st.just(dt.UTC))
CASE = st.tuples(
    CLOCKS,  # when the reports are recorded (the app's own clock, anywhere in the calendar)
    st.lists(st.tuples(st.integers(0, 2), STATUSES, reported_instants()), min_size=1, max_size=5),
    st.sets(st.integers(0, 2)),  # the messages a send recorded
    st.lists(st.tuples(ANY_TIME, ANY_TIME), max_size=2),  # intents as stored: created, expires
)
EDGES = [
    "9999-12-31T23:59:59.9999999Z",
    "9999-12-31T23:59:59.9999999+14:00",
    "9999-12-31T23:59:59.9999999-14:00",  # past 9999 in UTC: poison
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00.0000001+14:00",  # before 0001 in UTC: poison
    "0001-01-01T00:00:00-14:00",
]


def draw() -> list[tuple[Any, ...]]:
    cases: list[tuple[Any, ...]] = []

    @settings(max_examples=14, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(CASE)
    @example((T0, [(0, "Failed", EDGES[0]), (1, "Sent", EDGES[0]), (2, "Delivered", EDGES[1])], {0}, []))
    @example((T0, [(0, "Delivered", EDGES[3]), (1, "Failed", EDGES[4]), (2, "Sent", EDGES[5])], {1}, []))
    @example((LAST, [(0, "Failed", EDGES[0]), (1, "Sent", EDGES[3]), (2, "Sent", EDGES[2])], {0, 1}, [(LAST, LAST)]))
    @example((FIRST, [(0, "Delivered", EDGES[3]), (1, "Sent", EDGES[0])], {0, 2}, [(FIRST, FIRST), (FIRST, LAST)]))
    def collect(case: tuple[Any, ...]) -> None:
        cases.append(case)

    collect()
    return cases


class FailingTopic:
    """A topic that refuses every publish: the status events stay pending for the retry timer."""

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        raise PublishFailed("HttpResponseError 503")


class AcceptingAcs:
    """ACS accepting every recipient of a repeated call (the reconciler's), each under a new id."""

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "value": [
                {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
                for r in payload["recipients"]
            ]
        }


@pytest.fixture
async def with_events(azurite: Azurite) -> AsyncIterator[str]:
    yield azurite.connection_string
    await RUNTIME.aclose()


async def run_case(connection_string: str, case: tuple[Any, ...]) -> None:
    clock, reports, sent, intents = case
    env = app_environment(connection_string, STATUS_EVENTS_ENDPOINT="http://127.0.0.1:9/api/events")
    RUNTIME.configure(Settings.from_environment(env), status_publisher=FailingTopic())
    store = RUNTIME.store()
    ids = [f"m{i}-{uuid.uuid4().hex[:8]}" for i in range(3)]
    await record_sends(store, [send(ids[i], clock) for i in sorted(sent)], clock, WINDOW, KEEP)
    for i, status, received in reports:
        await ingest_event(store, envelope(ids[i], status, received), clock, WINDOW + KEEP, expire_after=WINDOW)
    for created, expires in intents:
        payload = {"from": "+18004567891", "recipients": [{"to": "+18335852071"}], "attachments": []}
        await store.put_intent(SendIntent(uuid.uuid4().hex, created, expires, payload))
    for now in (clock, shifted(clock, WINDOW + KEEP + dt.timedelta(days=2))):  # the app's clock only moves on
        await expire_due(store, now)
        await retire_old(store, now, KEEP)
        await reconcile_sends(ReconcileDeps(store, AcceptingAcs(), store, store, KEEP), now, dt.timedelta(0))
        await retry_pending(store, FailingTopic(), "/mms-tracker/local", now, dt.timedelta(hours=1))
    for message_id in ids:  # whatever was kept can be read back and shown
        record = await store.get(message_id)
        if record is not None:
            MessageRecord.of(record).model_dump(mode="json")
    await RUNTIME.aclose()


async def test_no_reported_or_stored_time_makes_a_timer_fail(with_events: str) -> None:
    """Reports at any instant (7-digit fractions, offsets to +-14:00, 0001 and 9999), recorded by a
    clock anywhere in the calendar, and intents stored with any times: expiry, retention, the
    reconciler and the status-event retry timer each run to the end, now and after the windows."""
    for case in draw():
        await asyncio.wait_for(run_case(with_events, case), 120)
