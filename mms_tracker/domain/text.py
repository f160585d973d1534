"""Small text rules, each written once: lone-surrogate cleaning, truncation with an ellipsis, the
ISO 8601 ``Z`` form of a time, and the fingerprint of a request's content (pure, stdlib only)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import overload

# Lone surrogates: JSON (and a server decoding with ``surrogateescape``) can carry them, but they
# are not unicode text, so neither UTF-8 nor the storage client can encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")
ELLIPSIS = "\u2026"


def without_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it can be stored and serialised."""
    return _SURROGATE.sub("\ufffd", text)


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (it is not valid unicode text)."""
    return _SURROGATE.search(text) is not None


@overload
def clip(text: str, limit: int) -> str: ...


@overload
def clip(text: str | None, limit: int) -> str | None: ...


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was cut (``None`` stays ``None``).

    Python strings are code points, so an astral character is one character and is never split."""
    return text if text is None or len(text) <= limit else text[: limit - 1] + ELLIPSIS


def iso_z(value: dt.datetime) -> str:
    """``value`` in UTC as ISO 8601 with ``Z`` (``2026-01-02T03:04:05.123456Z``)."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def opt_iso_z(value: dt.datetime | None) -> str | None:
    """:func:`iso_z`, with ``None`` for no time."""
    return None if value is None else iso_z(value)


def content_fingerprint(parts: Iterable[object], attachments: Iterable[Mapping[str, str]]) -> str:
    """The SHA-256 of a request's content: its ``parts`` (JSON values), then each attachment's content
    type and the SHA-256 of its base64 text. Equal content gives an equal fingerprint; an
    idempotency or repeatability id that comes back with another fingerprint is another request."""
    digests = [(a["contentType"], hashlib.sha256(a["contentInBase64"].encode()).hexdigest()) for a in attachments]
    return hashlib.sha256(json.dumps([*parts, digests]).encode()).hexdigest()
