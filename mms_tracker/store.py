"""Tracking storage on Azure Table Storage (azure-data-tables, async client)."""

from __future__ import annotations

import asyncio

from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableServiceClient


class StorageUnavailable(Exception):
    """Table storage did not answer in time or answered with an error."""


class TableStore:
    """The app's tables, reached through one :class:`TableServiceClient` per worker."""

    def __init__(self, service: TableServiceClient, prefix: str, timeout_seconds: float) -> None:
        self._service = service
        self._prefix = prefix
        self._timeout = timeout_seconds

    async def ping(self) -> None:
        """One cheap round trip (the first page of the table list); raise :class:`StorageUnavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                async for _ in self._service.list_tables(results_per_page=1):
                    break
        except (AzureError, TimeoutError, OSError) as exc:
            raise StorageUnavailable(type(exc).__name__) from exc

    async def close(self) -> None:
        await self._service.close()
