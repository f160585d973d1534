"""The expiry index: hourly buckets of due messages, and the timer's cursor (a :class:`TimeIndex`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import Tables
from .encoding import due_bucket
from .time_index import TimeIndex, TimeIndexLayout

EXPIRY = TimeIndexLayout(bucket=due_bucket, time_field="dueAt", cursor_row="expiry", cursor_field="hour")


class ExpiryTables(Tables):
    """The expiry rows of the ``Due`` table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expiry = TimeIndex(self, EXPIRY)

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None:
        await self._expiry.add(message_id, due_at)

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]:
        return await self._expiry.bucket(hour)

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None:
        await self._expiry.remove(message_id, due_at)

    async def due_cursor(self) -> dt.datetime | None:
        """The first hour bucket not yet fully handled by the expiry timer."""
        return await self._expiry.cursor()

    async def set_due_cursor(self, hour: dt.datetime) -> None:
        await self._expiry.set_cursor(hour)
