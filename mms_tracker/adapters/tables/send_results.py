"""Send results kept by the client's ``repeatabilityRequestId``."""

from __future__ import annotations

import asyncio
import json
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

from ...service.ports import StorageUnavailable
from .base import Tables
from .encoding import (
    table_key,
)

CLAIM_ATTEMPTS = 5  # created, found taken, found released meanwhile: try again, this many times at most


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

    async def claim_send_ids(self, claims: Mapping[str, str]) -> tuple[set[str], set[str]]:
        """Insert each id's claim (``{"request": fingerprint}``) if the id has no row yet; an id
        that has one is taken when that row stands for another fingerprint."""
        await self.ensure_tables()

        async def one(request_id: str, fingerprint: str) -> tuple[str, bool | None]:
            claim = {
                "PartitionKey": table_key(request_id),
                "RowKey": "result",
                "item": json.dumps({"request": fingerprint}),
            }
            for _ in range(CLAIM_ATTEMPTS):
                try:
                    await self.requests.create_entity(claim)
                    return request_id, True
                except ResourceExistsError:
                    pass
                except (AzureError, OSError) as exc:
                    raise self._lost(exc) from exc
                try:
                    held = json.loads((await self.requests.get_entity(table_key(request_id), "result"))["item"])
                except ResourceNotFoundError:
                    continue  # released between the two: free again, so claim it (never go ahead unclaimed)
                except (AzureError, OSError) as exc:
                    raise self._lost(exc) from exc
                return request_id, None if held.get("request") == fingerprint else False
            raise StorageUnavailable(f"the id was claimed and released {CLAIM_ATTEMPTS} times meanwhile")

        found = await asyncio.gather(*(one(k, v) for k, v in claims.items()))
        return {k for k, made in found if made}, {k for k, made in found if made is False}

    async def release_send_claims(self, claims: Mapping[str, str]) -> None:
        """Delete each id's row while it is still a claim (no result) for that fingerprint, under its
        ETag: a result written meanwhile (a retry of the same request answered) is never removed."""
        await self.ensure_tables()

        async def one(request_id: str, fingerprint: str) -> None:
            try:
                entity = await self.requests.get_entity(table_key(request_id), "result")
                held = json.loads(entity["item"])
                if "item" in held or held.get("request") != fingerprint:
                    return
                await self.requests.delete_entity(
                    entity, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
            except (ResourceNotFoundError, ResourceModifiedError):
                return  # gone already, or changed since it was read: a result now, or another claim
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc

        await asyncio.gather(*(one(k, v) for k, v in claims.items()))
