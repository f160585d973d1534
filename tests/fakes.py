"""Hand-written fakes for the ports (no mocking library)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from mms_tracker.domain import Change, TrackingRecord


class InMemoryStore:
    """The :class:`mms_tracker.service.ports.TrackingStore` port, in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, TrackingRecord] = {}
        self.due_entries: dict[str, dt.datetime] = {}
        self.poison: list[tuple[Mapping[str, Any], str]] = []
        self.cursor: dt.datetime | None = None

    async def get(self, message_id: str) -> TrackingRecord | None:
        return self.records.get(message_id)

    async def apply(
        self, message_id: str, decide: Callable[[TrackingRecord | None], Change | None], *, expect_new: bool = False
    ) -> Change | None:
        change = decide(self.records.get(message_id))
        if change is not None and change.changed:
            self.records[message_id] = change.after
        return change

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None:
        self.due_entries[message_id] = due_at

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]:
        return [(m, d) for m, d in self.due_entries.items() if d.replace(minute=0, second=0, microsecond=0) == hour]

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None:
        self.due_entries.pop(message_id, None)

    async def due_cursor(self) -> dt.datetime | None:
        return self.cursor

    async def set_due_cursor(self, hour: dt.datetime) -> None:
        self.cursor = hour

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None:
        self.poison.append((envelope, reason))
