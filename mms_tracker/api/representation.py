"""The JSON shapes the HTTP API answers with (README, HTTP API: ``GET /api/messages/{messageId}``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..domain import DeliveryAttempt, TrackingRecord


def timestamp(value: dt.datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def attempts_json(attempts: tuple[DeliveryAttempt, ...]) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": timestamp(a.timestamp),
            "segmentsSucceeded": a.segments_succeeded,
            "segmentsFailed": a.segments_failed,
        }
        for a in attempts
    ]


def record_json(record: TrackingRecord, *, with_events: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messageId": record.message_id,
        "to": record.to,
        "from": record.from_,
        "tag": record.tag,
        "status": record.status.value,
        "statusDetails": record.status_details,
        "createdAt": timestamp(record.created_at),
        "updatedAt": timestamp(record.updated_at),
        "completedAt": timestamp(record.completed_at),
        "deliveryAttempts": attempts_json(record.delivery_attempts),
    }
    if with_events:
        body["events"] = [
            {
                "eventId": e.event_id,
                "eventType": e.event_type,
                "deliveryStatus": e.delivery_status,
                "deliveryStatusDetails": e.delivery_status_details,
                "receivedTimestamp": timestamp(e.received_timestamp),
                "recordedAt": timestamp(e.recorded_at),
                "tag": e.tag,
            }
            for e in record.events
        ]
    return body
