"""The domain: the tracking record, its rules, and the values they work on (stdlib only)."""

from .errors import FieldError
from .record import (
    DEFAULT_MAX_FUTURE_SKEW,
    EXPIRED_DETAILS,
    MAX_EVENTS,
    MAX_TAG_CHARS,
    REPORT_STATUSES,
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
from .rules import (
    absorb,
    apply_expiry,
    apply_report,
    apply_send,
    decide_status,
    received_ahead,
    retain,
)

__all__ = [
    "DEFAULT_MAX_FUTURE_SKEW",
    "EXPIRED_DETAILS",
    "MAX_EVENTS",
    "MAX_TAG_CHARS",
    "REPORT_STATUSES",
    "Change",
    "DeliveryAttempt",
    "DeliveryReport",
    "FieldError",
    "RecordedEvent",
    "Send",
    "Status",
    "StatusChange",
    "TrackingRecord",
    "absorb",
    "apply_expiry",
    "apply_report",
    "apply_send",
    "decide_status",
    "received_ahead",
    "retain",
    "ticks",
]
