"""Status-change events out: every change of a record's status, published at least once, in batches.

A status change puts its event in the record's outbox in the same write as the change
(``domain.rules``); this module gets it to the topic. :class:`StatusPublishing` publishes in the
background of the worker, right after the write, batching what is pending and backing off while
the topic fails, so a failing topic never fails or delays ingest. :func:`retry_pending` is the
timer's safety net for what a worker could not publish (it stopped, or gave up its queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from .. import telemetry
from ..domain import StatusChange, TrackingRecord
from ..domain.text import iso_z
from ..domain.timestamps import shifted
from ..logs import log_event
from .ports import PendingEntry, PublishFailed, StatusEventPublisher, StatusOutbox, StorageRejected, StorageUnavailable

EVENT_TYPE = "MmsTracker.MessageStatusChanged"
# Event ids are UUIDv5 of (messageId, revision) in this namespace: a republished event keeps its id.
_EVENT_ID_NAMESPACE = uuid.UUID("6f0b8a63-2d55-4c1e-9a0e-5b7c1d3e2f10")
BATCH_EVENTS = 100  # events per publish request (the client takes a list; Event Grid allows 1 MB per request)
# A batch's JSON stays under this many bytes (as sent: ASCII, the rest \u-escaped), half of Event
# Grid's 1 MB per publish (post-to-custom-topic.md, azure-docs): weighed by characters of repr, 100
# events of astral-character ids, numbers and tags were 1.1 MB, refused with 413 on every retry.
BATCH_CHARS = 500_000
MAX_QUEUED_RECORDS = 10_000  # beyond this a worker leaves new events to the timer (they are indexed)
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
TIMER_BATCH = 1000  # pending events the timer looks at per run
TIMER_BACKOFF = dt.timedelta(minutes=1)
TIMER_BACKOFF_MAX = dt.timedelta(hours=1)

_log = logging.getLogger("mms_tracker.status_events")


def timer_backoff(attempts: int) -> dt.timedelta:
    """The pause before the retry timer tries an event again: one minute, doubling per failed
    attempt (as stored: any count), at most an hour."""
    doublings = max(0, min(attempts, (TIMER_BACKOFF_MAX // TIMER_BACKOFF).bit_length()))
    return min(TIMER_BACKOFF * (1 << doublings), TIMER_BACKOFF_MAX)


def event_source(app_name: str | None) -> str:
    """The events' ``source``: ``/mms-tracker/<function app name>``, or ``/mms-tracker/local``."""
    return f"/mms-tracker/{app_name or 'local'}"


def event_id(message_id: str, revision: int) -> str:
    """Deterministic from (messageId, revision): a redelivered publish carries the same id."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{message_id}\x1f{revision}"))


def status_event(record: TrackingRecord, change: StatusChange, source: str) -> dict[str, Any]:
    """The CloudEvents 1.0 event of one status change (``data``: the record as of that change, no history)."""
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": source,
        "subject": f"/messages/{record.message_id}",
        "id": event_id(record.message_id, change.revision),
        "time": _iso(change.at),
        "datacontenttype": "application/json",
        "data": {
            "messageId": record.message_id,
            "to": record.to,
            "from": record.from_,
            "tag": record.tag,
            "status": change.status.value,
            "previousStatus": change.previous_status.value if change.previous_status else None,
            "revision": change.revision,
            "statusDetails": change.status_details,
            "createdAt": _iso(record.created_at),
            "updatedAt": _iso(change.at),
            "completedAt": _iso(change.completed_at) if change.completed_at else None,
        },
    }


_iso = iso_z


def _batches(records: list[TrackingRecord], source: str) -> list[list[tuple[TrackingRecord, dict[str, Any]]]]:
    """Every pending event of ``records``, in publish requests of at most :data:`BATCH_EVENTS`."""
    batches: list[list[tuple[TrackingRecord, dict[str, Any]]]] = [[]]
    size = 0
    for record in records:
        for change in record.pending:
            event = status_event(record, change, source)
            weight = len(json.dumps(event, default=str))  # ASCII, as the SDK sends it: its bytes
            if len(batches[-1]) >= BATCH_EVENTS or (batches[-1] and size + weight > BATCH_CHARS):
                batches.append([])
                size = 0
            batches[-1].append((record, event))
            size += weight
    return [b for b in batches if b]


async def _publish_batch(
    outbox: StatusOutbox, publisher: StatusEventPublisher, batch: list[tuple[TrackingRecord, dict[str, Any]]]
) -> None:
    """Publish one batch (an ``mms.publish`` span), then acknowledge each record's events (raises ``PublishFailed``)."""
    events = [event for _, event in batch]
    with telemetry.publish_span([str(e["id"]) for e in events]):
        await publisher.publish(events)
    accepted: dict[str, tuple[TrackingRecord, list[int]]] = {}
    for record, event in batch:
        accepted.setdefault(record.message_id, (record, []))[1].append(int(event["data"]["revision"]))
    with contextlib.suppress(StorageUnavailable, StorageRejected):
        # An acknowledgement that storage lost leaves the event pending: published again later (a duplicate).
        await outbox.acknowledge_status_events(list(accepted.values()))


class StatusPublishing:
    """A worker's background publisher: records with pending events queue up, one task publishes them.

    :meth:`notify` never waits and never raises, so the write that produced the events returns at
    once. The task publishes everything queued in batches; while the topic fails it keeps the queue
    and tries again after a growing pause (:data:`RETRY_BASE_SECONDS` doubling up to
    :data:`RETRY_MAX_SECONDS`), so events arrive soon after the topic is back. What the worker
    never publishes (it stopped; its queue was full) is indexed, and :func:`retry_pending` takes it up.
    """

    def __init__(
        self,
        outbox: StatusOutbox,
        publisher: StatusEventPublisher,
        source: str,
        *,
        retry_base_seconds: float = RETRY_BASE_SECONDS,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._source = source
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        self._queue: dict[str, TrackingRecord] = {}
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failures = 0
        telemetry.observe_outbox_pending("worker", self.queued_events)

    def queued_events(self) -> int:
        """Events queued here, not yet published (read by the ``mms.outbox.pending`` gauge: no storage)."""
        return sum(len(record.pending) for record in list(self._queue.values()))

    def notify(self, record: TrackingRecord) -> None:
        """Queue ``record``'s pending events (the newest copy of a record wins) and wake the publisher."""
        known = self._queue.get(record.message_id)
        if known is None and len(self._queue) >= MAX_QUEUED_RECORDS:
            return  # indexed: the timer publishes it
        if known is None or known.status_revision <= record.status_revision:
            self._queue[record.message_id] = record
        if self._task is None or self._task.done():
            # A context of its own: the task outlives the write that woke it, so its ``mms.publish``
            # spans start traces of their own rather than join that write's trace.
            self._task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())

    async def drain(self) -> None:
        """Wait until nothing is queued (tests; orderly shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        pause = self._retry_base
        while self._queue:
            records = list(self._queue.values())[:BATCH_EVENTS]
            try:
                for batch in _batches(records, self._source):
                    await _publish_batch(self._outbox, self._publisher, batch)
                    self.published += len(batch)
            except PublishFailed as exc:
                self.failures += 1
                log_event(
                    _log,
                    logging.WARNING,
                    "status_events_publish_failed",
                    reason=str(exc),
                    queued=len(self._queue),
                    retry_in_seconds=pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, self._retry_max)
                continue
            except Exception as exc:  # noqa: BLE001  # never kill the worker's publisher: the timer retries these
                log_event(_log, logging.ERROR, "status_events_publisher_error", reason=type(exc).__name__)
            pause = self._retry_base
            for record in records:  # unless a newer copy arrived meanwhile
                if self._queue.get(record.message_id) is record:
                    del self._queue[record.message_id]


@dataclass(frozen=True)
class RetryRun:
    """What one run of the retry timer did."""

    published: int
    failed: int
    settled: int  # index rows dropped without publishing: already published, or the record is gone
    overdue: int  # pending events older than the retry window
    remaining: int = 0  # due events the run found and left pending (publish failed); ``mms.outbox.pending``


async def retry_pending(
    outbox: StatusOutbox,
    publisher: StatusEventPublisher,
    source: str,
    now: dt.datetime,
    retry_window: dt.timedelta,
    *,
    limit: int = TIMER_BATCH,
) -> RetryRun:
    """Publish pending events whose next attempt is due, in batches; back off what fails.

    Reads only the outbox index, never the records table: each message with a due event is read
    (its record holds the events), every pending event of it published, and acknowledged. A
    failing batch's events are tried again after a doubling pause (one minute, up to an hour).
    Pending events older than ``retry_window`` are logged (``status_events_overdue``) and counted.
    The due events the run found and left pending become the ``mms.outbox.pending`` figure of
    ``mms.source=timer`` (a lower bound when the run found ``limit`` of them).
    """
    entries = await outbox.pending_status_events(now, limit)
    by_message: dict[str, list[PendingEntry]] = {}
    for entry in entries:
        by_message.setdefault(entry.message_id, []).append(entry)
    overdue = [e for e in entries if shifted(e.since, retry_window) < now]
    if overdue:
        oldest = min(e.since for e in overdue)
        log_event(_log, logging.WARNING, "status_events_overdue", count=len(overdue), oldest_since=_iso(oldest))
    records = await asyncio.gather(*(outbox.get(m) for m in by_message))
    settled, publishable, done = await _settle(outbox, by_message, records)
    published = failed = 0
    for batch in _batches(publishable, source):
        try:
            await _publish_batch(outbox, publisher, batch)
            published += len(batch)
            done |= {(r.message_id, int(e["data"]["revision"])) for r, e in batch}
        except PublishFailed as exc:
            failed += len(batch)
            log_event(_log, logging.WARNING, "status_events_publish_failed", reason=str(exc), events=len(batch))
            revisions = {(r.message_id, int(e["data"]["revision"])) for r, e in batch}
            for entry in entries:
                if (entry.message_id, entry.revision) in revisions:
                    await outbox.postpone_status_event(entry, shifted(now, timer_backoff(entry.attempts)))
    remaining = sum(1 for e in entries if (e.message_id, e.revision) not in done)
    telemetry.observe_outbox_pending("timer", remaining)
    return RetryRun(published=published, failed=failed, settled=settled, overdue=len(overdue), remaining=remaining)


async def _settle(
    outbox: StatusOutbox, by_message: dict[str, list[PendingEntry]], records: list[TrackingRecord | None]
) -> tuple[int, list[TrackingRecord], set[tuple[str, int]]]:
    """Drop the index rows whose event is no longer pending (published, or the record is gone).

    Returns how many were dropped, the records with events to publish, and the (message, revision)
    pairs already settled."""
    settled = 0
    publishable: list[TrackingRecord] = []
    done: set[tuple[str, int]] = set()
    for message_id, record in zip(by_message, records, strict=True):
        pending = {c.revision for c in record.pending} if record is not None else set()
        for entry in by_message[message_id]:
            if entry.revision not in pending:
                await outbox.drop_status_entry(message_id, entry.revision)
                settled += 1
                done.add((message_id, entry.revision))
        if record is not None and record.pending:
            publishable.append(record)
    return settled, publishable, done
