from __future__ import annotations

import datetime as dt

import pytest

from localdev.ncrontab import Schedule

T0 = dt.datetime(2026, 11, 27, 9, 0, 0, 500000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("* * * * * *", dt.datetime(2026, 11, 27, 9, 0, 1, tzinfo=dt.UTC)),
        ("0 */5 * * * *", dt.datetime(2026, 11, 27, 9, 5, 0, tzinfo=dt.UTC)),
        ("30 15 10 * * *", dt.datetime(2026, 11, 27, 10, 15, 30, tzinfo=dt.UTC)),
        ("0 0 0 * * Mon", dt.datetime(2026, 11, 30, 0, 0, 0, tzinfo=dt.UTC)),
        ("0 0 12 1 jan *", dt.datetime(2027, 1, 1, 12, 0, 0, tzinfo=dt.UTC)),
        ("0 0 9-17/4 * * 1-5", dt.datetime(2026, 11, 27, 13, 0, 0, tzinfo=dt.UTC)),
    ],
)
def test_next_occurrence_follows_ncrontab(expression: str, expected: dt.datetime) -> None:
    assert Schedule.parse(expression).next_after(T0) == expected


@pytest.mark.parametrize("expression", ["* * * * *", "61 * * * * *", "*/0 * * * * *"])
def test_malformed_schedule_is_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        Schedule.parse(expression)
