"""Events that can never be processed, kept for inspection."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
)
from azure.data.tables import UpdateMode

from .base import Tables
from .encoding import (
    POISON_PAYLOAD_CHARS,
    iso,
    json_safe,
    table_key,
)


class PoisonTables(Tables):
    """The ``Poison`` table."""

    # --- poison ------------------------------------------------------------------------------

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None:
        """Keep an unprocessable event (payload capped) with the reason; redeliveries overwrite it."""
        await self.ensure_tables()
        try:
            payload = json.dumps(envelope, default=str)
        except (ValueError, RecursionError):
            payload = json.dumps({"unserialisable": True})
        event_id = str(envelope.get("id") or hashlib.sha256(payload.encode()).hexdigest())
        entity = {
            "PartitionKey": now.strftime("%Y%m%d"),
            "RowKey": table_key(event_id),
            "eventId": json_safe(event_id[:1000]),
            "reason": json_safe(reason[:1000]),
            "eventType": json_safe(str(envelope.get("eventType") or envelope.get("type") or "")[:256]),
            "payload": payload[:POISON_PAYLOAD_CHARS],
            "truncated": len(payload) > POISON_PAYLOAD_CHARS,
            "recordedAt": iso(now),
        }
        try:
            await self.poison.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def poison_entries(self, day: dt.datetime) -> list[dict[str, Any]]:
        await self.ensure_tables()
        return [
            dict(e)
            async for e in self.poison.query_entities("PartitionKey eq @pk", parameters={"pk": day.strftime("%Y%m%d")})
        ]
