"""Use cases as plain functions: primitives and a store in, domain results out."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from .. import telemetry
from ..domain import (
    DEFAULT_MAX_FUTURE_SKEW,
    Change,
    DeliveryReport,
    Send,
    Status,
    TrackingRecord,
    apply_expiry,
    apply_report,
    apply_send,
)
from ..domain.reports import PoisonEvent, parse_envelope
from ..domain.timestamps import shifted
from ..logs import log_event, mask_phone
from .ports import StorageRejected, TrackingStore

_log = logging.getLogger("mms_tracker.tracking")
EXPIRY_LOOKBACK_HOURS = 24 * 14
EXPIRY_CONCURRENCY = 16


async def record_report(
    store: TrackingStore, report: DeliveryReport, now: dt.datetime, max_skew: dt.timedelta = DEFAULT_MAX_FUTURE_SKEW
) -> Change:
    """Apply one delivery report, recorded at ``now``, to its record (creating it if the report beat the send)."""
    change = await store.apply(
        report.message_id, lambda record: apply_report(record, report, now, max_skew), tag=report.tag
    )
    assert change is not None
    log_event(
        _log,
        logging.INFO,
        "delivery_report",
        message_id=report.message_id,
        event_id=report.event_id,
        delivery_status=report.delivery_status,
        old_status=change.before.status.value if change.before else None,
        new_status=change.after.status.value,
        outcome=change.outcome,
        to=mask_phone(report.to),
    )
    return change


async def ingest_event(
    store: TrackingStore,
    envelope: Mapping[str, Any],
    now: dt.datetime,
    retire_after: dt.timedelta | None = None,
    *,
    expire_after: dt.timedelta | None = None,
    max_skew: dt.timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Change | None:
    """One delivery-report event, whichever way it arrived: recorded, or kept as poison and acknowledged.

    ``max_skew`` (``REPORT_MAX_FUTURE_SKEW_SECONDS``): a report dated further than this past ``now``
    counts as received at ``now`` (``domain.received_ahead``). With ``expire_after`` (the expiry
    window), a record that reports alone made, for an id no send recorded, gets an expiry entry
    too (:func:`report_made_due`); with ``retire_after``, a retention entry.

    Returns None for poison; transient storage failures raise (the caller makes Event Grid
    redeliver). A report that storage refuses for good (``StorageRejected``: it would never be
    accepted however often it is redelivered) becomes poison with the storage error's code.
    """
    with telemetry.span("mms.delivery_report", _REPORT_SPAN, kind="consumer") as span:
        try:
            report = parse_envelope(envelope)
        except PoisonEvent as exc:
            telemetry.poisoned(span, await _poison(store, envelope, str(exc), now))
            return None
        try:
            change = await record_report(store, report, now, max_skew)
            telemetry.report_recorded(span, report, change, now)
            if retire_after is not None and change.before is None:  # the report came first: no send scheduled it
                await store.add_retirement(report.message_id, shifted(now, retire_after))
            if expire_after is not None and change.after.status is Status.ACCEPTED and not change.after.sent:
                await store.add_due(report.message_id, report_made_due(change.after, now, expire_after))
            return change
        except StorageRejected as exc:
            telemetry.poisoned(span, await _poison(store, envelope, f"storage refused the record: {exc.code}", now))
            return None


def report_made_due(record: TrackingRecord, now: dt.datetime, expire_after: dt.timedelta) -> dt.datetime:
    """When a record that only reports made (no send recorded it) falls due for expiry.

    The window runs from when its first report was *recorded* (the app's clock), not from any
    report's own time, which may lie anywhere from 0001 to 9999 (a far-past due would sit behind
    the expiry timer's cursor, never read; a far-future one would never come). Every non-final
    report writes the entry again, at the same time (so the same bucket and key), so one whose
    first write was lost (the invocation failed after the record, Event Grid redelivered) is
    still scheduled; one already past is due now, in the hour the timer has not yet finished.
    """
    first = min((e.recorded_at for e in record.events), default=now)
    return max(shifted(first, expire_after), now)


_REPORT_SPAN: dict[str, str | None] = {
    telemetry.MESSAGING_SYSTEM: telemetry.EVENTGRID,
    telemetry.MESSAGING_OPERATION_TYPE: "process",
}


async def _poison(store: TrackingStore, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> str:
    """Keep an event that can never be processed, and acknowledge it (even if storage refuses to keep it);
    return the reason it was kept for."""
    try:
        await store.record_poison(envelope, reason, now)
    except StorageRejected as exc:
        reason = f"{reason}; the poison record itself was refused: {exc.code}"
    log_event(
        _log,
        logging.WARNING,
        "delivery_report_poison",
        event_id=str(envelope.get("id"))[:256],
        reason=reason,
        outcome="ignored",
    )
    return reason


async def record_sends(
    store: TrackingStore,
    sends: list[Send],
    now: dt.datetime,
    expiry_window: dt.timedelta,
    retention: dt.timedelta | None = None,
) -> None:
    """Write one record per recipient of a send, concurrently; accepted ones join the expiry index,
    and, with ``retention``, every one is looked at for deletion once it can be final that long."""

    async def one(send: Send) -> None:
        change = await store.apply(
            send.message_id, lambda record: apply_send(record, send, now), tag=send.tag, expect_new=True
        )
        indexes = []  # the expiry and retention entries are independent: written concurrently
        if send.accepted and change is not None and change.after.status is Status.ACCEPTED:
            indexes.append(store.add_due(send.message_id, shifted(send.at, expiry_window)))
        if retention is not None:
            indexes.append(store.add_retirement(send.message_id, shifted(send.at, expiry_window + retention)))
        await asyncio.gather(*indexes)

    await asyncio.gather(*(one(s) for s in sends))


async def expire_due(store: TrackingStore, now: dt.datetime) -> int:
    """Mark every message whose expiry time has passed and that is still ``Accepted`` as ``Expired``.

    Reads only the hourly buckets of the due index from the last fully handled hour (a cursor;
    two weeks back the first time) up to ``now``, never the records table. Idempotent: a due
    entry is removed once handled; a record that got a final report meanwhile is left alone.
    """
    current = now.replace(minute=0, second=0, microsecond=0)
    hour = await store.due_cursor() or shifted(current, -dt.timedelta(hours=EXPIRY_LOOKBACK_HOURS))
    limit = asyncio.Semaphore(EXPIRY_CONCURRENCY)

    async def expire(message_id: str, due_at: dt.datetime) -> bool:
        async with limit:
            change = await store.apply(message_id, lambda record: apply_expiry(record, now))
            if change is not None and change.changed:
                log_event(_log, logging.INFO, "message_expired", message_id=message_id, new_status="Expired")
            await store.remove_due(message_id, due_at)
            return change is not None and change.changed

    expired = 0
    while hour <= current:
        due = [(m, d) for m, d in await store.due(hour) if d <= now]
        expired += sum(await asyncio.gather(*(expire(m, d) for m, d in due)))
        if hour == current:
            break  # the current hour is not over (and may be the calendar's last)
        hour = shifted(hour, dt.timedelta(hours=1))
        if hour <= current:
            await store.set_due_cursor(hour)
    return expired


RETENTION_LOOKBACK_DAYS = 30
RETIREMENT_CONCURRENCY = 16
RETIREMENT_BATCH = 1000  # records looked at per day bucket and run: the timer's work stays bounded


async def retire_old(store: TrackingStore, now: dt.datetime, retention: dt.timedelta) -> int:
    """Delete records completed more than ``retention`` ago, with their counters and pointers.

    Reads the retention index day by day from its cursor (``RETENTION_LOOKBACK_DAYS`` back the
    first time) up to today, at most a bounded batch per day and run (the next run continues), and
    never the records table. A record not yet due is looked at again when it will be.
    Returns how many records were deleted.
    """
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = await store.retirement_cursor() or shifted(today, -dt.timedelta(days=RETENTION_LOOKBACK_DAYS))
    limit = asyncio.Semaphore(RETIREMENT_CONCURRENCY)

    async def retire(message_id: str, at: dt.datetime) -> bool:
        async with limit:
            again = await store.retire(message_id, now, retention)
            if again is not None:
                await store.add_retirement(message_id, max(again, shifted(now, dt.timedelta(hours=1))))
            await store.remove_retirement(message_id, at)
            if again is None:
                log_event(_log, logging.INFO, "message_retired", message_id=message_id)
            return again is None

    deleted = 0
    while day <= today:
        entries = await store.retirements(day, RETIREMENT_BATCH)
        due = [(m, at) for m, at in entries if at <= now]
        deleted += sum(await asyncio.gather(*(retire(m, at) for m, at in due)))
        if day == today or len(entries) >= RETIREMENT_BATCH:
            break  # today is not over, or this day has more than one batch: come back next run
        day = shifted(day, dt.timedelta(days=1))
        await store.set_retirement_cursor(day)
    return deleted
