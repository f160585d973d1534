"""Phone numbers: the one E.164 rule (settings, send validation and the OpenAPI document use it)."""

from __future__ import annotations

import re

E164_PATTERN = r"\+[1-9][0-9]{6,14}"  # ASCII digits only: Python's \d would also match other scripts' digits
_E164 = re.compile(E164_PATTERN)

# The longest `to`/`from` a record stores (the send path's refused numbers, a report's numbers): a
# client or report may send any text there; a longer one is clipped with an ellipsis. Every other
# bound on a stored number is derived from this one.
MAX_STORED_NUMBER_CHARS = 64


def is_e164(number: str) -> bool:
    """True when ``number`` is exactly an E.164 number (``+`` and 7 to 15 digits, the first not 0)."""
    return _E164.fullmatch(number) is not None
