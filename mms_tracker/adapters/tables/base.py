"""The tables and their one client: creation, health, and how storage errors are classified."""

from __future__ import annotations

import asyncio
import contextlib

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables.aio import TableClient, TableServiceClient

from ...service.ports import (
    StorageRejected,
    StorageUnavailable,
)
from ..storage_errors import classify, table_missing
from .encoding import SCHEMA

# Every table the app uses, after TRACKING_TABLE_PREFIX: records with their counters, the id
# pointers, the expiry index, poison events, send results, sends in flight, and the tags by
# activity (docs/storage.md).
TABLES = (f"Records{SCHEMA}", f"Ids{SCHEMA}", "Due", "Poison", "Requests", "Intents", "Tags")


class Tables:
    """The app's tables, reached through one :class:`TableServiceClient` per worker."""

    def __init__(
        self, service: TableServiceClient, prefix: str, timeout_seconds: float, token_key: bytes | None = None
    ) -> None:
        self._service = service
        self._timeout = timeout_seconds
        self._token_key = token_key
        self.records, self.ids, self.due_table, self.poison, self.requests, self.intents, self.tags = (
            service.get_table_client(prefix + name) for name in TABLES
        )
        self._ready: asyncio.Task[None] | None = None
        # Each shard's counters with their ETag, as this worker last wrote or read them: a write
        # tries this copy first (the ETag guards it) and reads afresh only when it is stale.
        self._counters: dict[str, tuple[dict[str, int], str | None]] = {}

    def _lost(self, exc: BaseException) -> StorageUnavailable | StorageRejected:
        """Classify a storage error; a missing table means the "tables exist" cache is wrong: drop it."""
        if table_missing(exc):
            self._ready = None
        return classify(exc)

    async def ping(self) -> None:
        """One cheap round trip (the first page of the table list); raise :class:`StorageUnavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                async for _ in self._service.list_tables(results_per_page=1):
                    break
        except (AzureError, TimeoutError, OSError) as exc:
            raise self._lost(exc) from exc

    async def ensure_tables(self) -> None:
        """Create the tables once per worker (concurrent callers share one attempt)."""
        if self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.ensure_future(self._create_tables())
        await asyncio.shield(self._ready)

    async def _create_tables(self) -> None:
        async def create(table: TableClient) -> None:
            with contextlib.suppress(ResourceExistsError):
                await table.create_table()

        try:
            await asyncio.gather(
                *(
                    create(t)
                    for t in (
                        self.records,
                        self.ids,
                        self.due_table,
                        self.poison,
                        self.requests,
                        self.intents,
                        self.tags,
                    )
                )
            )
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def close(self) -> None:
        await self._service.close()
