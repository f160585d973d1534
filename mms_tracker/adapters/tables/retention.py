"""The retention index: when to look at a message again for deletion, in day buckets of ``Due``.

Partitions ``r<YYYYMMDD>`` (never an hour bucket of the expiry index, which are digits only), one
row per message; the timer's cursor is ``cursor/retention``.
"""

from __future__ import annotations

import datetime as dt

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .base import Tables
from .encoding import CURSOR_PARTITION, iso, parse_time, table_key, time_key


def retirement_bucket(moment: dt.datetime) -> str:
    return "r" + time_key(moment, 8)


class RetentionTables(Tables):
    """The retention rows of the ``Due`` table."""

    async def add_retirement(self, message_id: str, at: dt.datetime) -> None:
        await self.ensure_tables()
        entity = {
            "PartitionKey": retirement_bucket(at),
            "RowKey": table_key(message_id),
            "messageId": message_id,
            "at": iso(at),
        }
        try:
            await self.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def retirements(self, day: dt.datetime, limit: int) -> list[tuple[str, dt.datetime]]:
        """At most ``limit`` of the day's retention rows (the timer comes back for more)."""
        await self.ensure_tables()
        found: list[tuple[str, dt.datetime]] = []
        try:
            async for entity in self.due_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": retirement_bucket(day)}, results_per_page=1000
            ):
                found.append((str(entity["messageId"]), parse_time(entity["at"])))
                if len(found) >= limit:
                    break
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return found

    async def remove_retirement(self, message_id: str, at: dt.datetime) -> None:
        try:
            await self.due_table.delete_entity(retirement_bucket(at), table_key(message_id))
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def retirement_cursor(self) -> dt.datetime | None:
        await self.ensure_tables()
        try:
            entity = await self.due_table.get_entity(CURSOR_PARTITION, "retention")
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return parse_time(entity["day"])

    async def set_retirement_cursor(self, day: dt.datetime) -> None:
        entity = {"PartitionKey": CURSOR_PARTITION, "RowKey": "retention", "day": iso(day)}
        try:
            await self.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
