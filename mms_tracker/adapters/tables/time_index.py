"""One time index in the ``Due`` table: a row per message in the bucket of a moment, and a cursor.

The expiry index (hour buckets, ``<YYYYMMDDHH>``) and the retention index (day buckets,
``r<YYYYMMDD>``, never an hour bucket, which are digits only) are two of these; each timer's cursor
is the row ``cursor/<name>`` (docs/storage.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .base import Tables
from .encoding import CURSOR_PARTITION, iso, parse_time, table_key


@dataclass(frozen=True)
class TimeIndexLayout:
    """How one index lays out its rows: ``bucket`` of a moment, the row's time property, and the
    cursor's row key and property."""

    bucket: Callable[[dt.datetime], str]
    time_field: str
    cursor_row: str
    cursor_field: str


class TimeIndex:
    """The rows of one :class:`TimeIndexLayout` in ``Due``, reached through the shared :class:`Tables`."""

    def __init__(self, tables: Tables, layout: TimeIndexLayout) -> None:
        self._tables = tables
        self._layout = layout

    async def add(self, message_id: str, at: dt.datetime) -> None:
        tables = self._tables
        await tables.ensure_tables()
        entity = {
            "PartitionKey": self._layout.bucket(at),
            "RowKey": table_key(message_id),
            "messageId": message_id,
            self._layout.time_field: iso(at),
        }
        try:
            await tables.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise tables._lost(exc) from exc

    async def bucket(self, moment: dt.datetime, limit: int | None = None) -> list[tuple[str, dt.datetime]]:
        """The rows of ``moment``'s bucket (at most ``limit``; the timer comes back for more)."""
        tables = self._tables
        await tables.ensure_tables()
        found: list[tuple[str, dt.datetime]] = []
        try:
            async for entity in tables.due_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": self._layout.bucket(moment)}, results_per_page=1000
            ):
                message_id = str(entity.get("messageId") or unquote(entity["RowKey"]))
                found.append((message_id, parse_time(entity[self._layout.time_field])))
                if limit is not None and len(found) >= limit:
                    break
        except (AzureError, OSError) as exc:
            raise tables._lost(exc) from exc
        return found

    async def remove(self, message_id: str, at: dt.datetime) -> None:
        tables = self._tables
        try:
            await tables.due_table.delete_entity(self._layout.bucket(at), table_key(message_id))
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise tables._lost(exc) from exc

    async def cursor(self) -> dt.datetime | None:
        """The first bucket the index's timer has not yet fully handled."""
        tables = self._tables
        await tables.ensure_tables()
        try:
            entity = await tables.due_table.get_entity(CURSOR_PARTITION, self._layout.cursor_row)
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise tables._lost(exc) from exc
        return parse_time(entity[self._layout.cursor_field])

    async def set_cursor(self, moment: dt.datetime) -> None:
        entity = {
            "PartitionKey": CURSOR_PARTITION,
            "RowKey": self._layout.cursor_row,
            self._layout.cursor_field: iso(moment),
        }
        try:
            await self._tables.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._tables._lost(exc) from exc
