"""The status-event outbox: each record's pending status events, and the index the retry timer reads.

A record's pending status events travel in the record itself (``outbox``, JSON), so they are
written in the same entity-group transaction as the status change they describe. Beside that
write, and concurrently with it, each new event gets an index row in ``Due``
(``PartitionKey=o|<shard>``, ``RowKey=<messageId>|<revision>``), so the retry timer finds what is
pending without scanning the records. The index rows are group-committed per ``o|<shard>``
partition, as the records are (``commit.py``): writers to one partition queue up, one at a time
submits everything queued as one entity-group transaction of at most 100 rows, and each writer
hears its own outcome, so a burst costs one transaction per partition per batch, not one request
per event. An event's index row goes once the topic accepted it, when the record's
``publishedRevision`` is raised past it (``docs/storage.md``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from ...domain import StatusChange, TrackingRecord
from ...domain.timestamps import shifted
from ...service.ports import PendingEntry, StorageRejected, StorageUnavailable
from .base import Tables
from .batcher import PartitionBatcher
from .encoding import SEPARATOR, SHARDS, iso, parse_time, record_partition, record_row, shard_of, table_key
from .transaction import submit_transaction

Entity = dict[str, Any]
MAX_TRANSACTION_ENTITIES = 100  # an entity-group transaction's limit
OUTBOX_PREFIX = "o" + SEPARATOR  # never an expiry hour (digits), a retention day (r...) or the cursor
# A new event is left to the in-process publisher this long before the timer takes it up.
OUTBOX_GRACE = dt.timedelta(seconds=60)
# Tries of one index transaction that failed on something that can succeed later (a timeout, a
# 5xx, a table gone and recreated), on top of the client's own retries; then its writers fail.
MAX_INDEX_TRIES = 3


def outbox_partition(message_id: str) -> str:
    return f"{OUTBOX_PREFIX}{shard_of(message_id):02d}"


def _outbox_row(message_id: str, revision: int) -> str:
    return f"{table_key(message_id)}{SEPARATOR}{revision:010d}"


@dataclass
class _IndexWrite:
    """One new event's index row, waiting for its partition's next transaction."""

    entity: Entity
    done: asyncio.Future[None]


def _settle(write: _IndexWrite, exc: BaseException | None) -> None:
    if write.done.done():
        return  # its writer stopped waiting (cancelled): the row is written all the same
    if exc is None:
        write.done.set_result(None)
    else:  # each writer its own instance (one exception object is raised in one task only)
        write.done.set_exception(type(exc)(*exc.args) if isinstance(exc, StorageRejected | StorageUnavailable) else exc)


class OutboxTables(Tables):
    """The outbox index rows of ``Due``, and acknowledging what the topic accepted."""

    def __init__(
        self,
        *args: Any,
        status_listener: Callable[[TrackingRecord], None] | None = None,
        status_events_enabled: bool = False,
        **kwargs: Any,
    ) -> None:
        """``status_listener``, given by the composition root, is called with each record whose
        status events are pending, after its write (or when a no-op finds some still pending), to
        publish them off the caller's path. ``status_events_enabled`` False (no topic configured):
        status changes are counted but no event is kept pending."""
        super().__init__(*args, **kwargs)
        self._status_listener = status_listener
        self._status_events_enabled = status_events_enabled
        self._index_batcher: PartitionBatcher[_IndexWrite] = PartitionBatcher(
            lambda _partition, batch: self._submit_index_rows(batch),
            row=lambda write: str(write.entity["RowKey"]),
            fail=_settle,
            max_items=MAX_TRANSACTION_ENTITIES,
        )

    async def _add_outbox_entries(self, message_id: str, changes: tuple[StatusChange, ...]) -> None:
        """Index rows for new pending events (written beside the record's transaction).

        The rows join their partition's next transaction (group commit); this returns once every
        one of them is stored, or raises :class:`StorageUnavailable` / :class:`StorageRejected`
        (the caller fails and the report is redelivered).
        """
        partition = outbox_partition(message_id)
        loop = asyncio.get_running_loop()
        writes = [
            _IndexWrite(
                {
                    "PartitionKey": partition,
                    "RowKey": _outbox_row(message_id, change.revision),
                    "messageId": message_id,
                    "revision": change.revision,
                    "since": iso(change.at),
                    "nextAt": iso(shifted(change.at, OUTBOX_GRACE)),
                    "attempts": 0,
                },
                loop.create_future(),
            )
            for change in changes
        ]
        self._index_batcher.enqueue(partition, writes)
        outcomes = await asyncio.gather(*(w.done for w in writes), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _submit_index_rows(self, batch: list[_IndexWrite]) -> None:
        """One transaction of replace-upserts (idempotent, so a retry is safe), classified as base.py does.

        A row the service refuses on its own (a permanent 4xx naming it) fails its writer alone and
        the others go again without it; a failure that can pass (timeout, 5xx, 429, a table gone:
        recreated first) is tried again, up to ``MAX_INDEX_TRIES``; anything else, or the last try,
        fails every writer of the batch, and none is told it is stored.
        """
        tries = 0
        while batch:
            tries += 1
            try:
                await submit_transaction(
                    self.due_table, [("upsert", w.entity, {"mode": UpdateMode.REPLACE}) for w in batch]
                )
            except (AzureError, OSError) as exc:
                lost = self._lost(exc)
                index = getattr(exc, "index", None)
                if (
                    isinstance(exc, TableTransactionError)
                    and isinstance(lost, StorageRejected)
                    and len(batch) > 1
                    and isinstance(index, int)
                    and 0 <= index < len(batch)
                    and str(index) == exc.message.split(":", 1)[0].strip()  # the service named that row
                ):
                    _settle(batch.pop(index), lost)
                    tries -= 1  # the others have not failed yet
                    continue
                if isinstance(lost, StorageRejected) or tries >= MAX_INDEX_TRIES:
                    for write in batch:
                        _settle(write, lost)
                    return
                if self._ready is None:  # the table went: create it again before the next try
                    try:
                        await self.ensure_tables()
                    except (StorageUnavailable, StorageRejected) as failed:
                        for write in batch:
                            _settle(write, failed)
                        return
                await asyncio.sleep(random.uniform(0, 0.05 * 2**tries))
                continue
            for write in batch:
                _settle(write, None)
            return

    async def pending_status_events(self, now: dt.datetime, limit: int) -> list[PendingEntry]:
        """At most ``limit`` index rows due for a retry (their ``nextAt`` passed), from every shard."""
        await self.ensure_tables()
        per_shard = max(1, limit // SHARDS)

        async def shard(n: int) -> list[PendingEntry]:
            found: list[PendingEntry] = []
            async for entity in self.due_table.query_entities(
                "PartitionKey eq @pk and nextAt le @now",
                parameters={"pk": f"{OUTBOX_PREFIX}{n:02d}", "now": iso(now)},
                results_per_page=per_shard,
            ):
                found.append(
                    PendingEntry(
                        str(entity["messageId"]),
                        int(entity["revision"]),
                        parse_time(entity["since"]),
                        int(entity.get("attempts", 0)),
                    )
                )
                if len(found) >= per_shard:
                    break
            return found

        try:
            shards = await asyncio.gather(*(shard(n) for n in range(SHARDS)))
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return [entry for entries in shards for entry in entries]

    async def postpone_status_event(self, entry: PendingEntry, next_at: dt.datetime) -> None:
        """Try this event again at ``next_at`` (one more attempt counted)."""
        entity = {
            "PartitionKey": outbox_partition(entry.message_id),
            "RowKey": _outbox_row(entry.message_id, entry.revision),
            "nextAt": iso(next_at),
            "attempts": entry.attempts + 1,
        }
        try:
            await self.due_table.update_entity(entity, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            pass  # published meanwhile
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def acknowledge_status_events(self, accepted: Sequence[tuple[TrackingRecord, list[int]]]) -> None:
        """The topic accepted these events: raise each record's ``publishedRevision``, drop their rows.

        Records are merged without a read (one property; if one moved or is gone, its rows stay and
        the timer settles them), and rows deleted, both at once; what shares a partition goes in one
        entity-group transaction (a burst's acknowledgements cost a transaction per shard, not a
        request per event), falling back to single requests when a transaction is refused.
        """
        merges: dict[str, list[Entity]] = defaultdict(list)
        deletes: dict[str, list[Entity]] = defaultdict(list)
        for record, revisions in accepted:
            if not revisions:
                continue
            partition = record_partition(record.tag, record.message_id)
            merges[partition].append(
                {
                    "PartitionKey": partition,
                    "RowKey": record_row(record.message_id),
                    "publishedRevision": max(revisions),
                }
            )
            for revision in revisions:
                row = {
                    "PartitionKey": outbox_partition(record.message_id),
                    "RowKey": _outbox_row(record.message_id, revision),
                }
                deletes[row["PartitionKey"]].append(row)
        await asyncio.gather(
            *(self._in_groups(self.records, "update", group) for group in merges.values()),
            *(self._in_groups(self.due_table, "delete", group) for group in deletes.values()),
        )

    async def _in_groups(self, table: TableClient, kind: str, entities: list[Entity]) -> None:
        """``kind`` on every entity of one partition, up to 100 per transaction; one by one if refused."""
        for start in range(0, len(entities), MAX_TRANSACTION_ENTITIES):
            group = entities[start : start + MAX_TRANSACTION_ENTITIES]
            options: dict[str, Any] = {"mode": UpdateMode.MERGE} if kind == "update" else {}
            try:
                if len(group) > 1:
                    await submit_transaction(table, [(kind, e, options) for e in group])
                    continue
            except TableTransactionError:
                pass  # one entity missing (published meanwhile, or retired) fails them all: go one by one
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc
            for entity in group:
                await self._one(table, kind, entity)

    async def _one(self, table: TableClient, kind: str, entity: Entity) -> None:
        try:
            if kind == "update":
                await table.update_entity(entity, mode=UpdateMode.MERGE)
            else:
                await table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def drop_status_entry(self, message_id: str, revision: int) -> None:
        """Forget an index row whose event is published or can no longer be (the record is gone)."""
        await self._drop_entry(message_id, revision)

    async def _drop_entry(self, message_id: str, revision: int) -> None:
        try:
            await self.due_table.delete_entity(outbox_partition(message_id), _outbox_row(message_id, revision))
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
