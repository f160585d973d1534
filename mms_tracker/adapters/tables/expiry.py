"""The expiry index: hourly buckets of due messages, and the timer's cursor."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote

from azure.core.exceptions import (
    AzureError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from .base import Tables
from .encoding import (
    CURSOR_PARTITION,
    due_bucket,
    iso,
    parse_time,
    table_key,
)


class ExpiryTables(Tables):
    """The ``Due`` table."""

    # --- expiry index ------------------------------------------------------------------------

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None:
        await self.ensure_tables()
        entity = {
            "PartitionKey": due_bucket(due_at),
            "RowKey": table_key(message_id),
            "messageId": message_id,
            "dueAt": iso(due_at),
        }
        try:
            await self.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]:
        await self.ensure_tables()
        found = []
        try:
            async for entity in self.due_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": due_bucket(hour)}, results_per_page=1000
            ):
                found.append((entity.get("messageId") or unquote(entity["RowKey"]), parse_time(entity["dueAt"])))
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return found

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None:
        try:
            await self.due_table.delete_entity(due_bucket(due_at), table_key(message_id))
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def due_cursor(self) -> dt.datetime | None:
        """The first hour bucket not yet fully handled by the expiry timer."""
        await self.ensure_tables()
        try:
            entity = await self.due_table.get_entity(CURSOR_PARTITION, "expiry")
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return parse_time(entity["hour"])

    async def set_due_cursor(self, hour: dt.datetime) -> None:
        entity = {"PartitionKey": CURSOR_PARTITION, "RowKey": "expiry", "hour": iso(hour)}
        try:
            await self.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
