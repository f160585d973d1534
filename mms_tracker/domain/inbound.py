"""Inbound replies (``Microsoft.Communication.SMSReceived``), in Event Grid and CloudEvents schema alike.

Parsed the way :mod:`.reports` parses delivery reports (its helpers, its :class:`PoisonEvent`):
field names in any casing, ``from``/``to`` normalised to E.164 with ``+``, 7-digit fractions kept.
Only the keyword of the message survives parsing: the body itself is never kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .optout import Keyword, OptOut, OptOutSource, classify
from .reports import MAX_ID_CHARS, MAX_PHONE_CHARS, PoisonEvent, _identifier, _phone, parse_instant
from .text import clip

# The Event Grid system-event schema (Azure/azure-rest-api-specs,
# specification/eventgrid/data-plane/Microsoft.Communication/, AcsSmsReceivedEventData) names this type
# and its data fields messageId, from, to, message and receivedTimestamp.
INBOUND_EVENT_TYPES = frozenset({"Microsoft.Communication.SMSReceived"})


@dataclass(frozen=True)
class InboundReply:
    """One reply: ``sender`` is our number (the event's ``to``), ``recipient`` who replied (``from``)."""

    event_id: str
    message_id: str
    sender: str
    recipient: str
    keyword: Keyword | None
    received_timestamp: dt.datetime
    received_extra_ticks: int = 0

    def change(self) -> OptOut | None:
        """The opt-out change this reply makes, or None when its text is no keyword."""
        if self.keyword is None:
            return None
        return OptOut(
            sender=self.sender,
            recipient=self.recipient,
            opted_out=self.keyword.opts_out,
            source=OptOutSource.REPLY,
            keyword=self.keyword.word,
            changed_at=self.received_timestamp,
            changed_extra_ticks=self.received_extra_ticks,
        )


def is_inbound_type(event_type: str) -> bool:
    """True for the inbound-reply event type, in any casing."""
    return event_type.lower() in {t.lower() for t in INBOUND_EVENT_TYPES}


def parse_inbound_envelope(envelope: Any) -> InboundReply:
    """Parse one event as JSON (Event Grid or CloudEvents schema); raise :class:`PoisonEvent`."""
    if not isinstance(envelope, Mapping):
        raise PoisonEvent("event is not an object")
    fields = {str(k).lower(): v for k, v in envelope.items()}
    event_type = fields.get("eventtype") or fields.get("type") or ""
    return inbound_from(str(fields.get("id") or ""), str(event_type), fields.get("data"))


def inbound_from(event_id: str, event_type: str, data: Any) -> InboundReply:
    """Parse the ``data`` of an ``SMSReceived`` event (the schema-independent part)."""
    if not is_inbound_type(event_type):
        raise PoisonEvent(f"unknown event type {event_type!r}")
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            raise PoisonEvent("data is not JSON") from None
    if not isinstance(data, Mapping):
        raise PoisonEvent("data is not an object")
    fields = {str(k).lower(): v for k, v in data.items()}
    if not event_id:
        raise PoisonEvent("no event id")
    message_id = _identifier(fields.get("messageid"), "messageId")
    sender = _phone(fields.get("to"))
    recipient = _phone(fields.get("from"))
    if not sender or not recipient:
        raise PoisonEvent("no from or no to")
    if len(sender) > MAX_PHONE_CHARS or len(recipient) > MAX_PHONE_CHARS:
        raise PoisonEvent("from or to is not a phone number")
    received, extra_ticks = parse_instant(fields.get("receivedtimestamp"))
    if received is None:
        raise PoisonEvent("no receivedTimestamp")
    message = fields.get("message")
    return InboundReply(
        event_id=clip(event_id, MAX_ID_CHARS),
        message_id=message_id,
        sender=sender,
        recipient=recipient,
        keyword=classify(message) if isinstance(message, str) else None,
        received_timestamp=received,
        received_extra_ticks=extra_ticks,
    )
