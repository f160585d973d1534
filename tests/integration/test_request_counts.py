"""Storage requests per delivery report, counted at the transport against a real Azurite (issue 28).

The per-event path is how Azure delivers ACS reports by default, and each storage request on it is
latency and Flex Consumption CPU. These figures are exact for one report at a time; a test fails
when a change adds a request (or saves one: then lower the figure here and in docs/benchmarks.md).
Requests are counted as ``make bench`` counts them (``localdev/bench/campaign.py``): every request
azure-core's aiohttp transport sends, an entity-group transaction being one ``POST $batch``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient

from mms_tracker.adapters.tables.store import TableStore
from mms_tracker.domain import Send
from mms_tracker.service.status_events import StatusPublishing, event_source
from mms_tracker.service.tracking import ingest_event, record_sends
from tests.support import Azurite

T0 = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
SENDER = "+18004567891"


class CountingTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core exports it lazily, untyped
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests = 0

    async def send(self, request: Any, **config: Any) -> Any:
        self.requests += 1
        return await super().send(request, **config)


@dataclass
class RecordingTopic:
    """A hand-written topic: takes every batch (the store's requests are what is counted)."""

    batches: list[list[Mapping[str, Any]]] = field(default_factory=list)

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.batches.append(list(events))


@dataclass
class Counted:
    store: TableStore
    transport: CountingTransport
    publishing: StatusPublishing | None
    topic: RecordingTopic


async def _counted(azurite: Azurite, *, events: bool) -> Counted:
    transport = CountingTransport(use_env_settings=False)
    service = TableServiceClient.from_connection_string(
        azurite.connection_string, transport=transport, use_env_settings=False
    )
    topic = RecordingTopic()
    holder: list[StatusPublishing] = []
    store = TableStore(
        service,
        f"rc{uuid.uuid4().hex[:8]}",
        30.0,
        token_key=None,
        status_listener=(lambda record: holder[0].notify(record)) if events else None,
        status_events_enabled=events,
    )
    publishing = StatusPublishing(store, topic, event_source(None)) if events else None
    if publishing is not None:
        holder.append(publishing)
    await store.ensure_tables()
    return Counted(store, transport, publishing, topic)


@pytest.fixture
async def quiet(azurite: Azurite) -> AsyncIterator[Counted]:
    """Status events off (no topic configured)."""
    counted = await _counted(azurite, events=False)
    yield counted
    await counted.store.close()


@pytest.fixture
async def eventful(azurite: Azurite) -> AsyncIterator[Counted]:
    """Status events on: the worker's background publisher, as runtime.py wires it."""
    counted = await _counted(azurite, events=True)
    yield counted
    assert counted.publishing is not None
    await counted.publishing.close()
    await counted.store.close()


def report(message_id: str, status: str = "Delivered", tag: str | None = "camp") -> dict[str, Any]:
    data: dict[str, Any] = {
        "messageId": message_id,
        "from": SENDER,
        "to": "+18335852071",
        "deliveryStatus": status,
        "deliveryStatusDetails": "No error.",
        "receivedTimestamp": "2026-12-04T09:00:05Z",
    }
    if tag is not None:
        data["tag"] = tag
    return {
        "id": str(uuid.uuid4()),
        "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
        "subject": "/phonenumber/18335852071",
        "eventTime": "2026-12-04T09:00:05Z",
        "dataVersion": "1.0",
        "data": data,
    }


async def sent(counted: Counted, message_id: str) -> None:
    """The message as a send leaves it (Accepted, tagged), and the publisher drained."""
    await record_sends(counted.store, [Send(message_id, "+18335852071", SENDER, "camp", True, T0)], T0, WINDOW)
    if counted.publishing is not None:
        await counted.publishing.drain()


async def requests_for(counted: Counted, envelope: dict[str, Any]) -> tuple[int, int]:
    """(what the report's invocation waits for, what the worker does after it)."""
    before = counted.transport.requests
    await ingest_event(counted.store, envelope, T0 + dt.timedelta(seconds=5))
    inline = counted.transport.requests - before
    before = counted.transport.requests
    if counted.publishing is not None:
        await counted.publishing.drain()
    return inline, counted.transport.requests - before


async def test_a_final_report_for_a_sent_message_reads_once_and_writes_once(quiet: Counted) -> None:
    await sent(quiet, "m1")
    # the record's point read, then one transaction: the record and its shard's counters
    assert await requests_for(quiet, report("m1")) == (2, 0)


async def test_a_duplicate_report_is_one_read(quiet: Counted) -> None:
    await sent(quiet, "m1")
    envelope = report("m1")
    await requests_for(quiet, envelope)
    assert await requests_for(quiet, envelope) == (1, 0)


async def test_a_non_final_then_a_final_report_cost_two_each(quiet: Counted) -> None:
    await sent(quiet, "m1")
    assert await requests_for(quiet, report("m1", "Sending")) == (2, 0)  # history grows, counters do not move
    assert await requests_for(quiet, report("m1", "Delivered")) == (2, 0)


async def test_a_report_without_a_tag_finds_its_record_through_the_pointer(quiet: Counted) -> None:
    await sent(quiet, "m1")
    # the pointer (Ids), the record, then the transaction
    assert await requests_for(quiet, report("m1", tag=None)) == (3, 0)


async def test_a_report_before_its_send_creates_the_record(quiet: Counted) -> None:
    # the hinted record (absent), the pointer (absent), the pointer's claim, the shard's counters,
    # the transaction; and the tag's listing row, written once per tag and worker
    assert await requests_for(quiet, report("early")) == (6, 0)
    assert await requests_for(quiet, report("early2")) == (5, 0)


async def test_with_status_events_the_outbox_row_goes_beside_the_write_and_the_ack_after_it(
    eventful: Counted,
) -> None:
    await sent(eventful, "m1")
    # inline: the read, the record's transaction, and the event's index row in Due (concurrent
    # with the transaction); after: the acknowledgement (publishedRevision merged, index row
    # deleted), one publish to the topic
    published = len(eventful.topic.batches)
    assert await requests_for(eventful, report("m1")) == (3, 2)
    assert len(eventful.topic.batches) == published + 1


async def test_with_status_events_a_duplicate_is_still_one_read(eventful: Counted) -> None:
    await sent(eventful, "m1")
    envelope = report("m1")
    await requests_for(eventful, envelope)
    assert await requests_for(eventful, envelope) == (1, 0)
