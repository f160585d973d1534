"""One parser for ACS delivery reports, in Event Grid schema and CloudEvents 1.0 schema alike.

Field names are matched case-insensitively (official samples use both ``messageId`` and
``MessageId``), ``from`` is normalised to E.164 with ``+``, 7-digit fractional seconds are
accepted, and optional fields may be absent. Anything that can never be processed raises
:class:`PoisonEvent` with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import azure.functions as func

from .domain import DeliveryAttempt, DeliveryReport

# ACS publishes MMS delivery reports under the SMS type: the Event Grid system-event schema
# (Azure/azure-rest-api-specs, specification/eventgrid/data-plane/Microsoft.Communication/) defines
# no other delivery-report type, so no other is accepted.
REPORT_EVENT_TYPES = frozenset({"Microsoft.Communication.SMSDeliveryReportReceived"})
_TIMESTAMP = re.compile(
    r"^(?P<head>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


class PoisonEvent(ValueError):
    """An event that can never be processed: recorded for inspection and acknowledged."""


def event_envelope(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event as a plain dict (for the poison record), whichever schema it came in."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "eventType": event.event_type,
        "topic": event.topic,
        "subject": event.subject,
        "eventTime": _iso(event.event_time),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def parse_report(event: func.EventGridEvent | func.CloudEvent) -> DeliveryReport:
    """Turn a trigger's event into a :class:`DeliveryReport`; raise :class:`PoisonEvent`."""
    return parse_envelope(event_envelope(event))


def parse_envelope(envelope: Any) -> DeliveryReport:
    """Parse one event as JSON (Event Grid or CloudEvents schema); raise :class:`PoisonEvent`."""
    if not isinstance(envelope, Mapping):
        raise PoisonEvent("event is not an object")
    fields = {str(k).lower(): v for k, v in envelope.items()}
    event_type = fields.get("eventtype") or fields.get("type") or ""
    return report_from(str(fields.get("id") or ""), str(event_type), fields.get("data"))


def report_from(event_id: str, event_type: str, data: Any) -> DeliveryReport:
    """Parse the ``data`` of a delivery-report event (the schema-independent part)."""
    if event_type.lower() not in {t.lower() for t in REPORT_EVENT_TYPES}:
        raise PoisonEvent(f"unknown event type {event_type!r}")
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            raise PoisonEvent("data is not JSON") from None
    if not isinstance(data, Mapping):
        raise PoisonEvent("data is not an object")
    fields = {str(k).lower(): v for k, v in data.items()}
    message_id = _text(fields.get("messageid"))
    if not message_id:
        raise PoisonEvent("no messageId")
    status = _text(fields.get("deliverystatus"))
    if not status:
        raise PoisonEvent("no deliveryStatus")
    if not event_id:
        raise PoisonEvent("no event id")
    return DeliveryReport(
        event_id=event_id,
        event_type=event_type,
        message_id=message_id,
        delivery_status=status,
        delivery_status_details=_text(fields.get("deliverystatusdetails")),
        received_timestamp=parse_timestamp(fields.get("receivedtimestamp")),
        to=_phone(fields.get("to")),
        from_=_phone(fields.get("from")),
        tag=_text(fields.get("tag")),
        delivery_attempts=_attempts(fields.get("deliveryattempts")),
    )


def parse_timestamp(value: Any) -> dt.datetime | None:
    """ISO 8601 with up to 7 fractional digits (as .NET writes them) to an aware UTC datetime."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PoisonEvent("timestamp is not a string")
    found = _TIMESTAMP.match(value.strip())
    if found is None:
        raise PoisonEvent(f"unreadable timestamp {value!r}")
    text = found.group("head")
    if found.group("frac"):
        text += "." + found.group("frac")[:6].ljust(6, "0")
    zone = found.group("zone") or "+00:00"
    text += "+00:00" if zone.upper() == "Z" else zone
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        raise PoisonEvent(f"unreadable timestamp {value!r}") from None


def _attempts(value: Any) -> tuple[DeliveryAttempt, ...]:
    if not isinstance(value, list):
        return ()
    attempts = []
    for item in value:
        if isinstance(item, Mapping):
            f = {str(k).lower(): v for k, v in item.items()}
            attempts.append(
                DeliveryAttempt(
                    timestamp=parse_timestamp(f.get("timestamp")),
                    segments_succeeded=_int(f.get("segmentssucceeded")),
                    segments_failed=_int(f.get("segmentsfailed")),
                )
            )
    return tuple(attempts)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _phone(value: Any) -> str | None:
    text = _text(value)
    if text and text.isdigit():
        return "+" + text
    return text


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None
