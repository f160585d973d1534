"""CAMPAIGN_SENDS_PER_SECOND holds across instances (issue 18): send slots per sender are shared
through the campaigns' table, against a real Azurite."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.data.tables.aio import TableServiceClient

from mms_tracker.adapters.campaigns import CampaignTable
from mms_tracker.service.campaigns import SendThrottle
from tests.support import Azurite

NOW = 1_800_000_000.0


async def test_instances_sharing_the_table_never_take_the_same_send_slot(azurite: Azurite) -> None:
    """Four instances (each its own client and throttle) send 10 chunks each from one number at
    5 requests per second: the 40 reserved slots are all distinct and 0.2 s apart, so the rate
    holds for the app as a whole, not per instance."""
    name = "t" + uuid.uuid4().hex[:12] + "Campaigns"
    services = [TableServiceClient.from_connection_string(azurite.connection_string) for _ in range(4)]
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(round(seconds, 6))

    throttles = [
        SendThrottle(5.0, slots=CampaignTable(s.get_table_client(name)), wall_clock=lambda: NOW) for s in services
    ]
    try:
        await asyncio.gather(*(t.acquire("+18004567891", wait) for t in throttles for _ in range(10)))
        await throttles[0].acquire("+18005550100", wait)  # another sender has slots of its own
    finally:
        for s in services:
            await s.close()
    assert sorted(waits) == pytest.approx([0.2 * n for n in range(1, 40)], abs=1e-4)  # the first slot: no wait
