"""Phone numbers: the one E.164 rule (settings, send validation and the OpenAPI document use it)."""

from __future__ import annotations

import re

E164_PATTERN = r"\+[1-9][0-9]{6,14}"  # ASCII digits only: Python's \d would also match other scripts' digits
_E164 = re.compile(E164_PATTERN)


def is_e164(number: str) -> bool:
    """True when ``number`` is exactly an E.164 number (``+`` and 7 to 15 digits, the first not 0)."""
    return _E164.fullmatch(number) is not None
