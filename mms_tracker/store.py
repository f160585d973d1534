"""Tracking storage on Azure Table Storage (azure-data-tables, async client).

Tables (all prefixed with ``TRACKING_TABLE_PREFIX``; design notes in ``docs/storage.md``):

- ``Messages``: one entity per message, ``PartitionKey=<messageId>``, ``RowKey="record"``; the
  whole record with its report history. Point reads; updates guarded by ETag.
- ``Tags``: ``PartitionKey=<tag>``, ``RowKey=<messageId>``; the record without history. Listing
  and summaries read only the tag's partition.
- ``Due``: ``PartitionKey=<hour the message falls due for expiry>``, ``RowKey=<messageId>``; the
  expiry timer reads only the buckets that are due.
- ``Poison``: ``PartitionKey=<day>``, ``RowKey=<event id>``; events that can never be processed.

- ``Requests``: ``PartitionKey=<client repeatabilityRequestId>``, ``RowKey="result"``; the first
  answer for a client's id. Partition ``meta`` (never a UUID) holds the generated token key.

Keys are percent-encoded, so any tag or id is a valid key; a value whose encoding would pass
:data:`MAX_KEY_CHARS` is keyed by its SHA-256 instead (the original is kept in a property).
Storage errors are classified: timeouts, 5xx, 408, 429 and connection errors are transient
(:class:`StorageUnavailable`); 409 and 412 go back to the concurrency loop; any other refusal
is permanent (:class:`StorageRejected`, with the service's error code) and never retried.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import random
import re
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .domain import Change, DeliveryAttempt, RecordedEvent, Status, TrackingRecord, retain

MAX_CONFLICT_RETRIES = 12
POISON_PAYLOAD_CHARS = 16_000
# Azure allows 1 KiB keys, Azurite 512 characters; an encoded key longer than this is hashed.
MAX_KEY_CHARS = 400
# A string property holds at most 64 KiB (32,768 UTF-16 characters); the JSON history is kept
# well under that (it is ASCII: non-ASCII characters are escaped), compacted oldest first.
MAX_EVENTS_JSON_CHARS = 30_000
_RECORD_ROW = "record"
_CURSOR_PARTITION = "cursor"
_META_PARTITION = "meta"
_TRANSIENT_STATUS = frozenset({404, 408, 409, 412, 429})  # 404: a table gone (recreated on the next try)


class StorageUnavailable(Exception):
    """Table storage did not answer in time, or answered with an error that may pass on retry."""


class StorageConflict(StorageUnavailable):
    """Optimistic concurrency kept failing; the caller should let the event be redelivered."""


class StorageRejected(Exception):
    """Table storage refused a request for good (a 4xx other than 404, 408, 409, 412, 429): never retried."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class InvalidContinuationToken(ValueError):
    """A continuation token that this store did not issue for this query."""


@dataclass(frozen=True)
class Page:
    items: list[TrackingRecord]
    continuation_token: str | None


class TrackingStore(Protocol):
    """The port the services use; :class:`TableStore` is the adapter, tests bring fakes."""

    async def get(self, message_id: str) -> TrackingRecord | None: ...

    async def apply(
        self, message_id: str, decide: Callable[[TrackingRecord | None], Change | None], *, expect_new: bool = False
    ) -> Change | None:
        """Read the record, ``decide`` a change, write it under optimistic concurrency; retry on conflict."""
        ...

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None: ...

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]: ...

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None: ...

    async def due_cursor(self) -> dt.datetime | None: ...

    async def set_due_cursor(self, hour: dt.datetime) -> None: ...

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None: ...


class TableStore:
    """The app's tables, reached through one :class:`TableServiceClient` per worker."""

    def __init__(
        self, service: TableServiceClient, prefix: str, timeout_seconds: float, token_key: bytes | None = None
    ) -> None:
        self._service = service
        self._timeout = timeout_seconds
        self._token_key = token_key
        self.messages = service.get_table_client(f"{prefix}Messages")
        self.tags = service.get_table_client(f"{prefix}Tags")
        self.due_table = service.get_table_client(f"{prefix}Due")
        self.poison = service.get_table_client(f"{prefix}Poison")
        self.requests = service.get_table_client(f"{prefix}Requests")
        self._ready: asyncio.Task[None] | None = None

    def _lost(self, exc: BaseException) -> StorageUnavailable | StorageRejected:
        """Classify a storage error; a missing table means the "tables exist" cache is wrong: drop it."""
        if getattr(exc, "error_code", None) == "TableNotFound" or "TableNotFound" in str(exc):
            self._ready = None
        status = getattr(exc, "status_code", None)
        permanent = isinstance(status, int) and 400 <= status < 500 and status not in _TRANSIENT_STATUS
        if isinstance(exc, HttpResponseError) and permanent:
            return StorageRejected(str(getattr(exc, "error_code", None) or status))
        return StorageUnavailable(type(exc).__name__)

    async def ping(self) -> None:
        """One cheap round trip (the first page of the table list); raise :class:`StorageUnavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                async for _ in self._service.list_tables(results_per_page=1):
                    break
        except (AzureError, TimeoutError, OSError) as exc:
            raise self._lost(exc) from exc

    async def ensure_tables(self) -> None:
        """Create the tables once per worker (concurrent callers share one attempt)."""
        if self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.ensure_future(self._create_tables())
        await asyncio.shield(self._ready)

    async def _create_tables(self) -> None:
        async def create(table: TableClient) -> None:
            with contextlib.suppress(ResourceExistsError):
                await table.create_table()

        try:
            await asyncio.gather(
                *(create(t) for t in (self.messages, self.tags, self.due_table, self.poison, self.requests))
            )
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

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
                await self.tags.delete_entity(_key(tag), _key(message_id))
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
            entity = await self.messages.get_entity(_key(message_id), _RECORD_ROW)
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
        entity["PartitionKey"] = _key(record.tag)
        entity["RowKey"] = _key(record.message_id)
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
        parameters = {"pk": _key(tag)} | ({"status": status.value} if status else {})
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
                "PartitionKey eq @pk", parameters={"pk": _key(tag)}, select=["status"], results_per_page=1000
            ):
                counts[str(entity.get("status"))] += 1
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return counts

    async def _sealing_key(self) -> bytes:
        """``QUERY_TOKEN_KEY``, or else a random key made on first use and kept in storage, so that
        every instance shares it and no token can be forged from public facts."""
        if self._token_key is None:
            await self.ensure_tables()
            fresh = {"PartitionKey": _META_PARTITION, "RowKey": "queryTokenKey", "key": secrets.token_urlsafe(32)}
            try:
                with contextlib.suppress(ResourceExistsError):
                    await self.requests.create_entity(fresh)
                entity = await self.requests.get_entity(_META_PARTITION, "queryTokenKey")
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc
            self._token_key = str(entity["key"]).encode()
        return self._token_key

    @staticmethod
    def _seal_token(key: bytes, position: Mapping[str, Any], tag: str, status: Status | None) -> str:
        payload = json.dumps({"p": position, "t": tag, "s": status.value if status else None}, separators=(",", ":"))
        mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload.encode()).decode().rstrip("=")

    @staticmethod
    def _open_token(key: bytes, token: str, tag: str, status: Status | None) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:16], raw[16:]
            if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()[:16]):
                raise InvalidContinuationToken("continuationToken was not issued by this service")
            body = json.loads(payload)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidContinuationToken("continuationToken is not a token this service issued") from exc
        if not isinstance(body, dict):
            raise InvalidContinuationToken("continuationToken is not a token this service issued")
        if body.get("t") != tag or body.get("s") != (status.value if status else None):
            raise InvalidContinuationToken("continuationToken belongs to another tag or status filter")
        position = body.get("p")
        if not isinstance(position, dict):
            raise InvalidContinuationToken("continuationToken is not a token this service issued")
        return position

    # --- expiry index ------------------------------------------------------------------------

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None:
        await self.ensure_tables()
        entity = {
            "PartitionKey": due_bucket(due_at),
            "RowKey": _key(message_id),
            "messageId": message_id,
            "dueAt": _iso(due_at),
        }
        try:
            await self.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]:
        await self.ensure_tables()
        found = []
        try:
            async for entity in self.due_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": due_bucket(hour)}, results_per_page=1000
            ):
                found.append((entity.get("messageId") or unquote(entity["RowKey"]), _parse(entity["dueAt"])))
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return found

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None:
        try:
            await self.due_table.delete_entity(due_bucket(due_at), _key(message_id))
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def due_cursor(self) -> dt.datetime | None:
        """The first hour bucket not yet fully handled by the expiry timer."""
        await self.ensure_tables()
        try:
            entity = await self.due_table.get_entity(_CURSOR_PARTITION, "expiry")
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        return _parse(entity["hour"])

    async def set_due_cursor(self, hour: dt.datetime) -> None:
        entity = {"PartitionKey": _CURSOR_PARTITION, "RowKey": "expiry", "hour": _iso(hour)}
        try:
            await self.due_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    # --- send results by client repeatabilityRequestId --------------------------------------

    async def get_send_results(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        await self.ensure_tables()

        async def one(request_id: str) -> tuple[str, dict[str, Any] | None]:
            try:
                entity = await self.requests.get_entity(_key(request_id), "result")
            except ResourceNotFoundError:
                return request_id, None
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc
            return request_id, json.loads(entity["item"])

        found = await asyncio.gather(*(one(i) for i in dict.fromkeys(request_ids)))
        return {request_id: item for request_id, item in found if item is not None}

    async def put_send_results(self, results: Mapping[str, dict[str, Any]]) -> None:
        await self.ensure_tables()

        async def one(request_id: str, item: dict[str, Any]) -> None:
            entity = {"PartitionKey": _key(request_id), "RowKey": "result", "item": json.dumps(item)}
            try:
                await self.requests.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc

        await asyncio.gather(*(one(k, v) for k, v in results.items()))

    # --- poison ------------------------------------------------------------------------------

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None:
        """Keep an unprocessable event (payload capped) with the reason; redeliveries overwrite it."""
        await self.ensure_tables()
        try:
            payload = json.dumps(envelope, default=str)
        except (ValueError, RecursionError):
            payload = json.dumps({"unserialisable": True})
        event_id = str(envelope.get("id") or hashlib.sha256(payload.encode()).hexdigest())
        entity = {
            "PartitionKey": now.strftime("%Y%m%d"),
            "RowKey": _key(event_id),
            "eventId": _json_safe(event_id[:1000]),
            "reason": _json_safe(reason[:1000]),
            "eventType": _json_safe(str(envelope.get("eventType") or envelope.get("type") or "")[:256]),
            "payload": payload[:POISON_PAYLOAD_CHARS],
            "truncated": len(payload) > POISON_PAYLOAD_CHARS,
            "recordedAt": _iso(now),
        }
        try:
            await self.poison.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def poison_entries(self, day: dt.datetime) -> list[dict[str, Any]]:
        await self.ensure_tables()
        return [
            dict(e)
            async for e in self.poison.query_entities("PartitionKey eq @pk", parameters={"pk": day.strftime("%Y%m%d")})
        ]

    async def close(self) -> None:
        await self._service.close()


def due_bucket(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H")


def _key(value: str) -> str:
    """A table key for any string: percent-encoded (keys forbid ``/ \\ # ?`` and control
    characters), or, when that would pass :data:`MAX_KEY_CHARS`, ``%~`` and the SHA-256 of the
    value (a percent-encoding never contains ``%~``, so the two kinds cannot collide)."""
    raw = value.encode("utf-8", "surrogatepass")
    encoded = quote(raw, safe="")
    if len(encoded) <= MAX_KEY_CHARS:
        return encoded
    return "%~" + hashlib.sha256(raw).hexdigest()


def _json_safe(text: str) -> str:
    """``text`` with lone surrogates replaced, so the storage client can serialise it."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _opt_iso(value: dt.datetime | None) -> str | None:
    return None if value is None else _iso(value)


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _opt_parse(value: Any) -> dt.datetime | None:
    return _parse(value) if isinstance(value, str) and value else None


def _attempts_from(items: list[dict[str, Any]]) -> tuple[DeliveryAttempt, ...]:
    return tuple(
        DeliveryAttempt(
            _opt_parse(i.get("timestamp")), int(i.get("segmentsSucceeded", 0)), int(i.get("segmentsFailed", 0))
        )
        for i in items
    )


def encode_record(record: TrackingRecord, *, with_history: bool = True) -> dict[str, Any]:
    """A record as a table entity (``None`` values left out, as the service drops them)."""
    entity: dict[str, Any] = {
        "PartitionKey": _key(record.message_id),
        "RowKey": _RECORD_ROW,
        "messageId": record.message_id,
        "status": record.status.value,
        "to": record.to,
        "from": record.from_,
        "tag": record.tag,
        "statusDetails": record.status_details,
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
        "completedAt": _opt_iso(record.completed_at),
        "expiredAt": _opt_iso(record.expired_at),
        "sent": record.sent,
        "rejected": record.rejected,
        "revision": record.revision,
        "deliveryAttempts": json.dumps(_attempts_json(record.delivery_attempts)),
    }
    if with_history:
        entity["events"] = _events_json(record.events)
    return {k: v for k, v in entity.items() if v is not None}


def _events_json(events: tuple[RecordedEvent, ...]) -> str:
    """The history as JSON within :data:`MAX_EVENTS_JSON_CHARS`: the oldest reports are compacted
    away first, the deciding report never (:func:`domain.retain`)."""
    while True:
        text = json.dumps([_event_json(e) for e in events])
        if len(text) <= MAX_EVENTS_JSON_CHARS or len(events) <= 1:
            return text
        events = retain(events, len(events) - max(1, len(events) // 4))


def _event_json(e: RecordedEvent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "eventId": e.event_id,
        "eventType": e.event_type,
        "fingerprint": e.fingerprint,
        "deliveryStatus": e.delivery_status,
        "deliveryStatusDetails": e.delivery_status_details,
        "receivedTimestamp": _opt_iso(e.received_timestamp),
        "recordedAt": _iso(e.recorded_at),
        "deliveryAttempts": _attempts_json(e.delivery_attempts),
    }
    if e.received_extra_ticks:
        item["receivedExtraTicks"] = e.received_extra_ticks
    if e.tag is not None:
        item["tag"] = e.tag
    return item


def _attempts_json(attempts: tuple[DeliveryAttempt, ...]) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": _opt_iso(a.timestamp),
            "segmentsSucceeded": a.segments_succeeded,
            "segmentsFailed": a.segments_failed,
        }
        for a in attempts
    ]


def decode_record(entity: Mapping[str, Any]) -> TrackingRecord:
    """The inverse of :func:`encode_record`; a tag-index entity decodes with an empty history."""
    events = tuple(
        RecordedEvent(
            event_id=e["eventId"],
            event_type=e["eventType"],
            fingerprint=e["fingerprint"],
            delivery_status=e["deliveryStatus"],
            delivery_status_details=e.get("deliveryStatusDetails"),
            received_timestamp=_opt_parse(e.get("receivedTimestamp")),
            recorded_at=_parse(e["recordedAt"]),
            delivery_attempts=_attempts_from(e.get("deliveryAttempts", [])),
            received_extra_ticks=int(e.get("receivedExtraTicks", 0)),
            tag=e.get("tag"),
        )
        for e in json.loads(entity.get("events") or "[]")
    )
    return TrackingRecord(
        message_id=entity["messageId"],
        status=Status(entity["status"]),
        created_at=_parse(entity["createdAt"]),
        updated_at=_parse(entity["updatedAt"]),
        to=entity.get("to"),
        from_=entity.get("from"),
        tag=entity.get("tag"),
        status_details=entity.get("statusDetails"),
        completed_at=_opt_parse(entity.get("completedAt")),
        delivery_attempts=_attempts_from(json.loads(entity.get("deliveryAttempts") or "[]")),
        events=events,
        sent=bool(entity.get("sent", False)),
        rejected=bool(entity.get("rejected", False)),
        expired_at=_opt_parse(entity.get("expiredAt")),
        revision=int(entity.get("revision", 0)),
    )
