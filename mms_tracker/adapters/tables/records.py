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
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import replace

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from ...domain import Change, Status, TrackingRecord, absorb
from ...domain.statistics import counter_delta
from ...domain.timestamps import shifted
from ...service.ports import Page, StorageConflict
from .commit import Entity, GroupCommit, RecordMoved, upsert
from .encoding import (
    INDEX_FIELDS,
    MAX_CONFLICT_RETRIES,
    POINTER_ROW,
    RECORD_PREFIX,
    SEPARATOR,
    counts_of,
    decode_record,
    encode_record,
    record_partition,
    record_row,
    table_key,
    tag_partitions,
    tag_range,
)
from .outbox import OutboxTables
from .tag_index import TagIndex


class RecordTables(TagIndex, OutboxTables, GroupCommit):
    """The ``Records`` and ``Ids`` tables."""

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
        counters = await self.tag_counters(tag)
        return {status: counters[status] for status in counts_of(None)}

    async def tag_counters(self, tag: str) -> dict[str, int]:
        """Every counter of the tag (statuses, latency buckets, failure reasons), summed over its shards."""
        await self.ensure_tables()
        shards = await asyncio.gather(*(self._read_counter(p) for p in tag_partitions(tag)))
        totals = counts_of(None)
        for counts, _ in shards:
            for key, n in counts.items():
                totals[key] = totals.get(key, 0) + n
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
                if current is not None and current.pending and self._status_events_enabled:
                    # Still pending: a publish failed, or the index row did (the caller then failed and
                    # this is the redelivery). The rows are written again (an upsert), so the retry
                    # timer finds the events even if no worker publishes them.
                    await self._add_outbox_entries(message_id, current.pending)
                    if self._status_listener is not None:
                        self._status_listener(current)
                return change
            try:
                if current is None:
                    # The partition's tag is the message's first tag: the record says so whoever creates it.
                    partition, claimed_tag = await self._claim(message_id, partition, change.after.tag)
                    change = replace(change, after=replace(change.after, tag=claimed_tag))
                    await self._write(partition, entity, current, change.after)
                elif current.tag is None and change.after.tag is not None:
                    await self._move(message_id, partition, entity, current, change.after)
                else:
                    await self._write(partition, entity, current, change.after)
                if change.after.pending and self._status_listener is not None and self._status_events_enabled:
                    self._status_listener(change.after)
                return change
            except RecordMoved:
                pass
            await asyncio.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 6)))
            partition = await self._pointer(message_id) or partition
            entity = await self._read(partition, message_id)
        raise StorageConflict(f"gave up after {MAX_CONFLICT_RETRIES} conflicting writes")

    async def _locate(self, message_id: str, tag: str | None, *, skip_read: bool) -> tuple[str, Entity | None]:
        hinted = record_partition(tag, message_id) if tag is not None else None
        if hinted is not None and not skip_read:
            entity = await self._read(hinted, message_id)
            if entity is not None:
                return hinted, entity
        pointer = await self._pointer(message_id)
        if pointer is None:
            return hinted or record_partition(None, message_id), None
        if pointer == hinted and not skip_read:
            return hinted, None  # claimed, not yet written: already read above
        return pointer, await self._read(pointer, message_id)

    async def _move(
        self, message_id: str, partition: str, entity: Entity | None, before: TrackingRecord, after: TrackingRecord
    ) -> None:
        """An untagged record (a report without a tag came first) joins the tag its send names.

        The tag's partition gets the record first (created, or, if a copy is already there from an
        earlier or concurrent move, the two folded together), then the pointer, then the untagged
        copy is removed with its counters. If the untagged copy changed meanwhile (a report without
        a tag, which follows the pointer, landed on it), it is read again, folded into the tag's
        copy, and removed again: no report is lost, and a retry resumes where a move stopped.
        """
        target = record_partition(after.tag, message_id)
        moving = after
        for attempt in range(MAX_CONFLICT_RETRIES):
            existing = await self._read(target, message_id)
            try:
                if existing is None:
                    await self._write(target, None, None, moving)
                else:
                    current = decode_record(existing)
                    merged = absorb(current, moving, moving.updated_at)
                    if merged.changed:
                        await self._write(target, existing, current, merged.after)
            except RecordMoved:
                continue  # the tag's copy changed under us: fold again
            await self._point(message_id, target, after.tag)
            if entity is None:
                return
            guard = {"etag": entity["__etag"], "match_condition": MatchConditions.IfNotModified}
            operation = ("delete", {"PartitionKey": partition, "RowKey": record_row(message_id)}, guard)
            try:
                await self._commit(partition, operation, counter_delta(before, None))
                return
            except RecordMoved:
                entity = await self._read(partition, message_id)  # it changed: fold its news in, then retry
                if entity is None:
                    return
                before = decode_record(entity)
                moving = absorb(replace(after, updated_at=before.updated_at), before, before.updated_at).after
            await asyncio.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 6)))
        raise StorageConflict(f"gave up moving {message_id!r} after {MAX_CONFLICT_RETRIES} tries")

    async def _claim(self, message_id: str, partition: str, tag: str | None) -> tuple[str, str | None]:
        """Point ``Ids`` at ``partition`` for a new record; if another writer claimed first, take theirs.

        Returns the claimed partition and its tag. A claim found as it is gets touched (its ETag
        moves), so that retention, which drops a pointer only if it did not move, keeps it.
        """
        try:
            await self.ids.create_entity(_pointer_entity(message_id, partition, tag))
            return partition, tag
        except ResourceExistsError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        claimed = await self._pointer_entity(message_id)
        if claimed is None or claimed[0] != partition:
            raise RecordMoved  # the record belongs elsewhere (its first tag), or the claim just went
        await self._point(message_id, claimed[0], claimed[1])
        return claimed[0], claimed[1]

    async def _point(self, message_id: str, partition: str, tag: str | None) -> None:
        try:
            await self.ids.upsert_entity(_pointer_entity(message_id, partition, tag), mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def _write(
        self, partition: str, entity: Entity | None, before: TrackingRecord | None, after: TrackingRecord
    ) -> None:
        """The record, and its shard's counters when its status moves: one entity-group transaction."""
        delta = counter_delta(before, after)  # the status, and a Delivered latency or a Failed reason
        etag = entity["__etag"] if entity is not None else None
        if not self._status_events_enabled:  # no topic: revisions are counted, no event is kept pending
            after = replace(after, published_revision=after.status_revision)
        new = tuple(c for c in after.pending if before is None or c.revision > before.status_revision)
        commit = self._commit(partition, upsert(encode_record(after, partition), etag), delta)
        touch = self._touch_tag(after.tag, after.updated_at)  # the tag's listing row, beside the write
        if not new:
            await asyncio.gather(commit, touch)
            return
        # The events are in the record's own write; their index rows (for the retry timer) go beside it.
        outcomes = await asyncio.gather(
            commit, self._add_outbox_entries(after.message_id, new), touch, return_exceptions=True
        )
        for outcome in outcomes:  # the commit's failure first: RecordMoved sends the writer round again
            if isinstance(outcome, BaseException):
                raise outcome

    # --- retention -------------------------------------------------------------------------

    async def retire(self, message_id: str, now: dt.datetime, keep: dt.timedelta) -> dt.datetime | None:
        """Delete a record completed ``keep`` ago or more, counting it out of its shard in the same
        transaction, then its pointer (only if no writer touched it meanwhile: a late report that
        recreated the record keeps it reachable); otherwise say when to look again."""
        await self.ensure_tables()
        pointer = await self._pointer_entity(message_id)
        entity = None if pointer is None else await self._read(pointer[0], message_id)
        if pointer is None or entity is None:
            if pointer is not None:
                await self._drop_pointer(message_id, pointer[2])
            return None
        record = decode_record(entity)
        due = shifted(record.completed_at or now, keep)  # 9999-12-31 saturates: looked at never again
        if record.completed_at is None or due > now:
            return due
        guard = {"etag": entity["__etag"], "match_condition": MatchConditions.IfNotModified}
        operation = ("delete", {"PartitionKey": pointer[0], "RowKey": record_row(message_id)}, guard)
        try:
            await self._commit(pointer[0], operation, counter_delta(record, None))
        except RecordMoved:
            return now  # it changed meanwhile (a late report): look again on the next run
        await self._drop_pointer(message_id, pointer[2])
        return None

    async def _drop_pointer(self, message_id: str, etag: str) -> None:
        """Delete the pointer unless a writer touched it since ``etag`` (it recreated the record)."""
        try:
            await self.ids.delete_entity(
                table_key(message_id), POINTER_ROW, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass
        except HttpResponseError as exc:
            if exc.status_code != 412:
                raise self._lost(exc) from exc
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    # --- single reads --------------------------------------------------------------------

    async def _read(self, partition: str, message_id: str) -> Entity | None:
        try:
            entity = await self.records.get_entity(partition, record_row(message_id))
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return dict(entity) | {"__etag": entity.metadata["etag"]}

    async def _pointer(self, message_id: str) -> str | None:
        pointer = await self._pointer_entity(message_id)
        return None if pointer is None else pointer[0]

    async def _pointer_entity(self, message_id: str) -> tuple[str, str | None, str] | None:
        """The partition a message's record lives in, its tag, and the pointer's ETag."""
        try:
            entity = await self.ids.get_entity(table_key(message_id), POINTER_ROW)
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        partition = entity.get("partition")
        if not isinstance(partition, str) or SEPARATOR not in partition:
            return None
        return partition, str(entity.get("tag") or "") or None, str(entity.metadata["etag"])


def _pointer_entity(message_id: str, partition: str, tag: str | None) -> Entity:
    return {"PartitionKey": table_key(message_id), "RowKey": POINTER_ROW, "partition": partition, "tag": tag or ""}
