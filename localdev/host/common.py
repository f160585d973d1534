"""What the host's parts share: problem+json answers, the bounded body read, JSON with a depth
limit, and log values that cannot forge a line."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Mapping
from typing import Any

from aiohttp import web

# Every part of the host logs as ``localdev.host``.
log = logging.getLogger("localdev.host")

# The .NET JSON readers the Functions host is built on (System.Text.Json, Json.NET 13) refuse
# nesting deeper than 64 by default; the same bound keeps Python's recursive parser safe.
MAX_JSON_DEPTH = 64


def problem(status: int, title: str, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}),
        content_type="application/problem+json",
        headers=headers,
    )


class BodyRejected(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class JsonTooDeep(ValueError):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH`."""


def parse_json(raw: str | bytes) -> Any:
    """``json.loads``, refusing nesting deeper than :data:`MAX_JSON_DEPTH` with :class:`JsonTooDeep`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonTooDeep
        pending.extend((child, depth + 1) for child in children)
    return value


def escape_control(text: str) -> str:
    """Escape every character of Unicode category C (and U+2028, U+2029): ``\\n``, ``\\x1b``, ``\\u2028``.

    The app escapes its own log fields the same way (``mms_tracker.logs``); this host does not
    import the app, as the Functions host would not.
    """
    if text.isprintable():  # fast path: no category C, Zl or Zp character at all
        return text
    escaped = []
    for c in text:
        if not (unicodedata.category(c).startswith("C") or c in "\u2028\u2029"):
            escaped.append(c)
        elif ord(c) < 0x100:
            escaped.append(repr(c)[1:-1])  # \n \r \t \x00-\x1f \x7f-\x9f \xad
        else:
            escaped.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return "".join(escaped)


def log_value(text: str) -> str:
    """A value for a log line: quoted with ``repr`` when it holds spaces, control characters escaped."""
    return repr(text) if (" " in text or not text) else escape_control(text)
