"""The rules of the tracking record, in plain Python (no framework, no I/O).

A record's status is never patched in place: it is *derived* from what the record holds (every
distinct delivery report, whether the send was accepted or rejected, whether it expired) by
:func:`decide_status`, the one place that decides. That makes the rules of the contract hold
whatever order, multiplicity or timing the inputs arrive in:

- a final status is never replaced by a non-final one;
- between two final reports, the one with the later ``receivedTimestamp`` wins;
- every distinct report is kept once: the same content is one report whatever its event id, and
  the same event id with other content is another report;
- a report that arrives before the send creates the record; the send fills in what it lacked;
- ``Expired`` applies only while no final report exists; a late real report replaces it;
- a ``receivedTimestamp`` more than the allowed skew past the time the report was recorded (the
  caller's clock, ``now``) counts as received when it was recorded: it can neither outrank the
  reports that follow nor put ``completedAt`` in the future (:func:`received_ahead`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from .record import (
    DEFAULT_MAX_FUTURE_SKEW,
    EXPIRED_DETAILS,
    MAX_EVENTS,
    Change,
    DeliveryAttempt,
    DeliveryReport,
    RecordedEvent,
    Send,
    Status,
    StatusChange,
    TrackingRecord,
    ticks,
)


def retain(events: tuple[RecordedEvent, ...], limit: int) -> tuple[RecordedEvent, ...]:
    """At most ``limit`` (at least 1) events, newest kept, and always the deciding final report.

    The deciding report (the latest final) is what the status rests on, so a trim never drops
    it: however many later non-final reports arrive, the record's status stays what the rules
    give over every report ever received.
    """
    ordered = sorted(events, key=RecordedEvent.order_key)
    limit = max(1, limit)
    if len(ordered) <= limit:
        return tuple(ordered)
    finals = [e for e in ordered if e.status is not None]
    winner = max(finals, key=RecordedEvent.order_key) if finals else None
    kept = ordered[-limit:]
    if winner is not None and winner not in kept:
        kept = [winner, *ordered[-(limit - 1) :]] if limit > 1 else [winner]
    return tuple(sorted(kept, key=RecordedEvent.order_key))


def decide_status(record: TrackingRecord) -> TrackingRecord:
    """Derive status, details, completion time and attempts from the record's contents."""
    finals = [e for e in record.events if e.status is not None]
    latest_any = max(record.events, key=RecordedEvent.order_key, default=None)
    if finals:
        winner = max(finals, key=RecordedEvent.order_key)
        assert winner.status is not None
        return replace(
            record,
            status=winner.status,
            status_details=winner.delivery_status_details,
            completed_at=winner.ordered_at,
            delivery_attempts=winner.delivery_attempts or _latest_attempts(record.events),
        )
    attempts = _latest_attempts(record.events)
    if record.rejected:
        return replace(record, status=Status.REJECTED, completed_at=record.created_at, delivery_attempts=attempts)
    if record.expired_at is not None:
        return replace(
            record,
            status=Status.EXPIRED,
            status_details=EXPIRED_DETAILS,
            completed_at=record.expired_at,
            delivery_attempts=attempts,
        )
    details = latest_any.delivery_status_details if latest_any else record.status_details
    return replace(
        record, status=Status.ACCEPTED, status_details=details, completed_at=None, delivery_attempts=attempts
    )


def received_ahead(report: DeliveryReport, now: dt.datetime, max_skew: dt.timedelta) -> bool:
    """Whether the report's ``receivedTimestamp`` lies more than ``max_skew`` past ``now``, the time it is recorded.

    Such a report is clamped, not refused: a Delivered report from a carrier with a broken clock is
    still a delivery, and the user needs that status. It is ordered, and completes the record, at
    its recording time; its own timestamp stays visible in ``events``. The decision is taken once,
    when the report is first recorded, and kept with it, so every replica orders it alike later.
    """
    if report.received_ticks is None:
        return False
    # In 100-ns ticks (integers: no overflow at 9999-12-31), exact to the report's seventh digit.
    return report.received_ticks > (ticks(now, 0) or 0) + max_skew // dt.timedelta(microseconds=1) * 10


def apply_report(
    record: TrackingRecord | None,
    report: DeliveryReport,
    now: dt.datetime,
    max_skew: dt.timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Change:
    """Add ``report``, recorded at ``now``, to the history of ``record`` (creating it if the report came first)."""
    if record is not None and any(e.fingerprint == report.fingerprint for e in record.events):
        # Identity is the content, not the event id: ACS's samples reuse the messageId as the
        # event id, so a Failed and a later Delivered may share one id and are two reports.
        return Change(record, record, "duplicate")
    event = RecordedEvent(
        event_id=report.event_id,
        event_type=report.event_type,
        fingerprint=report.fingerprint,
        delivery_status=report.delivery_status,
        delivery_status_details=report.delivery_status_details,
        received_timestamp=report.received_timestamp,
        recorded_at=now,
        delivery_attempts=report.delivery_attempts,
        received_extra_ticks=report.received_extra_ticks,
        tag=report.tag,
        received_ahead=received_ahead(report, now, max_skew),
    )
    earliest = min(event.ordered_at, now)
    base = record or TrackingRecord(
        message_id=report.message_id, status=Status.ACCEPTED, created_at=earliest, updated_at=now
    )
    if not base.sent:  # until the send says when it was created, the earliest report says it
        base = replace(base, created_at=min(base.created_at, earliest))
    events = retain((*base.events, event), MAX_EVENTS)
    after = replace(
        base,
        to=base.to or report.to,
        from_=base.from_ or report.from_,
        tag=base.tag or report.tag,
        events=events,
        report_count=base.report_count + 1,
    )
    return _finish(record, after, now)


def apply_send(record: TrackingRecord | None, send: Send, now: dt.datetime) -> Change:
    """Record the send's outcome; fills what an earlier report lacked, never lowers the status."""
    if record is not None and record.sent:
        return Change(record, record, "duplicate")
    base = record or TrackingRecord(
        message_id=send.message_id, status=Status.ACCEPTED, created_at=send.at, updated_at=now
    )
    after = replace(
        base,
        to=send.to,
        from_=send.from_,
        tag=base.tag or send.tag,  # a message belongs to the first tag recorded for it
        created_at=min(base.created_at, send.at),
        sent=True,
        rejected=not send.accepted,
        status_details=base.status_details if send.accepted else send.error,
    )
    return _finish(record, after, now)


def absorb(record: TrackingRecord, other: TrackingRecord, now: dt.datetime) -> Change:
    """Fold another copy of the same message into ``record`` (a record moving between partitions).

    Every report either copy holds is kept once, and what either knows of the send is kept: the
    status is then decided again from the union, so no report one copy saw is lost.
    """
    known = {e.fingerprint for e in record.events}
    events = retain((*record.events, *(e for e in other.events if e.fingerprint not in known)), MAX_EVENTS)
    after = replace(
        record,
        events=events,
        to=record.to or other.to,
        from_=record.from_ or other.from_,
        tag=record.tag or other.tag,
        created_at=min(record.created_at, other.created_at),
        sent=record.sent or other.sent,
        rejected=record.rejected or other.rejected,
        expired_at=record.expired_at or other.expired_at,
        report_count=max(record.report_count, other.report_count),
        status_revision=max(record.status_revision, other.status_revision),
        published_revision=max(record.published_revision, other.published_revision),
        outbox=_merge_outboxes(record.outbox, other.outbox),
        traceparent=record.traceparent or other.traceparent,
    )
    return _finish(record, after, now)


def apply_expiry(record: TrackingRecord | None, now: dt.datetime) -> Change | None:
    """Mark a record that is still ``Accepted`` as ``Expired``; no-op for anything else."""
    if record is None or record.status is not Status.ACCEPTED:
        return None
    return _finish(record, replace(record, expired_at=now), now)


def _finish(before: TrackingRecord | None, candidate: TrackingRecord, now: dt.datetime) -> Change:
    decided = decide_status(candidate)
    # The candidate is always ``before`` with some fields replaced, so it carries before's
    # updated_at and revision: equal records mean nothing changed.
    if before is not None and decided == before:
        return Change(before, before, "unchanged")
    after = replace(decided, updated_at=now, revision=(before.revision + 1) if before else 1)
    return Change(before, _count_status_change(before, after), "applied")


def _count_status_change(before: TrackingRecord | None, after: TrackingRecord) -> TrackingRecord:
    """A first status, or a different one, is a status change: its event joins the record's outbox."""
    if before is not None and before.status is after.status:
        return after
    revision = after.status_revision + 1
    change = StatusChange(
        revision=revision,
        status=after.status,
        previous_status=before.status if before is not None else None,
        status_details=after.status_details,
        at=after.updated_at,
        completed_at=after.completed_at,
    )
    return replace(after, status_revision=revision, outbox=(*after.pending, change))


def _merge_outboxes(*outboxes: tuple[StatusChange, ...]) -> tuple[StatusChange, ...]:
    """Every pending status event of either copy of a record, once per revision, oldest first."""
    by_revision = {c.revision: c for outbox in outboxes for c in outbox}
    return tuple(by_revision[r] for r in sorted(by_revision))


def _latest_attempts(events: tuple[RecordedEvent, ...]) -> tuple[DeliveryAttempt, ...]:
    with_attempts = [e for e in events if e.delivery_attempts]
    if not with_attempts:
        return ()
    return max(with_attempts, key=RecordedEvent.order_key).delivery_attempts
