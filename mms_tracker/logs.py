"""Structured log events: an event name plus key-value fields.

The text form (``event key=value ...``) is what Application Insights shows; the fields also
travel on the record (``record.event``, ``record.fields``) so tests read them without parsing.
Phone numbers are masked with :func:`mask_phone` before they reach a field.
"""

from __future__ import annotations

import logging
from typing import Any


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields``; values are rendered with ``repr`` only when they hold spaces."""
    rendered = " ".join(f"{key}={_render(value)}" for key, value in fields.items())
    logger.log(
        level,
        "%s %s" if rendered else "%s%s",
        event,
        rendered,
        extra={"event": event, "fields": fields},
    )


def mask_phone(number: str | None) -> str | None:
    """``+18004567891`` -> ``+1******7891``: keep the leading two and the last four characters."""
    if number is None:
        return None
    if len(number) <= 6:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 6) + number[-4:]


def _render(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text
