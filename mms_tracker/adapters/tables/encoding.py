"""Entities as the tables hold them: keys, timestamps, and the record's encoding (independent of any HTTP shape)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ...domain import DeliveryAttempt, RecordedEvent, Status, StatusChange, TrackingRecord, retain
from ...domain.statistics import REASON_KEY
from ...domain.text import iso_z, opt_iso_z, without_surrogates

MAX_CONFLICT_RETRIES = 12
POISON_PAYLOAD_CHARS = 16_000
# Azure allows 1 KiB keys, Azurite 512 characters; an encoded key longer than this is hashed.
MAX_KEY_CHARS = 400
# A string property holds at most 64 KiB (32,768 UTF-16 characters); the JSON history is kept
# well under that (it is ASCII: non-ASCII characters are escaped), compacted oldest first.
MAX_EVENTS_JSON_CHARS = 30_000
# The record's pending status events (its outbox, JSON) stay under this: only a topic down
# through dozens of status changes of one message could reach it, and then the oldest go first.
MAX_OUTBOX_JSON_CHARS = 20_000
CURSOR_PARTITION = "cursor"
META_PARTITION = "meta"
# The storage layout's version, in the names of the tables whose layout it defines
# (docs/storage.md): a later layout gets new tables, and the two can be told apart.
SCHEMA = "V2"
# A tag's records and counters are spread over this many partitions (docs/storage.md has the
# arithmetic): a record and its shard's counters share a partition, so one entity-group
# transaction changes both.
SHARDS = 16
SEPARATOR = "|"  # never in a table_key (percent-encoding escapes it), so tag and shard stay apart
RECORD_PREFIX = "r" + SEPARATOR
COUNTER_ROW = "c"
POINTER_ROW = "p"
COUNTED = tuple(s.value for s in Status)
LATENCY_PROPERTY = re.compile(r"L[0-9]{2}")  # a latency bucket's counter (domain.statistics.LATENCY_KEY)
REASONS_PROPERTY = "failureReasons"  # {details: count} as JSON
OTHER_REASONS = "(other reasons)"
MAX_REASONS_JSON_CHARS = 30_000


def shard_of(message_id: str) -> int:
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()[0] % SHARDS


def record_partition(tag: str | None, message_id: str) -> str:
    """Where a message's record lives: its tag (or none) and the shard of its id."""
    return f"{table_key(tag or '')}{SEPARATOR}{shard_of(message_id):02d}"


def tag_partitions(tag: str) -> list[str]:
    return [f"{table_key(tag)}{SEPARATOR}{shard:02d}" for shard in range(SHARDS)]


def tag_range(tag: str) -> tuple[str, str]:
    """The PartitionKey range holding exactly ``tag``'s shards (``}`` sorts right after ``|``)."""
    key = table_key(tag)
    return f"{key}{SEPARATOR}", f"{key}}}"


def record_row(message_id: str) -> str:
    return RECORD_PREFIX + table_key(message_id)


def counts_of(entity: Mapping[str, Any] | None) -> dict[str, int]:
    """A counter entity as ``{key: n}``: every status (zeros included), then the latency buckets
    (``L00``...) and failure reasons (``reason:<details>``) it holds (``domain.statistics``)."""
    counts = {status: int((entity or {}).get(status, 0)) for status in COUNTED}
    for key, value in (entity or {}).items():
        if LATENCY_PROPERTY.fullmatch(key):
            counts[key] = int(value)
    reasons = json.loads((entity or {}).get(REASONS_PROPERTY) or "{}")
    counts.update({REASON_KEY + reason: int(n) for reason, n in reasons.items()})
    return counts


def counter_entity(partition: str, counts: Mapping[str, int]) -> dict[str, Any]:
    """The counters as an entity; the reasons as one JSON property, folded into :data:`OTHER_REASONS`
    (least frequent first) past :data:`MAX_REASONS_JSON_CHARS`, so the property stays under 64 KiB."""
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": COUNTER_ROW}
    entity.update({s: int(counts.get(s, 0)) for s in COUNTED})
    entity.update({k: int(n) for k, n in counts.items() if LATENCY_PROPERTY.fullmatch(k) and n})
    reasons = {k[len(REASON_KEY) :]: int(n) for k, n in counts.items() if k.startswith(REASON_KEY) and n}
    other = sum(n for n in reasons.values() if n < 0)  # a decrement of a reason already folded away
    reasons = {reason: n for reason, n in reasons.items() if n > 0}
    reasons[OTHER_REASONS] = reasons.get(OTHER_REASONS, 0) + other
    while len(json.dumps(reasons)) > MAX_REASONS_JSON_CHARS and len(reasons) > 1:
        reason = min((r for r in reasons if r != OTHER_REASONS), key=lambda r: (reasons[r], r))
        reasons[OTHER_REASONS] += reasons.pop(reason)
    if not reasons[OTHER_REASONS]:
        del reasons[OTHER_REASONS]
    if reasons:
        entity[REASONS_PROPERTY] = json.dumps(reasons)
    return entity


def time_key(moment: dt.datetime | dt.date, digits: int) -> str:
    """``YYYYMMDDHHMM`` cut to its first ``digits`` (8: a day, 10: an hour, 12: a minute), in UTC.

    The year is always four digits: ``strftime("%Y")`` writes the year 999 as ``999``, which would
    sort after ``2026`` and put a range query (``since``, the reconciler's) on the wrong side of it.
    """
    if isinstance(moment, dt.datetime):
        moment = moment.astimezone(dt.UTC)
        hour, minute = moment.hour, moment.minute
    else:
        hour = minute = 0
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{hour:02d}{minute:02d}"[:digits]


def due_bucket(moment: dt.datetime) -> str:
    return time_key(moment, 10)


def table_key(value: str) -> str:
    """A table key for any string: percent-encoded (keys forbid ``/ \\ # ?`` and control
    characters), or, when that would pass :data:`MAX_KEY_CHARS`, ``%~`` and the SHA-256 of the
    value (a percent-encoding never contains ``%~``, so the two kinds cannot collide)."""
    raw = value.encode("utf-8", "surrogatepass")
    encoded = quote(raw, safe="")
    if len(encoded) <= MAX_KEY_CHARS:
        return encoded
    return "%~" + hashlib.sha256(raw).hexdigest()


def json_safe(text: str) -> str:
    """``text`` with lone surrogates replaced, so the storage client can serialise it."""
    return without_surrogates(text)


iso = iso_z  # the adapters' name for the one ISO ``Z`` formatter
opt_iso = opt_iso_z


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def opt_parse_time(value: Any) -> dt.datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


def _attempts_from(items: list[dict[str, Any]]) -> tuple[DeliveryAttempt, ...]:
    return tuple(
        DeliveryAttempt(
            opt_parse_time(i.get("timestamp")), int(i.get("segmentsSucceeded", 0)), int(i.get("segmentsFailed", 0))
        )
        for i in items
    )


INDEX_FIELDS = [
    "messageId",
    "status",
    "to",
    "from",
    "tag",
    "statusDetails",
    "createdAt",
    "updatedAt",
    "completedAt",
    "expiredAt",
    "sent",
    "rejected",
    "revision",
    "reportCount",
    "traceparent",
    "deliveryAttempts",
]  # what a listing reads: everything but the history


def encode_record(record: TrackingRecord, partition: str, *, with_history: bool = True) -> dict[str, Any]:
    """A record as a table entity in ``partition`` (``None`` values left out, as the service drops them)."""
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": record_row(record.message_id),
        "messageId": record.message_id,
        "status": record.status.value,
        "to": record.to,
        "from": record.from_,
        "tag": record.tag,
        "statusDetails": record.status_details,
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
        "completedAt": opt_iso(record.completed_at),
        "expiredAt": opt_iso(record.expired_at),
        "sent": record.sent,
        "rejected": record.rejected,
        "revision": record.revision,
        "reportCount": record.report_count,
        "traceparent": record.traceparent,
        "deliveryAttempts": json.dumps(_attempts_json(record.delivery_attempts)),
        "statusRevision": record.status_revision,
        "publishedRevision": record.published_revision,
        "outbox": _outbox_json(record.pending),
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


def _outbox_json(pending: tuple[StatusChange, ...]) -> str | None:
    """The pending status events as JSON within :data:`MAX_OUTBOX_JSON_CHARS` (oldest dropped first)."""
    while pending:
        text = json.dumps([_change_json(c) for c in pending])
        if len(text) <= MAX_OUTBOX_JSON_CHARS or len(pending) == 1:
            return text
        pending = pending[1:]
    return None


def _change_json(c: StatusChange) -> dict[str, Any]:
    return {
        "revision": c.revision,
        "status": c.status.value,
        "previousStatus": c.previous_status.value if c.previous_status else None,
        "statusDetails": c.status_details,
        "at": iso(c.at),
        "completedAt": opt_iso(c.completed_at),
    }


def _changes_from(text: str | None) -> tuple[StatusChange, ...]:
    if not text:
        return ()
    return tuple(
        StatusChange(
            revision=int(c["revision"]),
            status=Status(c["status"]),
            previous_status=Status(c["previousStatus"]) if c.get("previousStatus") else None,
            status_details=c.get("statusDetails"),
            at=parse_time(c["at"]),
            completed_at=opt_parse_time(c.get("completedAt")),
        )
        for c in json.loads(text)
    )


def _event_json(e: RecordedEvent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "eventId": e.event_id,
        "eventType": e.event_type,
        "fingerprint": e.fingerprint,
        "deliveryStatus": e.delivery_status,
        "deliveryStatusDetails": e.delivery_status_details,
        "receivedTimestamp": opt_iso(e.received_timestamp),
        "recordedAt": iso(e.recorded_at),
        "deliveryAttempts": _attempts_json(e.delivery_attempts),
    }
    if e.received_extra_ticks:
        item["receivedExtraTicks"] = e.received_extra_ticks
    if e.tag is not None:
        item["tag"] = e.tag
    if e.received_ahead:
        item["receivedAhead"] = True
    return item


def _attempts_json(attempts: tuple[DeliveryAttempt, ...]) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": opt_iso(a.timestamp),
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
            received_timestamp=opt_parse_time(e.get("receivedTimestamp")),
            recorded_at=parse_time(e["recordedAt"]),
            delivery_attempts=_attempts_from(e.get("deliveryAttempts", [])),
            received_extra_ticks=int(e.get("receivedExtraTicks", 0)),
            tag=e.get("tag"),
            received_ahead=e.get("receivedAhead") is True,
        )
        for e in json.loads(entity.get("events") or "[]")
    )
    return TrackingRecord(
        message_id=entity["messageId"],
        status=Status(entity["status"]),
        created_at=parse_time(entity["createdAt"]),
        updated_at=parse_time(entity["updatedAt"]),
        to=entity.get("to"),
        from_=entity.get("from"),
        tag=entity.get("tag"),
        status_details=entity.get("statusDetails"),
        completed_at=opt_parse_time(entity.get("completedAt")),
        delivery_attempts=_attempts_from(json.loads(entity.get("deliveryAttempts") or "[]")),
        events=events,
        sent=bool(entity.get("sent", False)),
        rejected=bool(entity.get("rejected", False)),
        expired_at=opt_parse_time(entity.get("expiredAt")),
        revision=int(entity.get("revision", 0)),
        report_count=int(entity.get("reportCount", len(events))),
        status_revision=int(entity.get("statusRevision", 0)),
        published_revision=int(entity.get("publishedRevision", 0)),
        outbox=_changes_from(entity.get("outbox")),
        traceparent=entity.get("traceparent"),
    )
