"""The tags by activity: one row per tag in ``Tags`` (``PartitionKey=tag``, ``RowKey=<tag>``).

A write to a tag's records touches its row (``lastActivityAt``) beside the write, at most once
per :data:`TOUCH_EVERY` per tag and worker, so the row costs a round trip now and then, not per
message, and never lengthens a write's read-decide-write window. Listing reads the one
partition (its size is the number of tags, never the number of messages), newest activity
first; the page's counts come from each tag's shard counters.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode

from ...logs import log_event
from ...service.ports import TagActivity
from .encoding import iso, parse_time, table_key
from .tokens import TokenSealing

_log = logging.getLogger("mms_tracker.storage")
TAG_PARTITION = "tag"
TOUCH_EVERY = 30.0  # seconds: lastActivityAt is exact to within this
MAX_TOUCHED = 10_000  # tags whose last touch a worker remembers


class TagIndex(TokenSealing):
    """The ``Tags`` table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._touched: dict[str, float] = {}  # tag -> when this worker last touched its row (monotonic)

    async def _touch_tag(self, tag: str | None, at: dt.datetime) -> None:
        """Say ``tag`` was active at ``at``; run beside the record's write, never in its way.

        One touch per tag and worker per :data:`TOUCH_EVERY` (concurrent writers share it). A failed
        touch is logged and forgotten: the records and counters are written regardless, and the
        tag's next write touches it again, so the index catches up without holding ingest back.
        """
        if not tag:
            return
        now = time.monotonic()
        last = self._touched.get(tag)
        if last is not None and now - last < TOUCH_EVERY:
            return
        if len(self._touched) >= MAX_TOUCHED:
            self._touched.clear()
        self._touched[tag] = now  # claimed before the round trip: concurrent writers skip it
        entity = {"PartitionKey": TAG_PARTITION, "RowKey": table_key(tag), "tag": tag, "lastActivityAt": iso(at)}
        try:
            await self.tags.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            self._touched.pop(tag, None)
            log_event(_log, logging.WARNING, "tag_touch_failed", reason=type(exc).__name__)

    async def tag_activity(
        self, page_size: int, continuation_token: str | None
    ) -> tuple[list[TagActivity], str | None]:
        """One page of tags, newest activity first (ties by tag); the token resumes after the last one."""
        await self.ensure_tables()
        key = await self._sealing_key()
        after: tuple[str, str] | None = None
        if continuation_token:
            position = self._open_token(key, continuation_token, "", None, kind="tags")
            after = (str(position.get("a", "")), str(position.get("t", "")))
        try:
            rows = [
                (str(e["lastActivityAt"]), str(e["tag"]))
                async for e in self.tags.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": TAG_PARTITION}, select=["tag", "lastActivityAt"]
                )
            ]
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        rows.sort(key=lambda row: (_descending(row[0]), row[1]))
        if after is not None:
            rows = [row for row in rows if (_descending(row[0]), row[1]) > (_descending(after[0]), after[1])]
        page = rows[:page_size]
        token = None
        if len(rows) > page_size:
            token = self._seal_token(key, {"a": page[-1][0], "t": page[-1][1]}, "", None, kind="tags")
        return [TagActivity(tag, parse_time(at)) for at, tag in page], token


def _descending(at: str) -> tuple[int, ...]:
    """A sort key that puts later ISO timestamps first."""
    moment = parse_time(at)
    return (-int(moment.timestamp() * 1_000_000),)
