"""Records as CSV: RFC 4180 (CRLF line ends, quotes doubled), UTF-8, spreadsheet formulas defused."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from ..domain import TrackingRecord
from ..domain.phone import is_e164
from ..domain.text import iso_z

COLUMNS = ("messageId", "to", "from", "tag", "status", "statusDetails", "createdAt", "updatedAt", "completedAt")
# A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets
# (OWASP, "CSV Injection"); tab and carriage return also start one in some of them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defused(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a leading formula character gets a ``'`` before it.

    An E.164 number (``+`` and digits only) is left whole: a spreadsheet reads it as a number and
    can run nothing from it, and the export's reader wants the number as ACS knows it.
    """
    if value.startswith(FORMULA_STARTS) and not is_e164(value):
        return "'" + value
    return value


def _time(value: dt.datetime | None) -> str:
    return "" if value is None else iso_z(value)


def _encode(rows: Iterable[Iterable[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows([defused(cell) for cell in row] for row in rows)
    return out.getvalue().encode("utf-8", "replace")  # a lone surrogate becomes "?"


CSV_HEADER = _encode([COLUMNS])


def csv_rows(records: Iterable[TrackingRecord]) -> bytes:
    """The records as CSV rows (no header); phone numbers in full: the operator's own data."""
    return _encode(
        (
            r.message_id,
            r.to or "",
            r.from_ or "",
            r.tag or "",
            r.status.value,
            r.status_details or "",
            _time(r.created_at),
            _time(r.updated_at),
            _time(r.completed_at),
        )
        for r in records
    )
