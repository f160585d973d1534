"""The outbox index rows are group-committed per ``o|<shard>`` partition, against a real Azurite.

Requests are counted at the transport, as ``localdev/bench/campaign.py``'s ``CountingTransport``
does: azure-core's aiohttp transport, each request it sends counted (an entity-group transaction
is one ``POST .../$batch``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient

from mms_tracker.adapters.tables.encoding import shard_of
from mms_tracker.adapters.tables.outbox import outbox_partition
from mms_tracker.adapters.tables.store import TableStore
from mms_tracker.domain import DeliveryReport, Send, Status, StatusChange
from mms_tracker.service.ports import StorageUnavailable
from mms_tracker.service.tracking import record_report, record_sends
from tests.support import Azurite

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
LATER = T0 + dt.timedelta(days=1)  # every index row's nextAt has passed: the timer takes them all


class CountingTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core exports it lazily, untyped
    """Counts the requests that touch the ``Due`` table, and fails its transactions while told to."""

    def __init__(self, due_table: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.due_table = due_table.encode()
        self.due_transactions = 0  # POST $batch whose operations are on Due
        self.due_singles = 0  # any other request on an index row of Due
        self.fail_next = 0  # the next N Due transactions fail as a dropped connection does

    async def send(self, request: Any, **config: Any) -> Any:
        url = str(request.url)
        body = request.body if isinstance(request.body, bytes) else b""
        if url.endswith("$batch") and self.due_table in body:
            self.due_transactions += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                raise ServiceResponseError("injected: the connection dropped")
        elif self.due_table.decode() in url and ("PartitionKey='o%7C" in url or "PartitionKey='o|" in url):
            self.due_singles += 1  # one index row written alone (the expiry index shares Due: not counted)
        return await super().send(request, **config)


@pytest.fixture
async def counted(azurite: Azurite) -> AsyncIterator[tuple[TableStore, CountingTransport]]:
    prefix = f"ob{uuid.uuid4().hex[:8]}"
    transport = CountingTransport(f"{prefix}Due", use_env_settings=False)
    # No client retries: each failure the transport injects reaches the adapter, which decides.
    service = TableServiceClient.from_connection_string(
        azurite.connection_string, transport=transport, use_env_settings=False, retry_total=0
    )
    # A topic is configured; no publisher runs, so all stays pending.
    store = TableStore(service, prefix, 30.0, token_key=None, status_events_enabled=True)
    await store.ensure_tables()
    yield store, transport
    await store.close()


def one_shard(n: int) -> list[str]:
    found: list[str] = []
    i = 0
    while len(found) < n:
        message_id = f"m{i}"
        if shard_of(message_id) == 0:
            found.append(message_id)
        i += 1
    return found


def send(message_id: str) -> Send:
    return Send(message_id, "+18335852071", "+18004567891", "camp", True, T0)


async def pending(store: TableStore) -> set[tuple[str, int]]:
    return {(e.message_id, e.revision) for e in await store.pending_status_events(LATER, 16 * 1000)}


async def test_a_burst_to_one_shard_costs_one_transaction_per_100_rows(
    counted: tuple[TableStore, CountingTransport],
) -> None:
    store, transport = counted
    ids = one_shard(150)
    change = StatusChange(1, Status.ACCEPTED, None, None, T0, None)
    # 150 writers queue at once, as a batch's writers do: two transactions (100 rows, then 50).
    await asyncio.gather(*(store._add_outbox_entries(m, (change,)) for m in ids))
    assert (transport.due_transactions, transport.due_singles) == (2, 0)
    assert await pending(store) == {(m, 1) for m in ids}


async def test_a_burst_of_sends_writes_its_index_rows_in_few_transactions(
    counted: tuple[TableStore, CountingTransport],
) -> None:
    store, transport = counted
    ids = one_shard(100)
    await record_sends(store, [send(m) for m in ids], T0, WINDOW)
    # Without the group commit this was 100 single upserts; the writers reach the queue while a
    # transaction is in flight, so each transaction carries what queued meanwhile.
    assert transport.due_singles == 0
    assert 1 <= transport.due_transactions <= 20
    assert await pending(store) == {(m, 1) for m in ids}


async def test_a_failing_transaction_is_tried_again_and_the_timer_finds_every_event(
    counted: tuple[TableStore, CountingTransport],
) -> None:
    store, transport = counted
    ids = one_shard(40)
    change = StatusChange(1, Status.ACCEPTED, None, None, T0, None)
    transport.fail_next = 1
    await asyncio.gather(*(store._add_outbox_entries(m, (change,)) for m in ids))
    assert transport.due_transactions == 2  # the failed one, then the same rows again
    assert await pending(store) == {(m, 1) for m in ids}


async def test_a_transaction_that_keeps_failing_fails_its_writers_and_loses_no_event(
    counted: tuple[TableStore, CountingTransport],
) -> None:
    store, transport = counted
    ids = one_shard(30)
    transport.fail_next = 1_000
    outcomes = await asyncio.gather(*(record_sends(store, [send(m)], T0, WINDOW) for m in ids), return_exceptions=True)
    assert all(isinstance(o, StorageUnavailable) for o in outcomes)  # no send is acknowledged
    assert transport.due_transactions >= 3  # each batch tried MAX_INDEX_TRIES times before giving up
    transport.fail_next = 0
    # The callers failed (the reports are redelivered); the events are in the records all along.
    for message_id in ids:
        record = await store.get(message_id)
        assert record is not None and [c.revision for c in record.pending] == [1]
    assert await pending(store) == set()
    # The next status change of each record writes its own row; the timer, reading the record,
    # publishes every pending event of it (revision 1 too).
    await asyncio.gather(
        *(
            record_report(
                store,
                DeliveryReport(
                    event_id=f"{m}-d",
                    event_type="Microsoft.Communication.SMSDeliveryReportReceived",
                    message_id=m,
                    delivery_status="Delivered",
                    delivery_status_details="Delivered",
                    received_timestamp=T0 + dt.timedelta(seconds=5),
                    to="+18335852071",
                    from_="+18004567891",
                    tag="camp",
                ),
                T0,
            )
            for m in ids
        )
    )
    assert await pending(store) == {(m, 2) for m in ids}


async def test_a_redelivered_report_writes_the_index_rows_of_events_still_pending(
    counted: tuple[TableStore, CountingTransport],
) -> None:
    """The index row of an event was lost (its transaction failed; the report was not acknowledged):
    the redelivery, a no-op on the record, writes it again, so the retry timer finds the event."""
    store, _ = counted
    report = DeliveryReport(str(uuid.uuid4()), "t", "m-lost-row", "Delivered", "ok", T0, tag="t")
    await record_report(store, report, T0)
    partition = outbox_partition("m-lost-row")
    rows = [e async for e in store.due_table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})]
    assert rows
    for row in rows:
        await store.due_table.delete_entity(partition, row["RowKey"])  # as if the row transaction had failed
    await record_report(store, report, T0)  # Event Grid redelivers the report
    found = await store.pending_status_events(T0 + dt.timedelta(hours=1), 100)
    assert "m-lost-row" in {e.message_id for e in found}
