"""Send intents: what a send is about to ask of ACS, kept before the call (``docs/storage.md``).

``Intents`` holds one intent per send request (up to 100 recipients, one ACS call) at
``PartitionKey=<minute it was made, YYYYMMDDHHMM>``, ``RowKey=<intent id>``. The ACS request
body (every recipient's repeatability pair included) is kept zlib-compressed in binary
properties of at most 64,000 bytes: up to 15 on the intent's own row, and on further rows
``<intent id>|<n>`` of the same partition when it is larger, all written in one entity-group
transaction, so an intent is whole or absent. A successful send removes its intent once every
record is written; what remains is what the reconciler must finish, found by a range query on
the partition key (the table holds only sends in flight).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from ...service.ports import IntentTooLarge, SendIntent
from .base import Tables
from .encoding import iso, json_safe, parse_time, time_key
from .transaction import submit_transaction

CHUNK_BYTES = 64_000  # a binary property holds at most 64 KiB
CHUNKS_PER_ROW = 15  # 15 x 64,000 bytes stays under the 1 MiB entity limit with the metadata
# An entity-group transaction carries at most 4 MiB; binary travels base64-encoded in it (4/3),
# so the compressed body is held to 2.5 MB: about 3.4 MB on the wire.
MAX_PAYLOAD_BYTES = 2_500_000
SEPARATOR = "|"
HEAD_FIELDS = ["PartitionKey", "RowKey", "head", "createdAt", "claimedUntil", "rows"]


def minute_bucket(moment: dt.datetime) -> str:
    return time_key(moment, 12)


def intent_rows(intent: SendIntent) -> list[dict[str, Any]]:
    """The intent as table rows: its head (metadata and the first chunks), then any further rows."""
    body = zlib.compress(json.dumps(intent.payload, separators=(",", ":")).encode(), 6)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise IntentTooLarge(f"the request is {len(body):,} bytes compressed; at most {MAX_PAYLOAD_BYTES:,} fit")
    chunks = [body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)] or [b""]
    groups = [chunks[i : i + CHUNKS_PER_ROW] for i in range(0, len(chunks), CHUNKS_PER_ROW)]
    partition = minute_bucket(intent.created_at)
    rows: list[dict[str, Any]] = []
    for n, group in enumerate(groups):
        row: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": intent.intent_id if n == 0 else f"{intent.intent_id}{SEPARATOR}{n}",
            **{f"b{i}": chunk for i, chunk in enumerate(group)},
        }
        rows.append(row)
    rows[0].update(
        {
            "head": True,
            "status": "Sending",
            "createdAt": iso(intent.created_at),
            "expiresAt": iso(intent.expires_at),
            "clients": json.dumps(intent.clients),
            "refused": json.dumps(intent.refused),
            "attempts": intent.attempts,
            "rows": len(rows),
            **({"claimedUntil": iso(intent.claimed_until)} if intent.claimed_until is not None else {}),
            **({"traceparent": intent.traceparent} if intent.traceparent else {}),
            **({"campaignChunk": json.dumps(intent.campaign_chunk)} if intent.campaign_chunk else {}),
        }
    )
    return rows


def intent_from_rows(rows: Sequence[Mapping[str, Any]]) -> SendIntent:
    head = rows[0]
    body = b"".join(bytes(row[f"b{i}"]) for row in rows for i in range(CHUNKS_PER_ROW) if row.get(f"b{i}") is not None)
    return SendIntent(
        intent_id=head["RowKey"],
        created_at=parse_time(head["createdAt"]),
        expires_at=parse_time(head["expiresAt"]),
        payload=json.loads(zlib.decompress(body)),
        clients=tuple((int(p), str(c), str(f)) for p, c, f in json.loads(head.get("clients") or "[]")),
        attempts=int(head.get("attempts") or 0),
        last_error=head.get("lastError"),
        refused=tuple((str(k), str(t), str(e)) for k, t, e in json.loads(head.get("refused") or "[]")),
        claimed_until=parse_time(head["claimedUntil"]) if head.get("claimedUntil") else None,
        version=getattr(head, "metadata", {}).get("etag"),
        traceparent=head.get("traceparent"),
        campaign_chunk=_campaign_chunk(head.get("campaignChunk")),
    )


def _campaign_chunk(stored: str | None) -> tuple[str, int, int] | None:
    """The chunk an intent sends; one that cannot be read is none (the send is still reconciled)."""
    if not stored:
        return None
    try:
        campaign_id, index, size = json.loads(stored)
        return str(campaign_id), int(index), int(size)
    except (ValueError, TypeError):
        return None


def _row_count(intent: SendIntent) -> int:
    try:
        return len(intent_rows(intent))
    except IntentTooLarge:
        return 1


def _row_order(row: Mapping[str, Any]) -> int:
    _, _, n = str(row["RowKey"]).partition(SEPARATOR)
    return int(n or 0)


class IntentTables(Tables):
    """The ``Intents`` table."""

    async def put_intent(self, intent: SendIntent) -> None:
        rows = intent_rows(intent)
        await self.ensure_tables()
        try:
            if len(rows) == 1:
                await self.intents.create_entity(rows[0])
            else:
                await submit_transaction(self.intents, [("create", row) for row in rows])
        except ResourceExistsError:
            return  # a retry of a write that landed: the intent is the same one
        except TableTransactionError as exc:
            if exc.status_code == 409:
                return  # a retry of a transaction that landed: the intent is already whole
            raise self._lost(exc) from exc
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def remove_intent(self, intent: SendIntent) -> None:
        """Remove every row of the intent at once (one transaction), so none is ever left half-removed."""
        partition = minute_bucket(intent.created_at)
        count = _row_count(intent)
        keys = [intent.intent_id] + [f"{intent.intent_id}{SEPARATOR}{n}" for n in range(1, count)]
        try:
            if count == 1:
                await self.intents.delete_entity(partition, intent.intent_id)
            else:
                await submit_transaction(
                    self.intents, [("delete", {"PartitionKey": partition, "RowKey": key}) for key in keys]
                )
        except ResourceNotFoundError:
            pass
        except TableTransactionError as exc:
            if exc.status_code != 404:
                raise self._lost(exc) from exc
            await self._remove_rows_left(partition, keys)  # a retried removal that partly landed before
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def _remove_rows_left(self, partition: str, keys: list[str]) -> None:
        async def delete(key: str) -> None:
            try:
                await self.intents.delete_entity(partition, key)
            except ResourceNotFoundError:
                pass
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc

        await asyncio.gather(*(delete(k) for k in keys))

    async def claim_intent(self, intent: SendIntent, until: dt.datetime) -> bool:
        entity = {
            "PartitionKey": minute_bucket(intent.created_at),
            "RowKey": intent.intent_id,
            "claimedUntil": iso(until),
        }
        try:
            await self.intents.update_entity(
                entity, mode=UpdateMode.MERGE, etag=intent.version, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return True

    async def intents_before(self, moment: dt.datetime, limit: int) -> list[SendIntent]:
        """Intents made before ``moment``: a range query on the minute partitions, heads only."""
        await self.ensure_tables()
        found: list[SendIntent] = []
        minute: list[Mapping[str, Any]] = []  # the heads of one partition (a minute), in id order
        try:
            async for entity in self.intents.query_entities(
                "PartitionKey le @last and head eq true",
                parameters={"last": minute_bucket(moment)},
                select=HEAD_FIELDS,
                results_per_page=min(limit, 1000),
            ):
                if minute and entity["PartitionKey"] != minute[-1]["PartitionKey"]:
                    found += await self._read_minute(minute)
                    minute = []
                    if len(found) >= limit:
                        break
                if parse_time(entity["createdAt"]) < moment:
                    minute.append(entity)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        if minute and len(found) < limit:
            found += await self._read_minute(minute)
        return found[:limit]

    async def _read_minute(self, heads: list[Mapping[str, Any]]) -> list[SendIntent]:
        """A minute's intents, oldest first; heads whose intent is gone or broken are skipped."""
        ordered = sorted(heads, key=lambda h: (h["createdAt"], h["RowKey"]))
        read = await asyncio.gather(*(self._read_intent(h) for h in ordered))
        return [intent for intent in read if intent is not None]

    async def _read_intent(self, head: Mapping[str, Any]) -> SendIntent | None:
        partition, intent_id = head["PartitionKey"], head["RowKey"]
        try:
            rows = [
                e
                async for e in self.intents.query_entities(
                    "PartitionKey eq @pk and RowKey ge @first and RowKey lt @after",
                    parameters={"pk": partition, "first": intent_id, "after": intent_id + chr(ord(SEPARATOR) + 1)},
                )
            ]
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        rows.sort(key=_row_order)
        if not rows or not rows[0].get("head"):
            return None  # removed meanwhile
        if len(rows) < int(rows[0].get("rows") or 1):
            # Rows are written and removed in one transaction, so a head without all its rows is
            # left from an interrupted removal (its records were written): finish removing it.
            await self._remove_rows_left(partition, [r["RowKey"] for r in rows])
            return None
        return intent_from_rows(rows)

    async def note_intent_attempt(self, intent: SendIntent, error: str) -> None:
        entity = {
            "PartitionKey": minute_bucket(intent.created_at),
            "RowKey": intent.intent_id,
            "attempts": intent.attempts + 1,
            "lastError": json_safe(error[:1000]),
        }
        try:
            await self.intents.update_entity(entity, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
