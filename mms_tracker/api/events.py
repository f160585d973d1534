"""Events as the Functions runtime hands them over (``func.EventGridEvent`` / ``func.CloudEvent``),
turned into plain JSON envelopes for the one report parser (``domain.reports``).

Nothing here names ``func.CloudEvent`` at run time: that class came in azure-functions 1.25.0, and the
worker's own, older copy (1.20.0 to 1.22.0b4 in workers 4.29 to 4.34) is what ``import azure.functions``
finds under ``func start`` and on Flex Consumption (docs/architecture.md, "Worker layouts").
``func.EventGridEvent`` is in every version, so an event that is not one is a CloudEvent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import azure.functions as func


def event_envelope(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event as a plain dict (for the poison record), whichever schema it came in."""
    if not isinstance(event, func.EventGridEvent):  # a CloudEvent: only azure-functions 1.25.0+ makes one
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


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None
