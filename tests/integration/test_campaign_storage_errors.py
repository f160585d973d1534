"""The campaigns' table classifies storage errors as the records' tables do
(adapters/storage_errors.py), against a real Azurite."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from azure.data.tables.aio import TableServiceClient

from mms_tracker.adapters.campaigns import CampaignTable
from mms_tracker.service.campaign_ports import CampaignNotFound
from mms_tracker.service.ports import StorageRejected, StorageUnavailable
from tests.support import Azurite

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def table(azurite: Azurite) -> AsyncIterator[tuple[CampaignTable, TableServiceClient, str]]:
    name = "t" + uuid.uuid4().hex[:12] + "Campaigns"
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    try:
        yield CampaignTable(service.get_table_client(name)), service, name
    finally:
        await service.close()


async def test_a_campaign_storage_refuses_for_good_is_rejected_not_unavailable(
    table: tuple[CampaignTable, TableServiceClient, str],
) -> None:
    """A PartitionKey over the service's limit is a 400, never passing on retry: the routes answer it
    500 like a record's. The limit: a PartitionKey is a string of up to 1 KiB, 512 UTF-16 characters
    (https://learn.microsoft.com/azure/storage/tables/scalability-targets, "Size of the PartitionKey")."""
    campaigns, _, _ = table
    with pytest.raises(StorageRejected):
        await campaigns.create_campaign({"campaignId": "k" * 600, "status": "Queued"})


async def test_a_campaign_table_deleted_under_the_worker_is_unavailable_once_then_created_again(
    table: tuple[CampaignTable, TableServiceClient, str],
) -> None:
    campaigns, service, name = table
    await campaigns.index_campaign("00000000-0000-0000-0000-000000000001", T0)
    await service.delete_table(name)
    with pytest.raises(StorageUnavailable):
        await campaigns.index_campaign("00000000-0000-0000-0000-000000000002", T0)
    await campaigns.index_campaign("00000000-0000-0000-0000-000000000003", T0)  # the table is there again
    ids, _ = await campaigns.list_campaigns(10, None)
    assert ids == ["00000000-0000-0000-0000-000000000003"]
    with pytest.raises(CampaignNotFound):
        await campaigns.get_campaign("00000000-0000-0000-0000-000000000003")
