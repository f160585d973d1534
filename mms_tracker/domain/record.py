"""The tracking record and the values it is made of, in plain Python (no framework, no I/O)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum

MAX_EVENTS = 100
MAX_TAG_CHARS = 256  # a tag longer than this is refused at send time and ignored in a report
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
EXPIRED_DETAILS = "No final delivery report within the expiry window."
# How far past the time it was recorded a report's receivedTimestamp may lie and still count as
# given (REPORT_MAX_FUTURE_SKEW_SECONDS); beyond it the report is ordered at its recording time.
DEFAULT_MAX_FUTURE_SKEW = dt.timedelta(seconds=300)


class Status(StrEnum):
    ACCEPTED = "Accepted"
    DELIVERED = "Delivered"
    FAILED = "Failed"
    REJECTED = "Rejected"
    EXPIRED = "Expired"

    @property
    def final(self) -> bool:
        return self is not Status.ACCEPTED


REPORT_STATUSES = {"delivered": Status.DELIVERED, "failed": Status.FAILED}


@dataclass(frozen=True)
class DeliveryAttempt:
    timestamp: dt.datetime | None
    segments_succeeded: int
    segments_failed: int


@dataclass(frozen=True)
class DeliveryReport:
    """One delivery report as ACS sends it, whatever the schema or casing it came in."""

    event_id: str
    event_type: str
    message_id: str
    delivery_status: str
    delivery_status_details: str | None = None
    received_timestamp: dt.datetime | None = None
    to: str | None = None
    from_: str | None = None
    tag: str | None = None
    delivery_attempts: tuple[DeliveryAttempt, ...] = ()
    received_extra_ticks: int = 0  # the 100-ns digit beyond the datetime's microseconds (ACS writes 7 digits)

    @property
    def status(self) -> Status | None:
        """The record status this report asserts: Delivered or Failed, or None for a non-final report."""
        return REPORT_STATUSES.get(self.delivery_status.lower())

    @property
    def received_ticks(self) -> int | None:
        return ticks(self.received_timestamp, self.received_extra_ticks)

    @property
    def fingerprint(self) -> str:
        """The report's identity apart from its event id: redelivered under another id, it matches."""
        stamp = str(self.received_ticks) if self.received_ticks is not None else ""
        text = "\x1f".join((self.message_id, self.delivery_status.lower(), self.delivery_status_details or "", stamp))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class RecordedEvent:
    """A distinct report as kept in the record's history."""

    event_id: str
    event_type: str
    fingerprint: str
    delivery_status: str
    delivery_status_details: str | None
    received_timestamp: dt.datetime | None
    recorded_at: dt.datetime
    delivery_attempts: tuple[DeliveryAttempt, ...] = ()
    received_extra_ticks: int = 0
    tag: str | None = None  # the report's own tag, kept even when it differs from the record's
    # The receivedTimestamp lay more than the allowed skew past recorded_at when it was recorded
    # (a broken clock, DateTime.MaxValue): the report counts as received at recorded_at.
    received_ahead: bool = False

    @property
    def status(self) -> Status | None:
        return REPORT_STATUSES.get(self.delivery_status.lower())

    @property
    def ordered_at(self) -> dt.datetime:
        """When the report counts as received: its ``receivedTimestamp``, or when it was recorded if it
        has none or it lay too far ahead."""
        if self.received_timestamp is None or self.received_ahead:
            return self.recorded_at
        return self.received_timestamp

    def order_key(self) -> tuple[int, str]:
        """Order by :attr:`ordered_at` at full (100-ns) precision, then by fingerprint, so every replica agrees."""
        extra = 0 if self.received_timestamp is None or self.received_ahead else self.received_extra_ticks
        return (ticks(self.ordered_at, extra) or 0, self.fingerprint)


@dataclass(frozen=True)
class Send:
    """What the send path knows about one recipient."""

    message_id: str
    to: str
    from_: str
    tag: str | None
    accepted: bool
    at: dt.datetime
    error: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """One change of a record's status, kept in the record (its outbox) until the topic accepted it.

    ``revision`` counts the record's status changes: 1 for its first status, one more on each
    change, so a subscriber that keeps the highest sees every message's changes without gaps.
    """

    revision: int
    status: Status
    previous_status: Status | None
    status_details: str | None
    at: dt.datetime  # the record's updatedAt when its status changed
    completed_at: dt.datetime | None


@dataclass(frozen=True)
class TrackingRecord:
    """Everything known about one message; ``status`` and friends are derived by :func:`decide_status`."""

    message_id: str
    status: Status
    created_at: dt.datetime
    updated_at: dt.datetime
    to: str | None = None
    from_: str | None = None
    tag: str | None = None
    status_details: str | None = None
    completed_at: dt.datetime | None = None
    delivery_attempts: tuple[DeliveryAttempt, ...] = ()
    events: tuple[RecordedEvent, ...] = ()
    sent: bool = False
    rejected: bool = False
    expired_at: dt.datetime | None = None
    revision: int = 0
    report_count: int = 0  # distinct reports ever received; the history may hold fewer (compaction)
    status_revision: int = 0  # status changes so far (the revision of the latest status event)
    published_revision: int = 0  # status events up to this revision were accepted by the topic
    outbox: tuple[StatusChange, ...] = ()  # status events not yet known to be published, oldest first

    @property
    def pending(self) -> tuple[StatusChange, ...]:
        """The status events the topic has not yet accepted."""
        return tuple(c for c in self.outbox if c.revision > self.published_revision)

    traceparent: str | None = None  # W3C trace context of the send, so a report's span can link to it


@dataclass(frozen=True)
class Change:
    """What applying something did: the record before and after, and how it is to be logged."""

    before: TrackingRecord | None
    after: TrackingRecord
    outcome: str  # "applied", "duplicate", "unchanged"

    @property
    def changed(self) -> bool:
        return self.outcome == "applied"


def ticks(moment: dt.datetime | None, extra: int) -> int | None:
    """100-ns ticks since 0001-01-01 UTC (as .NET counts them), so 7-digit fractions order exactly."""
    if moment is None:
        return None
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 10 + extra
