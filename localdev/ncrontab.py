"""NCRONTAB schedules as the Functions timer trigger reads them: six fields, seconds first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES = {
    4: {
        m: i
        for i, m in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
        )
    },
    5: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}


@dataclass(frozen=True)
class Schedule:
    """A parsed six-field NCRONTAB expression (``{second} {minute} {hour} {day} {month} {day-of-week}``)."""

    fields: tuple[frozenset[int], ...]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        parts = expression.split()
        if len(parts) != 6:
            raise ValueError(f"NCRONTAB needs six fields, got {len(parts)}: {expression!r}")
        return cls(tuple(_field(p, i) for i, p in enumerate(parts)))

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first whole second strictly after ``moment`` that the schedule selects."""
        candidate = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
        seconds, minutes, hours, days, months, weekdays = self.fields
        for _ in range(366 * 24 * 60 * 2):
            if candidate.month not in months:
                candidate = (candidate.replace(day=1, hour=0, minute=0, second=0) + dt.timedelta(days=32)).replace(
                    day=1
                )
                continue
            if candidate.day not in days or (candidate.isoweekday() % 7) not in weekdays:
                candidate = candidate.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
                continue
            if candidate.hour not in hours:
                candidate = candidate.replace(minute=0, second=0) + dt.timedelta(hours=1)
                continue
            if candidate.minute not in minutes:
                candidate = candidate.replace(second=0) + dt.timedelta(minutes=1)
                continue
            if candidate.second not in seconds:
                candidate += dt.timedelta(seconds=1)
                continue
            return candidate
        raise ValueError("schedule never fires")


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for item in text.lower().split(","):
        spec, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {text!r}")
        if spec == "*":
            start, stop = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            start, stop = _value(a, index), _value(b, index)
        else:
            start = _value(spec, index)
            stop = high if step_text else start
        if not (low <= start <= high and low <= stop <= high):
            raise ValueError(f"value out of range in {text!r}")
        values.update(range(start, stop + 1, step))
    if index == 5 and 7 in values:
        values.add(0)
    return frozenset(values)


def _value(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    if text in names:
        return names[text]
    number = int(text)
    return 0 if (index == 5 and number == 7) else number
