"""The retention index: when to look at a message again for deletion, in day buckets of ``Due``.

Partitions ``r<YYYYMMDD>`` (never an hour bucket of the expiry index, which are digits only), one
row per message; the timer's cursor is ``cursor/retention`` (a :class:`TimeIndex`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import Tables
from .encoding import time_key
from .time_index import TimeIndex, TimeIndexLayout


def retirement_bucket(moment: dt.datetime) -> str:
    return "r" + time_key(moment, 8)


RETENTION = TimeIndexLayout(bucket=retirement_bucket, time_field="at", cursor_row="retention", cursor_field="day")


class RetentionTables(Tables):
    """The retention rows of the ``Due`` table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retention = TimeIndex(self, RETENTION)

    async def add_retirement(self, message_id: str, at: dt.datetime) -> None:
        await self._retention.add(message_id, at)

    async def retirements(self, day: dt.datetime, limit: int) -> list[tuple[str, dt.datetime]]:
        """At most ``limit`` of the day's retention rows (the timer comes back for more)."""
        return await self._retention.bucket(day, limit)

    async def remove_retirement(self, message_id: str, at: dt.datetime) -> None:
        await self._retention.remove(message_id, at)

    async def retirement_cursor(self) -> dt.datetime | None:
        return await self._retention.cursor()

    async def set_retirement_cursor(self, day: dt.datetime) -> None:
        await self._retention.set_cursor(day)
