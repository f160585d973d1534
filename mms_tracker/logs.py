"""Structured log events: an event name plus key-value fields.

The text form (``event key=value ...``) is what Application Insights shows; the fields also
travel on the record (``record.event``, ``record.fields``) so tests read them without parsing.
Phone numbers are masked with :func:`mask_phone` before they reach a field.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` on one line.

    Values are rendered with ``repr`` when they hold spaces (or are empty); otherwise as they are,
    with control characters escaped, so no value can start a forged line of its own.
    """
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
    return repr(text) if (" " in text or not text) else _escape_control(text)


def _escape_control(text: str) -> str:
    """Escape every character of Unicode category C (and U+2028, U+2029): ``\\n``, ``\\x1b``, ``\\u2028``."""
    if text.isprintable():  # fast path: no category C, Zl or Zp character at all
        return text
    return "".join(_escape_character(c) for c in text)


def _escape_character(c: str) -> str:
    if not (unicodedata.category(c).startswith("C") or c in "\u2028\u2029"):
        return c
    code = ord(c)
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
