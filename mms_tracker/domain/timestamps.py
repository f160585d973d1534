"""Timestamps as the services write them: RFC 1123 dates (repeatability); arithmetic on times that cannot overflow."""

from __future__ import annotations

import datetime as dt
import re

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RFC1123 = re.compile(
    r"(?P<day>[A-Za-z]{3}), (?P<d>\d{2}) (?P<mon>[A-Za-z]{3}) (?P<y>\d{4}) (?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2}) GMT"
)


def parse_rfc1123(value: str) -> dt.datetime | None:
    """``Tue, 26 Mar 2019 16:06:51 GMT`` to an aware UTC datetime; None unless it is exactly that form.

    The weekday must match the date, as RFC 1123 (and .NET's ``"R"`` format, which ACS reads) has it.
    """
    found = _RFC1123.fullmatch(value)
    if found is None or found["mon"].title() not in _MONTHS or found["day"].title() not in _DAYS:
        return None
    try:
        moment = dt.datetime(
            int(found["y"]),
            _MONTHS.index(found["mon"].title()) + 1,
            int(found["d"]),
            int(found["H"]),
            int(found["M"]),
            int(found["S"]),
            tzinfo=dt.UTC,
        )
    except ValueError:
        return None
    return moment if _DAYS[moment.weekday()] == found["day"].title() else None


def shifted(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``moment + delta``, saturated at the calendar's ends instead of raising ``OverflowError``.

    A time reported from outside or read back from storage may be anywhere from 0001-01-01 to
    9999-12-31 (a carrier's broken clock, .NET's ``DateTime.MaxValue``); a schedule computed from it
    (retention, expiry, a retry's next attempt) then lands on ``datetime.max`` or ``datetime.min``
    in the same zone, a time no timer ever reaches or one that is long past, never an exception
    that would stop the timer on that entry for good.
    """
    try:
        return moment + delta
    except OverflowError:
        edge = dt.datetime.max if delta > dt.timedelta(0) else dt.datetime.min
        return edge.replace(tzinfo=moment.tzinfo)
