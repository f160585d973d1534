"""A tag's counters equal a recount of its records, after any interleaving of sends, reports
(duplicated, reordered, carrying other tags or none), expiries and retention, run concurrently in waves
against a real Azurite. The counters change in the same transaction as the record they count, so
no interleaving may leave them apart. That holds for the delivery statistics kept beside them too:
the latency histogram (a send arriving after its report moves ``createdAt`` earlier, and so the
record's bucket) and the failure reasons."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mms_tracker.domain import DeliveryReport, Send
from mms_tracker.domain.statistics import contribution
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.tracking import expire_due, record_report, record_sends, retire_old
from mms_tracker.settings import Settings
from tests.support import nonzero

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=1)
MESSAGES = 4

OPERATION = st.one_of(
    # the send's time, seconds before T0: a send recorded after its report moves createdAt earlier
    st.tuples(st.just("send"), st.integers(0, MESSAGES - 1), st.booleans(), st.sampled_from([0, 20, 400])),
    st.tuples(
        st.just("report"),
        st.integers(0, MESSAGES - 1),
        st.sampled_from(["Delivered", "Failed", "Sent"]),
        st.integers(0, 3),  # receivedTimestamp, seconds: equal values make duplicates
        st.sampled_from(["own", "none", "other"]),  # the report's tag
    ),
    st.tuples(st.just("expire"), st.sampled_from([0, 2])),  # hours after T0: 2 is past the window
    st.tuples(st.just("retire"), st.sampled_from([0, 1])),  # 1: a day past the retention of what was final
)
KEEP = dt.timedelta(days=1)
WAVES = st.lists(st.lists(OPERATION, min_size=1, max_size=5), min_size=1, max_size=5)


def draw() -> list[list[list[tuple[Any, ...]]]]:
    cases: list[list[list[tuple[Any, ...]]]] = []

    @settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(WAVES)
    def collect(waves: list[list[tuple[Any, ...]]]) -> None:
        cases.append(waves)

    collect()
    return cases


async def run(waves: list[list[tuple[Any, ...]]], tag: str) -> None:
    store = RUNTIME.store()
    ids = [f"{tag}-m{i}" for i in range(MESSAGES)]

    async def one(op: tuple[Any, ...]) -> None:
        if op[0] == "send":
            send = Send(ids[op[1]], "+18335852071", "+18004567891", tag, op[2], T0 - dt.timedelta(seconds=op[3]))
            await record_sends(store, [send], T0, WINDOW, KEEP)
        elif op[0] == "report":
            _, i, status, second, whose = op
            report_tag = {"own": tag, "none": None, "other": f"{tag}-other"}[whose]
            received = T0 + dt.timedelta(seconds=second)
            report = DeliveryReport(
                str(uuid.uuid4()), "t", ids[i], status, f"{status} {second % 2}", received, tag=report_tag
            )
            await record_report(store, report, T0 + dt.timedelta(minutes=1))
        elif op[0] == "expire":
            await expire_due(store, T0 + dt.timedelta(hours=op[1], minutes=1))
        else:
            await retire_old(store, T0 + WINDOW + KEEP + dt.timedelta(days=op[1], hours=1), KEEP)

    for wave in waves:
        await asyncio.gather(*(one(op) for op in wave))


async def records_in(tag: str, ids_of: str) -> list[Any]:
    """The records of the example's messages that belong to ``tag``."""
    store = RUNTIME.store()
    found = [await store.get(f"{ids_of}-m{i}") for i in range(MESSAGES)]
    return [r for r in found if r is not None and r.tag == tag]


async def test_counters_equal_a_recount_of_the_records_after_any_interleaving(runtime: Settings) -> None:
    store = RUNTIME.store()
    for n, waves in enumerate(draw()):
        tag = f"prop{n}-{uuid.uuid4().hex[:6]}"
        await run(waves, tag)
        for counted in (tag, f"{tag}-other"):
            records = await records_in(counted, tag)
            assert nonzero(await store.tag_counts(counted)) == dict(Counter(r.status.value for r in records)), waves
            recount: Counter[str] = Counter()
            for r in records:
                recount.update(contribution(r))  # status, latency bucket (Delivered), reason (Failed)
            assert nonzero(await store.tag_counters(counted)) == dict(recount), waves
            page = await store.list_tag(counted, None, 100, None)
            assert sorted(r.message_id for r in page.items) == sorted(r.message_id for r in records), waves
