"""Records with their tag index: read-decide-write under ETags, tag listing and counts."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from ...domain import Change, Status, TrackingRecord
from ...service.ports import (
    Page,
    StorageConflict,
)
from .encoding import (
    MAX_CONFLICT_RETRIES,
    RECORD_ROW,
    decode_record,
    encode_record,
    table_key,
)
from .tokens import TokenSealing


class RecordTables(TokenSealing):
    """The ``Messages`` and ``Tags`` tables."""

    # --- records ---------------------------------------------------------------------------

    async def get(self, message_id: str) -> TrackingRecord | None:
        entity = await self._read(message_id)
        return None if entity is None else decode_record(entity)

    async def apply(
        self, message_id: str, decide: Callable[[TrackingRecord | None], Change | None], *, expect_new: bool = False
    ) -> Change | None:
        """Read-decide-write under ETags, retried on conflict.

        ``expect_new`` skips the first read (a create that finds the record already there falls
        back to reading). The tag index lives in another partition, so it cannot share the
        record's transaction; instead every index write is followed by an ETag-guarded commit by
        the same writer: the change itself, or, for a writer whose earlier index write lost the
        race and who now has nothing to change, a "touch" that re-commits the record as read.
        The last successful commit therefore always follows the last index write that could
        matter, and the index converges to the committed record.

        A message belongs to the first tag recorded for it, and that tag never changes. A writer
        that lost a race after writing an index row under another tag (concurrent first reports
        carrying different tags) removes that row, so no message is counted in a tag it does not
        belong to.
        """
        await self.ensure_tables()
        index_dirty = False
        written: set[str] = set()  # tags this writer wrote an index row under
        for attempt in range(MAX_CONFLICT_RETRIES):
            entity = None if (expect_new and attempt == 0) else await self._read(message_id)
            current = None if entity is None else decode_record(entity)
            await self._drop_index_rows(message_id, written, current)
            change = decide(current)
            if change is None or not change.changed:
                if not index_dirty or entity is None or current is None or not current.tag:
                    return change
                await self._write_index(current)
                written.add(current.tag)
                if await self._committed(current, entity):
                    return change
            else:
                if change.after.tag:
                    await self._write_index(change.after)
                    written.add(change.after.tag)
                    index_dirty = True
                if await self._committed(change.after, entity):
                    await self._drop_index_rows(message_id, written, change.after)
                    return change
            await asyncio.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 6)))
        entity = await self._read(message_id)
        await self._drop_index_rows(message_id, written, None if entity is None else decode_record(entity))
        raise StorageConflict(f"gave up after {MAX_CONFLICT_RETRIES} conflicting writes")

    async def _drop_index_rows(self, message_id: str, written: set[str], committed: TrackingRecord | None) -> None:
        """Remove the index rows this writer wrote under a tag that is not the committed record's."""
        if committed is None:
            return  # nothing committed yet: the rows may still become right
        for tag in [t for t in written if t != committed.tag]:
            try:
                await self.tags.delete_entity(table_key(tag), table_key(message_id))
            except ResourceNotFoundError:
                pass
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc
            written.discard(tag)

    async def _committed(self, record: TrackingRecord, previous: Mapping[str, Any] | None) -> bool:
        """Commit ``record`` over ``previous`` (its ETag) or as new; False when another writer got there first."""
        try:
            await self._commit(record, previous)
        except (ResourceExistsError, ResourceModifiedError):
            return False
        except HttpResponseError as exc:
            if exc.status_code != 412:
                raise self._lost(exc) from exc
            return False
        return True

    async def _read(self, message_id: str) -> dict[str, Any] | None:
        try:
            entity = await self.messages.get_entity(table_key(message_id), RECORD_ROW)
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return dict(entity) | {"__etag": entity.metadata["etag"]}

    async def _commit(self, record: TrackingRecord, previous: Mapping[str, Any] | None) -> None:
        entity = encode_record(record)
        try:
            if previous is None:
                await self.messages.create_entity(entity)
            else:
                await self.messages.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=previous["__etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, HttpResponseError):
            raise
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def _write_index(self, record: TrackingRecord) -> None:
        assert record.tag
        entity = encode_record(record, with_history=False)
        entity["PartitionKey"] = table_key(record.tag)
        entity["RowKey"] = table_key(record.message_id)
        try:
            await self.tags.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    # --- tag queries ---------------------------------------------------------------------

    async def list_tag(self, tag: str, status: Status | None, page_size: int, continuation_token: str | None) -> Page:
        """One page of the tag's index partition, optionally filtered by status."""
        await self.ensure_tables()
        key = await self._sealing_key()
        position = self._open_token(key, continuation_token, tag, status) if continuation_token else None
        query = "PartitionKey eq @pk" + (" and status eq @status" if status else "")
        parameters = {"pk": table_key(tag)} | ({"status": status.value} if status else {})
        try:
            pages = self.tags.query_entities(query, parameters=parameters, results_per_page=page_size).by_page(
                continuation_token=position  # type: ignore[arg-type]  # the Tables pager takes its dict token
            )
            items = [decode_record(e) async for e in await anext(pages)]
            next_position = pages.continuation_token  # type: ignore[attr-defined]
        except StopAsyncIteration:
            items, next_position = [], None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        token = self._seal_token(key, next_position, tag, status) if next_position else None
        return Page(items, token)

    async def tag_counts(self, tag: str) -> Counter[str]:
        """Messages per status in the tag's index partition."""
        await self.ensure_tables()
        counts: Counter[str] = Counter()
        try:
            async for entity in self.tags.query_entities(
                "PartitionKey eq @pk", parameters={"pk": table_key(tag)}, select=["status"], results_per_page=1000
            ):
                counts[str(entity.get("status"))] += 1
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return counts
