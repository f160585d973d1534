"""Group commit: the writes to one partition go together, the shard's counters once per transaction.

Writers to one partition queue up; one of them at a time submits everything queued (up to 99
records and the counters, once, with the sum of their changes), so a burst on a shard costs one
transaction per batch instead of one per record, and the counters' ETag moves once per batch.
A writer whose own record op fails (its ETag moved) hears :class:`RecordMoved` and decides
again; the others are submitted again without it (``docs/storage.md``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from ...service.ports import StorageConflict
from .base import Tables
from .batcher import PartitionBatcher
from .encoding import COUNTER_ROW, counter_entity, counts_of
from .transaction import submit_transaction

Entity = dict[str, Any]
# A shard's counters are shared by every message of the shard, so under a burst their ETag moves
# often; each retry re-reads only the counters (the record's ETag still holds).
MAX_COUNTER_RETRIES = 40
MAX_CACHED_COUNTERS = 10_000  # shards whose counters a worker remembers (16 per tag)
# An entity-group transaction holds at most 100 entities and 4 MiB: 99 records and the counters,
# and well under the size (a record's history is at most 30,000 characters of JSON).
MAX_BATCH_RECORDS = 99
MAX_BATCH_CHARS = 2_000_000


def guarded(etag: str) -> dict[str, Any]:
    """Replace only if the entity is still at ``etag``."""
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def upsert(entity: Entity, etag: str | None) -> tuple[Any, ...]:
    """A transaction operation: create when there is no ETag (fails if it exists), else a guarded replace."""
    return ("create", entity) if etag is None else ("update", entity, guarded(etag))


class RecordMoved(Exception):
    """The record changed, or appeared, under us: read it again and decide again."""


@dataclass
class _Write:
    """One writer's part of a partition's next transaction."""

    row: str
    operation: tuple[Any, ...]
    delta: dict[str, int]  # counter key (a status, a latency bucket, a failure reason) -> change
    done: asyncio.Future[None]


def _fail(write: _Write, exc: BaseException) -> None:
    if not write.done.done():
        write.done.set_exception(exc if isinstance(exc, RecordMoved) else _copy(exc))


def _copy(exc: BaseException) -> BaseException:
    """A writer's own instance of a shared failure (one exception object is raised in one task only)."""
    try:
        return type(exc)(*exc.args)
    except TypeError:
        return exc


class GroupCommit(Tables):
    """The partition queues, their committers, and each shard's counters as this worker last knew them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batcher: PartitionBatcher[_Write] = PartitionBatcher(
            self._commit_batch,
            row=lambda write: write.row,
            fail=_fail,
            max_items=MAX_BATCH_RECORDS,
            weight=lambda write: len(repr(write.operation)),
            max_weight=MAX_BATCH_CHARS,
        )
        self._commit_tasks = self._batcher.tasks  # the committers running (the race tests wait for them)

    async def _commit(self, partition: str, operation: tuple[Any, ...], delta: Mapping[str, int]) -> None:
        """Join the partition's next transaction (group commit) and wait for it.

        Writers to one partition queue up; one of them at a time submits everything queued (up to
        99 records and the counters, once, with the sum of their changes), so a burst on a shard
        costs one transaction per batch instead of one per record, and the counters' ETag moves
        once per batch. A writer whose own record op fails (its ETag moved) gets
        :class:`RecordMoved` and decides again; the others are submitted again without it.
        """
        write = _Write(operation[1]["RowKey"], operation, dict(delta), asyncio.get_running_loop().create_future())
        self._batcher.enqueue(partition, [write])
        await write.done

    async def _commit_batch(self, partition: str, batch: list[_Write]) -> None:
        """Submit ``batch`` with the counters' change; a writer whose record moved leaves and the rest go again."""
        attempt: int | None = 0
        while batch and attempt is not None:
            counts, counter_op = await self._counter_update(partition, batch)
            operations = [w.operation for w in batch] + ([counter_op] if counter_op else [])
            try:
                results = await submit_transaction(self.records, operations)
            except TableTransactionError as exc:
                attempt = await self._after_refusal(partition, batch, exc, attempt)
                continue
            except (AzureError, OSError) as exc:
                for write in batch:
                    _fail(write, self._lost(exc))
                return
            if counter_op is not None:
                self._remember_counters(partition, counts, results[-1].get("etag"))
            for write in batch:
                if not write.done.done():
                    write.done.set_result(None)
            return

    async def _counter_update(
        self, partition: str, batch: list[_Write]
    ) -> tuple[dict[str, int], tuple[Any, ...] | None]:
        """The shard's counters after the batch's changes, and the guarded write of them (None: no change)."""
        delta: dict[str, int] = {}
        for write in batch:
            for status, n in write.delta.items():
                delta[status] = delta.get(status, 0) + n
        if not any(delta.values()):
            return {}, None
        counts, counter_etag = await self._counter(partition)
        counts = {key: counts.get(key, 0) + delta.get(key, 0) for key in counts.keys() | delta.keys()}
        return counts, upsert(counter_entity(partition, counts), counter_etag)

    async def _after_refusal(
        self, partition: str, batch: list[_Write], exc: TableTransactionError, attempt: int
    ) -> int | None:
        """What a refused transaction leaves to try: the next attempt's number, or None when every writer was told."""
        if exc.status_code not in (404, 409, 412) or getattr(exc, "error_code", None) == "TableNotFound":
            for write in batch:
                _fail(write, self._lost(exc))
            return None
        if exc.index < len(batch):
            _fail(batch.pop(exc.index), RecordMoved())
            return attempt
        self._counters.pop(partition, None)  # the counters moved: another worker wrote them
        attempt += 1
        if attempt >= MAX_COUNTER_RETRIES:
            for write in batch:
                _fail(write, StorageConflict("the shard's counters kept changing"))
            return None
        await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
        return attempt

    def _remember_counters(self, partition: str, counts: dict[str, int], etag: str | None) -> None:
        if etag:
            if len(self._counters) >= MAX_CACHED_COUNTERS:
                self._counters.clear()  # a cache, not a record: a stale or missing entry costs one read
            self._counters[partition] = (counts, etag)
        else:
            self._counters.pop(partition, None)

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
