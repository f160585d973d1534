"""Send results kept by the client's ``repeatabilityRequestId``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from .base import Tables
from .encoding import (
    table_key,
)


class SendResultTables(Tables):
    """The ``Requests`` table."""

    # --- send results by client repeatabilityRequestId --------------------------------------

    async def get_send_results(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        await self.ensure_tables()

        async def one(request_id: str) -> tuple[str, dict[str, Any] | None]:
            try:
                entity = await self.requests.get_entity(table_key(request_id), "result")
            except ResourceNotFoundError:
                return request_id, None
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc
            return request_id, json.loads(entity["item"])

        found = await asyncio.gather(*(one(i) for i in dict.fromkeys(request_ids)))
        return {request_id: item for request_id, item in found if item is not None}

    async def put_send_results(self, results: Mapping[str, dict[str, Any]]) -> None:
        await self.ensure_tables()

        async def one(request_id: str, item: dict[str, Any]) -> None:
            entity = {"PartitionKey": table_key(request_id), "RowKey": "result", "item": json.dumps(item)}
            try:
                await self.requests.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc

        await asyncio.gather(*(one(k, v) for k, v in results.items()))
