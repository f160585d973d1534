"""Issue 25 against a real Azurite: a chunk whose ACS answer was lost on every delivery is counted
``failedToSend``, then moved to ``accepted`` once when reconciler runs (two at once, each with its
own clients) record its intents, one per delivery; the intents keep which chunk they send."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from mms_tracker.adapters.campaigns import CampaignTable
from mms_tracker.adapters.tables.store import TableStore
from mms_tracker.service import campaigns
from mms_tracker.service.campaigns import (
    Chunk,
    ChunkContext,
    count_recorded_chunk,
    create_campaign,
    send_chunk,
)
from mms_tracker.service.ports import AcsUnavailable, SendIntent
from mms_tracker.service.reconciler import ReconcileDeps, reconcile_sends
from mms_tracker.settings import Settings
from tests.campaign_fakes import Attachments, LocalThrottle, Queue, RepeatableAcs
from tests.integration.test_storage_races import second_worker
from tests.support import Azurite
from tests.unit.test_campaigns import T0, numbers, request

LATER = T0 + dt.timedelta(minutes=10)
LAST = campaigns.MAX_DEQUEUE_COUNT


@pytest.fixture
async def tables(azurite: Azurite) -> AsyncIterator[list[CampaignTable]]:
    """Two clients (two instances) of one fresh campaigns table."""
    name = "t" + uuid.uuid4().hex[:12] + "Campaigns"
    services = [TableServiceClient.from_connection_string(azurite.connection_string) for _ in range(2)]
    yield [CampaignTable(s.get_table_client(name)) for s in services]
    for s in services:
        await s.close()


async def test_a_chunk_sent_with_every_answer_lost_is_moved_to_accepted_once_by_racing_reconcilers(
    runtime: Settings, store: TableStore, tables: list[CampaignTable]
) -> None:
    acs, queue, attachments = RepeatableAcs(), Queue(), Attachments()
    campaign_id = str(uuid.uuid4())
    body = request([*numbers(99, start=int(uuid.uuid4().int % 9000)), "not-a-number"], tag=f"t-{campaign_id}")
    await create_campaign(body, campaign_id, tables[0], queue, attachments, T0)
    chunk = Chunk.from_message(queue.messages[0][0])
    context = ChunkContext(
        acs=acs,
        tracking=store,
        results=store,
        campaigns=tables[0],
        queue=queue,
        attachments=attachments,
        throttle=LocalThrottle(1000.0),
        expiry_window=dt.timedelta(hours=72),
        intents=store,
    )
    for count in range(1, LAST + 1):
        acs.lose_response = AcsUnavailable("connection reset after the request was sent", maybe_sent=True)
        with pytest.raises(AcsUnavailable):
            await send_chunk(chunk, count, context, lambda: T0 + dt.timedelta(minutes=1))
    failed, _ = await tables[1].get_campaign(campaign_id)
    assert (failed["status"], failed["failedToSend"], failed["accepted"]) == ("CompletedWithErrors", 100, 0)

    kept = [i for i in await store.intents_before(LATER, 1000) if i.campaign_chunk == (campaign_id, 0, 100)]
    assert len(kept) == LAST  # one per delivery, each naming its chunk as stored

    other = second_worker(runtime)  # another instance's table store on the same tables

    def hook(table: CampaignTable, results: TableStore) -> Any:
        async def count(intent: SendIntent) -> None:
            if intent.campaign_chunk is not None:
                await count_recorded_chunk(table, results, intent.campaign_chunk, LATER)

        return count

    try:
        runs = await asyncio.gather(
            *(
                reconcile_sends(ReconcileDeps(s, acs, s, s, on_recorded=hook(t, s)), LATER, dt.timedelta(minutes=1))
                for s, t in ((store, tables[0]), (other, tables[1]))
            )
        )
        assert sum(r.recorded for r in runs) == LAST  # each intent claimed by one run
        again = await reconcile_sends(
            ReconcileDeps(other, acs, other, other, on_recorded=hook(tables[1], other)), LATER, dt.timedelta(minutes=1)
        )
    finally:
        await other.close()
    assert again.recorded == 0
    campaign, _ = await tables[0].get_campaign(campaign_id)
    assert (campaign["status"], campaign["sent"], campaign["accepted"], campaign["rejected"]) == (
        "Completed",
        100,
        99,
        1,
    )
    assert campaign["failedToSend"] == 0 and campaign["recovered"] == 100
    assert "found sent by ACS" in campaign["reason"]
    assert sum(acs.sent.values()) == 99 and max(acs.sent.values()) == 1
    assert (await send_chunk(chunk, LAST, context, lambda: LATER)).result == "skipped"  # settle_campaign_chunk
