"""Campaign storage: the job's entity (Table Storage), its chunk queue (Queue Storage) and attachments (Blob).

- Table ``<TRACKING_TABLE_PREFIX>Campaigns``: ``PartitionKey=<campaignId>``, ``RowKey="campaign"``;
  counters and status, replaced only under the ETag read (``MatchConditions.IfNotModified``).
- Queue ``campaign-chunks`` (and ``campaign-chunks-poison``): one message per chunk, base64, the
  encoding the Functions queue trigger reads by default.
- Blob container ``campaigns``: ``<campaignId>/attachments.json``, written once per campaign.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import random
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import ContainerClient
from azure.storage.queue.aio import QueueClient

from ..service.campaign_ports import CampaignChanged, CampaignNotFound
from ..service.ports import InvalidContinuationToken, StorageRejected, StorageUnavailable
from .storage_errors import classify, table_missing

CAMPAIGN_QUEUE = "campaign-chunks"
CAMPAIGN_POISON_QUEUE = CAMPAIGN_QUEUE + "-poison"
CAMPAIGN_CONTAINER = "campaigns"
CAMPAIGN_TABLE = "Campaigns"  # after TRACKING_TABLE_PREFIX
_ROW = "campaign"
_INDEX = "index"  # never a campaign id (those are UUIDs)
_INDEX_KEY = re.compile(r"[0-9]{15}\|[0-9a-f-]{36}")
_LAST_MS = int(dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp() * 1000)
_TIMES = ("createdAt", "completedAt")
_CACHED_ATTACHMENTS = 16


_THROTTLE = "~throttle"  # never a campaign id (a UUID) nor the index partition
_THROTTLE_RETRIES = 30


class CampaignTable:
    """The ``CampaignStore`` port on one table."""

    def __init__(self, table: TableClient, service: TableServiceClient | None = None) -> None:
        self._table = table
        self._service = service  # closed with the table when the table came from it
        self._ready: asyncio.Task[None] | None = None

    async def _ensure(self) -> None:
        if self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.ensure_future(self._create())
        await asyncio.shield(self._ready)

    async def _create(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_table()

    def _lost(self, exc: BaseException) -> StorageUnavailable | StorageRejected:
        """Classified as the records' tables classify; a missing table is created again on the next call."""
        if table_missing(exc):
            self._ready = None
        return classify(exc)

    async def create_campaign(self, campaign: Mapping[str, Any]) -> bool:
        await self._ensure()
        try:
            await self._table.create_entity(_entity(campaign))
        except ResourceExistsError:
            return False
        except AzureError as exc:
            raise self._lost(exc) from exc
        return True

    async def get_campaign(self, campaign_id: str) -> tuple[dict[str, Any], str]:
        await self._ensure()
        try:
            entity = await self._table.get_entity(campaign_id, _ROW)
        except ResourceNotFoundError:
            raise CampaignNotFound(campaign_id) from None
        except AzureError as exc:
            raise self._lost(exc) from exc
        return _campaign(entity), str(entity.metadata["etag"])

    async def replace_campaign(self, campaign: Mapping[str, Any], etag: str) -> None:
        try:
            await self._table.update_entity(
                _entity(campaign), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise CampaignChanged(str(campaign["campaignId"])) from None
        except AzureError as exc:
            raise self._lost(exc) from exc

    async def reserve_send_slot(self, sender: str, interval: float, now: float) -> float:
        """The next send slot of ``sender`` (epoch seconds) shared by every instance: one row per
        sender (``~throttle``/``<sender>``) holds when the next slot opens; a reservation moves it on by
        ``interval`` under its ETag, so two instances never take the same slot."""
        await self._ensure()
        for attempt in range(_THROTTLE_RETRIES):
            try:
                entity = await self._table.get_entity(_THROTTLE, sender)
            except ResourceNotFoundError:
                entity = None
            except AzureError as exc:
                raise self._lost(exc) from exc
            slot = max(now, float(entity["next"])) if entity is not None else now
            row = {"PartitionKey": _THROTTLE, "RowKey": sender, "next": slot + interval}
            try:
                if entity is None:
                    await self._table.create_entity(row)
                else:
                    await self._table.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
                continue
            except AzureError as exc:
                raise self._lost(exc) from exc
            return slot
        raise StorageUnavailable("the sender's send slot kept changing")

    async def index_campaign(self, campaign_id: str, created_at: dt.datetime) -> None:
        """An index row: partition ``index``, RowKey = milliseconds to the year 9999 then the id, so
        the table's key order is newest first."""
        await self._ensure()
        entity = {"PartitionKey": _INDEX, "RowKey": _index_key(campaign_id, created_at), "campaignId": campaign_id}
        try:
            await self._table.upsert_entity(entity)
        except AzureError as exc:
            raise self._lost(exc) from exc

    async def list_campaigns(self, page_size: int, after: str | None) -> tuple[list[str], str | None]:
        await self._ensure()
        query = f"PartitionKey eq '{_INDEX}'"
        parameters: dict[str, Any] = {}
        if after is not None:
            if not _INDEX_KEY.fullmatch(after):
                raise InvalidContinuationToken("continuationToken was not issued by this service")
            query += " and RowKey gt @after"
            parameters["after"] = after
        rows: list[tuple[str, str]] = []
        try:
            async for entity in self._table.query_entities(
                query, parameters=parameters, results_per_page=page_size + 1, select=["RowKey", "campaignId"]
            ):
                rows.append((str(entity["RowKey"]), str(entity["campaignId"])))
                if len(rows) > page_size:  # one more than a page: there is a next page
                    break
        except AzureError as exc:
            raise self._lost(exc) from exc
        page = rows[:page_size]
        return [campaign_id for _, campaign_id in page], (page[-1][0] if len(rows) > page_size else None)

    async def close(self) -> None:
        await self._table.close()
        if self._service is not None:
            await self._service.close()


def _index_key(campaign_id: str, created_at: dt.datetime) -> str:
    return f"{_LAST_MS - int(created_at.timestamp() * 1000):015d}|{campaign_id}"


def _entity(campaign: Mapping[str, Any]) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": campaign["campaignId"], "RowKey": _ROW}
    for key, value in campaign.items():
        if value is None or key == "campaignId":
            continue
        entity[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return entity


def _campaign(entity: Mapping[str, Any]) -> dict[str, Any]:
    campaign: dict[str, Any] = {"campaignId": entity["PartitionKey"], "completedAt": None, "message": None}
    for key, value in entity.items():
        if key in ("PartitionKey", "RowKey", "Timestamp"):
            continue
        campaign[key] = dt.datetime.fromisoformat(value) if key in _TIMES and value else value
    return campaign


class ChunkQueueClient:
    """The ``ChunkQueue`` port: messages base64-encoded, as the queue trigger expects by default."""

    def __init__(self, queue: QueueClient, poison: QueueClient, concurrency: int = 16) -> None:
        self._queue = queue
        self._poison = poison
        self._concurrency = asyncio.Semaphore(concurrency)
        self._created: set[str] = set()

    async def _ensure(self, queue: QueueClient) -> None:
        if queue.queue_name in self._created:
            return
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        self._created.add(queue.queue_name)

    async def enqueue(self, messages: list[str], visibility_timeout: int = 0) -> None:
        await self._ensure(self._queue)

        async def send(message: str) -> None:
            async with self._concurrency:
                await self._queue.send_message(_b64(message), visibility_timeout=visibility_timeout or None)

        try:
            await asyncio.gather(*(send(m) for m in messages))
        except AzureError as exc:
            raise classify(exc) from exc

    async def poison(self, message: str) -> None:
        await self._ensure(self._poison)
        try:
            await self._poison.send_message(_b64(message))
        except AzureError as exc:
            raise classify(exc) from exc

    async def close(self) -> None:
        await self._queue.close()
        await self._poison.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class AttachmentBlobs:
    """The ``AttachmentStore`` port: one blob per campaign, and a few recent ones kept in memory."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container
        self._created = False
        self._cache: OrderedDict[str, list[dict[str, str]]] = OrderedDict()

    async def put_attachments(self, campaign_id: str, attachments: list[dict[str, str]]) -> None:
        try:
            if not self._created:
                with contextlib.suppress(ResourceExistsError):
                    await self._container.create_container()
                self._created = True
            await self._container.upload_blob(
                f"{campaign_id}/attachments.json", json.dumps(attachments).encode(), overwrite=True
            )
        except AzureError as exc:
            raise classify(exc) from exc

    async def get_attachments(self, campaign_id: str) -> list[dict[str, str]]:
        if campaign_id in self._cache:
            self._cache.move_to_end(campaign_id)
            return self._cache[campaign_id]
        try:
            download = await self._container.download_blob(f"{campaign_id}/attachments.json")
            attachments: list[dict[str, str]] = json.loads(await download.readall())
        except AzureError as exc:
            raise classify(exc) from exc
        self._cache[campaign_id] = attachments
        if len(self._cache) > _CACHED_ATTACHMENTS:
            self._cache.popitem(last=False)
        return attachments

    async def close(self) -> None:
        await self._container.close()


class CampaignNotConfigured(RuntimeError):
    """Neither ``AzureWebJobsStorage`` nor ``AzureWebJobsStorage__accountName`` is set: campaigns are off."""


class CampaignClients:
    """The campaign adapters of one worker, built once per event loop."""

    def __init__(self, table: CampaignTable, queue: ChunkQueueClient, attachments: AttachmentBlobs) -> None:
        self.table = table
        self.queue = queue
        self.attachments = attachments

    @classmethod
    def build(
        cls,
        tables: TableServiceClient,
        table_name: str,
        connection_string: str | None,
        account: str | None,
        timeout_seconds: float,
    ) -> CampaignClients:
        """Clients on a connection string, or on ``account`` with ``DefaultAzureCredential``."""
        options: dict[str, Any] = {
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
            "retry_total": 3,
        }
        if connection_string:
            queue = QueueClient.from_connection_string(connection_string, CAMPAIGN_QUEUE, **options)
            poison = QueueClient.from_connection_string(connection_string, CAMPAIGN_POISON_QUEUE, **options)
            container = ContainerClient.from_connection_string(connection_string, CAMPAIGN_CONTAINER, **options)
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
            queues, blobs = f"https://{account}.queue.core.windows.net", f"https://{account}.blob.core.windows.net"
            queue = QueueClient(queues, CAMPAIGN_QUEUE, credential=credential, **options)
            poison = QueueClient(queues, CAMPAIGN_POISON_QUEUE, credential=credential, **options)
            container = ContainerClient(blobs, CAMPAIGN_CONTAINER, credential=credential, **options)
        table = CampaignTable(tables.get_table_client(table_name), tables)
        return cls(table, ChunkQueueClient(queue, poison), AttachmentBlobs(container))

    async def close(self) -> None:
        await asyncio.gather(self.table.close(), self.queue.close(), self.attachments.close())
