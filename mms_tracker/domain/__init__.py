"""The domain: the tracking record, its rules, and the values they work on (stdlib only)."""

from .errors import FieldError
from .record import (
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
    retain,
)

__all__ = [
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
    "retain",
    "ticks",
]
