"""Records and their counters, in the partitions of their tag's shards (``docs/storage.md``).

A record lives in ``Records`` at ``PartitionKey=<tag>|<shard>``, ``RowKey=r|<messageId>``; the
same partition holds that shard's counters (``RowKey=c``: messages per status). A change of
status writes the record and the counters in one entity-group transaction, each guarded by its
ETag, so a counter moves exactly once per status change, whatever is retried or redelivered. A
change that keeps the status (another non-final report) writes the record alone. ``Ids`` maps a
message id to its partition for readers that know only the id.

Round trips, common case: a report that carries its tag reads the record (1) and writes it with
the counters (1); a duplicate reads it (1). A summary reads the tag's shard counters
concurrently (one round trip of latency). Reading by id reads the pointer, then the record (2).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode

from ...domain import Change, Status, TrackingRecord
from ...service.ports import Page, StorageConflict
from .encoding import (
    COUNTER_ROW,
    INDEX_FIELDS,
    MAX_CONFLICT_RETRIES,
    POINTER_ROW,
    RECORD_PREFIX,
    SEPARATOR,
    counter_entity,
    counts_of,
    decode_record,
    encode_record,
    record_partition,
    record_row,
    table_key,
    tag_partitions,
    tag_range,
)
from .tokens import TokenSealing

_Entity = dict[str, Any]
# A shard's counters are shared by every message of the shard, so under a burst their ETag moves
# often; each retry re-reads only the counters (the record's ETag still holds).
MAX_COUNTER_RETRIES = 40
# An entity-group transaction holds at most 100 entities and 4 MiB: 99 records and the counters,
# and well under the size (a record's history is at most 30,000 characters of JSON).
MAX_BATCH_RECORDS = 99
MAX_BATCH_CHARS = 2_000_000


def _guarded(etag: str) -> dict[str, Any]:
    """Replace only if the entity is still at ``etag``."""
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def _upsert(entity: _Entity, etag: str | None) -> tuple[Any, ...]:
    """A transaction operation: create when there is no ETag (fails if it exists), else a guarded replace."""
    return ("create", entity) if etag is None else ("update", entity, _guarded(etag))


class _RecordMoved(Exception):
    """The record changed, or appeared, under us: read it again and decide again."""


@dataclass
class _Write:
    """One writer's part of a partition's next transaction."""

    row: str
    operation: tuple[Any, ...]
    delta: dict[str, int]
    done: asyncio.Future[None]


def _fail(write: _Write, exc: BaseException) -> None:
    if not write.done.done():
        write.done.set_exception(exc if isinstance(exc, _RecordMoved) else _copy(exc))


def _copy(exc: BaseException) -> BaseException:
    """A writer's own instance of a shared failure (one exception object is raised in one task only)."""
    try:
        return type(exc)(*exc.args)
    except TypeError:
        return exc


class RecordTables(TokenSealing):
    """The ``Records`` and ``Ids`` tables."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, list[_Write]] = {}  # per partition: writes waiting for the next transaction
        self._committing: set[str] = set()  # partitions whose queue a committer is draining
        self._commit_tasks: set[asyncio.Task[None]] = set()

    # --- reads ---------------------------------------------------------------------------

    async def get(self, message_id: str) -> TrackingRecord | None:
        await self.ensure_tables()
        partition = await self._pointer(message_id)
        entity = None if partition is None else await self._read(partition, message_id)
        return None if entity is None else decode_record(entity)

    async def list_tag(self, tag: str, status: Status | None, page_size: int, continuation_token: str | None) -> Page:
        """One page of the tag's records (without history), read from its shards' partitions only."""
        await self.ensure_tables()
        key = await self._sealing_key()
        position = self._open_token(key, continuation_token, tag, status) if continuation_token else None
        low, high = tag_range(tag)
        query = "PartitionKey ge @low and PartitionKey lt @high and RowKey ge @first and RowKey lt @last"
        parameters = {"low": low, "high": high, "first": RECORD_PREFIX, "last": "r}"}
        if status:
            query += " and status eq @status"
            parameters["status"] = status.value
        try:
            pages = self.records.query_entities(
                query, parameters=parameters, select=INDEX_FIELDS, results_per_page=page_size
            ).by_page(continuation_token=position)  # type: ignore[arg-type]  # the Tables pager takes its dict token
            items = [decode_record(e) async for e in await anext(pages)]
            next_position = pages.continuation_token  # type: ignore[attr-defined]
        except StopAsyncIteration:
            items, next_position = [], None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        token = self._seal_token(key, next_position, tag, status) if next_position else None
        return Page(items, token)

    async def tag_counts(self, tag: str) -> dict[str, int]:
        """Messages per status: the counters of the tag's shards, read concurrently (never a scan)."""
        await self.ensure_tables()
        shards = await asyncio.gather(*(self._read_counter(p) for p in tag_partitions(tag)))
        totals = dict.fromkeys(counts_of(None), 0)
        for counts, _ in shards:
            for status, n in counts.items():
                totals[status] += n
        return totals

    # --- read-decide-write ---------------------------------------------------------------

    async def apply(
        self,
        message_id: str,
        decide: Callable[[TrackingRecord | None], Change | None],
        *,
        tag: str | None = None,
        expect_new: bool = False,
    ) -> Change | None:
        """Read the record, ``decide`` a change, write it (with the counters when the status moves).

        ``tag`` is where the caller expects the record (a report's or a send's own tag): read there
        first. ``expect_new`` (a send) skips that read. A record found elsewhere through ``Ids``
        stays where it is: a message belongs to the first tag recorded for it. Conflicts are
        retried with jittered backoff, up to :data:`MAX_CONFLICT_RETRIES` times.
        """
        await self.ensure_tables()
        partition, entity = await self._locate(message_id, tag, skip_read=expect_new)
        for attempt in range(MAX_CONFLICT_RETRIES):
            current = None if entity is None else decode_record(entity)
            change = decide(current)
            if change is None or not change.changed:
                return change
            try:
                if current is None:
                    partition = await self._claim(message_id, partition)
                    await self._write(partition, entity, current, change.after)
                elif current.tag is None and change.after.tag is not None:
                    await self._move(message_id, partition, entity, current, change.after)
                else:
                    await self._write(partition, entity, current, change.after)
                return change
            except _RecordMoved:
                pass
            await asyncio.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 6)))
            partition = await self._pointer(message_id) or partition
            entity = await self._read(partition, message_id)
        raise StorageConflict(f"gave up after {MAX_CONFLICT_RETRIES} conflicting writes")

    async def _locate(self, message_id: str, tag: str | None, *, skip_read: bool) -> tuple[str, _Entity | None]:
        hinted = record_partition(tag, message_id) if tag is not None else None
        if hinted is not None and not skip_read:
            entity = await self._read(hinted, message_id)
            if entity is not None:
                return hinted, entity
        pointer = await self._pointer(message_id)
        if pointer is None:
            return hinted or record_partition(None, message_id), None
        if pointer == hinted and not skip_read:
            return pointer, None  # claimed, not yet written: already read above
        return pointer, await self._read(pointer, message_id)

    async def _move(
        self, message_id: str, partition: str, entity: _Entity | None, before: TrackingRecord, after: TrackingRecord
    ) -> None:
        """An untagged record (a report without a tag came first) joins the tag its send names.

        Written into the tag's partition first (with its counters), then pointed at, then removed
        from the untagged partition (with its counters), each step guarded; a retry resumes.
        A writer that stops between the first and the last step, or an old copy changed meanwhile,
        leaves the old copy counted among the untagged messages (never in a campaign's counts).
        """
        target = record_partition(after.tag, message_id)
        existing = await self._read(target, message_id)
        if existing is not None:
            raise _RecordMoved  # another writer moved it: decide again against that copy
        await self._write(target, None, None, after)
        try:
            await self.ids.upsert_entity(
                {"PartitionKey": table_key(message_id), "RowKey": POINTER_ROW, "partition": target},
                mode=UpdateMode.REPLACE,
            )
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        assert entity is not None
        await self._remove(partition, message_id, entity["__etag"], before.status)

    async def _remove(self, partition: str, message_id: str, etag: str, status: Status) -> None:
        """Delete a record and count it out of its shard, together (left in place if it changed meanwhile)."""
        guard = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        operation = ("delete", {"PartitionKey": partition, "RowKey": record_row(message_id)}, guard)
        with contextlib.suppress(_RecordMoved):  # the old copy changed or is gone: see _move
            await self._commit(partition, operation, {status.value: -1})

    async def _claim(self, message_id: str, partition: str) -> str:
        """Point ``Ids`` at ``partition`` for a new record; if another writer claimed first, take theirs."""
        try:
            await self.ids.create_entity(
                {"PartitionKey": table_key(message_id), "RowKey": POINTER_ROW, "partition": partition}
            )
        except ResourceExistsError:
            claimed = await self._pointer(message_id)
            if claimed is not None and claimed != partition:
                raise _RecordMoved from None  # the record belongs elsewhere (its first tag)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return partition

    async def _write(
        self, partition: str, entity: _Entity | None, before: TrackingRecord | None, after: TrackingRecord
    ) -> None:
        """The record, and its shard's counters when its status moves: one entity-group transaction."""
        delta: dict[str, int] = {}
        if before is None or before.status is not after.status:
            delta[after.status.value] = 1
            if before is not None:
                delta[before.status.value] = -1
        etag = entity["__etag"] if entity is not None else None
        await self._commit(partition, _upsert(encode_record(after, partition), etag), delta)

    async def _commit(self, partition: str, operation: tuple[Any, ...], delta: Mapping[str, int]) -> None:
        """Join the partition's next transaction (group commit) and wait for it.

        Writers to one partition queue up; one of them at a time submits everything queued (up to
        99 records and the counters, once, with the sum of their changes), so a burst on a shard
        costs one transaction per batch instead of one per record, and the counters' ETag moves
        once per batch. A writer whose own record op fails (its ETag moved) gets
        :class:`_RecordMoved` and decides again; the others are submitted again without it.
        """
        write = _Write(operation[1]["RowKey"], operation, dict(delta), asyncio.get_running_loop().create_future())
        self._pending.setdefault(partition, []).append(write)
        if partition not in self._committing:
            self._committing.add(partition)
            task = asyncio.ensure_future(self._commit_pending(partition))
            self._commit_tasks.add(task)
            task.add_done_callback(self._commit_tasks.discard)
        await write.done

    async def _commit_pending(self, partition: str) -> None:
        try:
            while queue := self._pending.get(partition):
                batch: list[_Write] = []
                rows: set[str] = set()
                size = 0
                for write in list(queue):
                    weight = len(repr(write.operation))
                    if len(batch) == MAX_BATCH_RECORDS or (batch and size + weight > MAX_BATCH_CHARS):
                        break
                    if write.row in rows:
                        continue  # one entity appears once in a transaction: it goes in the next one
                    batch.append(write)
                    rows.add(write.row)
                    size += weight
                    queue.remove(write)
                try:
                    await self._commit_batch(partition, batch)
                except BaseException as exc:
                    for write in batch:  # every writer of the batch hears of it, whatever it is
                        _fail(write, exc)
                    raise
        except BaseException as exc:
            for write in self._pending.pop(partition, []):
                _fail(write, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            # No await since the queue was last seen empty, so no writer can have queued unseen.
            self._committing.discard(partition)

    async def _commit_batch(self, partition: str, batch: list[_Write]) -> None:
        attempt = 0
        while batch:
            delta: dict[str, int] = {}
            for write in batch:
                for status, n in write.delta.items():
                    delta[status] = delta.get(status, 0) + n
            counter_op: tuple[Any, ...] | None = None
            counts: dict[str, int] = {}
            if any(delta.values()):
                counts, counter_etag = await self._counter(partition)
                counts = {status: counts[status] + delta.get(status, 0) for status in counts}
                counter_op = _upsert(counter_entity(partition, counts), counter_etag)
            operations = [w.operation for w in batch] + ([counter_op] if counter_op else [])
            try:
                results = await self.records.submit_transaction(operations)
            except TableTransactionError as exc:
                if exc.status_code not in (404, 409, 412):
                    for write in batch:
                        _fail(write, self._lost(exc))
                    return
                if exc.index < len(batch):
                    _fail(batch.pop(exc.index), _RecordMoved())
                    continue
                self._counters.pop(partition, None)  # the counters moved: another worker wrote them
                attempt += 1
                if attempt >= MAX_COUNTER_RETRIES:
                    for write in batch:
                        _fail(write, StorageConflict("the shard's counters kept changing"))
                    return
                await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
                continue
            except (AzureError, OSError) as exc:
                for write in batch:
                    _fail(write, self._lost(exc))
                return
            if counter_op is not None:
                etag = results[-1].get("etag")
                if etag:
                    self._counters[partition] = (counts, etag)
                else:
                    self._counters.pop(partition, None)
            for write in batch:
                if not write.done.done():
                    write.done.set_result(None)
            return

    # --- retention -------------------------------------------------------------------------

    async def retire(self, message_id: str, now: dt.datetime, keep: dt.timedelta) -> dt.datetime | None:
        """Delete a record completed ``keep`` ago or more, counting it out of its shard in the same
        transaction, then its pointer; otherwise say when to look again."""
        await self.ensure_tables()
        partition = await self._pointer(message_id)
        entity = None if partition is None else await self._read(partition, message_id)
        if entity is None or partition is None:
            await self._drop_pointer(message_id)
            return None
        record = decode_record(entity)
        if record.completed_at is None or record.completed_at + keep > now:
            return (record.completed_at or now) + keep
        guard = {"etag": entity["__etag"], "match_condition": MatchConditions.IfNotModified}
        operation = ("delete", {"PartitionKey": partition, "RowKey": record_row(message_id)}, guard)
        try:
            await self._commit(partition, operation, {record.status.value: -1})
        except _RecordMoved:
            return now  # it changed meanwhile (a late report): look again on the next run
        await self._drop_pointer(message_id)
        return None

    async def _drop_pointer(self, message_id: str) -> None:
        try:
            await self.ids.delete_entity(table_key(message_id), POINTER_ROW)
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    # --- single reads --------------------------------------------------------------------

    async def _read(self, partition: str, message_id: str) -> _Entity | None:
        try:
            entity = await self.records.get_entity(partition, record_row(message_id))
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return dict(entity) | {"__etag": entity.metadata["etag"]}

    async def _pointer(self, message_id: str) -> str | None:
        try:
            entity = await self.ids.get_entity(table_key(message_id), POINTER_ROW)
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        partition = entity.get("partition")
        return partition if isinstance(partition, str) and SEPARATOR in partition else None

    async def _counter(self, partition: str) -> tuple[dict[str, int], str | None]:
        """The shard's counters and their ETag: this worker's last known copy, or a fresh read."""
        cached = self._counters.get(partition)
        return cached if cached is not None else await self._read_counter(partition)

    async def _read_counter(self, partition: str) -> tuple[dict[str, int], str | None]:
        try:
            entity = await self.records.get_entity(partition, COUNTER_ROW)
        except ResourceNotFoundError:
            return counts_of(None), None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return counts_of(entity), entity.metadata["etag"]
