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

from .phone import MAX_STORED_NUMBER_CHARS
from .record import MAX_TAG_CHARS, DeliveryAttempt, DeliveryReport
from .text import clip, has_surrogate, without_surrogates

# ACS publishes MMS delivery reports under the SMS type: the Event Grid system-event schema
# (Azure/azure-rest-api-specs, specification/eventgrid/data-plane/Microsoft.Communication/) defines
# no other delivery-report type, so no other is accepted.
REPORT_EVENT_TYPES = frozenset({"Microsoft.Communication.SMSDeliveryReportReceived"})
_TIMESTAMP = re.compile(
    r"(?P<head>[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(?:\.(?P<frac>[0-9]{1,9}))?"
    r"(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.IGNORECASE,
)
# Bounds on what a report may carry into storage (a Table property holds at most 64 KiB, a key
# at most 1 KiB), so that every report accepted can be written and read back. Free text is
# truncated; an identifier longer than this can never be a real ACS message id and is poison.
MAX_ID_CHARS = 256
MAX_DETAILS_CHARS = 1024
MAX_STATUS_CHARS = 64
MAX_PHONE_CHARS = MAX_STORED_NUMBER_CHARS
MAX_ATTEMPTS = 20


class PoisonEvent(ValueError):
    """An event that can never be processed: recorded for inspection and acknowledged."""


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
    message_id = _identifier(fields.get("messageid"), "messageId")
    status = _text(fields.get("deliverystatus"))
    if not status:
        raise PoisonEvent("no deliveryStatus")
    if not event_id:
        raise PoisonEvent("no event id")
    received, extra_ticks = parse_instant(fields.get("receivedtimestamp"))
    tag = _text(fields.get("tag"))
    return DeliveryReport(
        event_id=clip(event_id, MAX_ID_CHARS),
        event_type=event_type,
        message_id=message_id,
        delivery_status=clip(status, MAX_STATUS_CHARS),
        delivery_status_details=clip(_text(fields.get("deliverystatusdetails")), MAX_DETAILS_CHARS),
        received_timestamp=received,
        received_extra_ticks=extra_ticks,
        to=clip(_phone(fields.get("to")), MAX_PHONE_CHARS),
        from_=clip(_phone(fields.get("from")), MAX_PHONE_CHARS),
        # A tag longer than a send may set cannot be ours: the report is kept, untagged.
        tag=tag if tag is None or len(tag) <= MAX_TAG_CHARS else None,
        delivery_attempts=_attempts(fields.get("deliveryattempts")),
    )


def parse_timestamp(value: Any) -> dt.datetime | None:
    """ISO 8601 with up to 7 fractional digits (as .NET writes them) to an aware UTC datetime."""
    return parse_instant(value)[0]


def parse_instant(value: Any) -> tuple[dt.datetime | None, int]:
    """A timestamp as an aware UTC datetime plus the 100-ns digit beyond its microseconds.

    ACS writes seven fractional digits; keeping the seventh lets two reports 100 ns apart order
    exactly. Raise :class:`PoisonEvent` for anything unreadable, or outside the years 1 to 9999 in UTC.
    """
    if value in (None, ""):
        return None, 0
    if not isinstance(value, str):
        raise PoisonEvent("timestamp is not a string")
    found = _TIMESTAMP.fullmatch(value.strip())
    if found is None:
        raise PoisonEvent("unreadable timestamp")
    text = found.group("head")
    fraction = (found.group("frac") or "").ljust(7, "0")
    text += "." + fraction[:6]
    zone = found.group("zone") or "+00:00"
    text += "+00:00" if zone.upper() == "Z" else zone
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC), int(fraction[6])
    except (ValueError, OverflowError):
        raise PoisonEvent("unreadable timestamp") from None


def _attempts(value: Any) -> tuple[DeliveryAttempt, ...]:
    if not isinstance(value, list):
        return ()
    attempts = []
    for item in value[-MAX_ATTEMPTS:]:
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
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else 0


def _text(value: Any) -> str | None:
    """A field as text: scalars only (a nested object is not text), lone surrogates replaced."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    if not text:
        return None
    return without_surrogates(text)


def _identifier(value: Any, name: str) -> str:
    """An id as sent: a non-empty string within :data:`MAX_ID_CHARS`; anything else is poison."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise PoisonEvent(f"no {name}")
    text = str(value)  # exactly as sent (not stripped): it is the key the send path stored
    if not text.strip():
        raise PoisonEvent(f"no {name}")
    if len(text) > MAX_ID_CHARS or has_surrogate(text) or "/" in text or text in (".", ".."):
        # GET /api/messages/{messageId} takes one path segment: "/", "." and ".." could never be read back.
        raise PoisonEvent(f"{name} is not a message id (over {MAX_ID_CHARS} characters, a '/', or not unicode)")
    return text


def _phone(value: Any) -> str | None:
    text = _text(value)
    if text and text.isdigit():
        return "+" + text
    return text
