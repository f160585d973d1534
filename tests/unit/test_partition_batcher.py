"""The one group-commit drain loop (``adapters/tables/batcher.py``) the records and the outbox share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from mms_tracker.adapters.tables.batcher import PartitionBatcher


@dataclass
class Write:
    row: str
    size: int = 1
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def fail(write: Write, exc: BaseException) -> None:
    if not write.done.done():
        write.done.set_exception(exc)


def batcher(submit, **limits) -> PartitionBatcher[Write]:  # type: ignore[no-untyped-def]
    return PartitionBatcher(submit, row=lambda w: w.row, fail=fail, **limits)


async def test_a_burst_is_cut_by_count_and_a_repeated_row_waits_for_the_next_batch() -> None:
    batches: list[list[str]] = []

    async def submit(partition: str, batch: list[Write]) -> None:
        batches.append([w.row for w in batch])
        for w in batch:
            w.done.set_result(None)

    b = batcher(submit, max_items=2)
    writes = [Write("a"), Write("a"), Write("b"), Write("c")]
    b.enqueue("p", writes)
    await asyncio.gather(*(w.done for w in writes))
    assert batches == [["a", "b"], ["a", "c"]]
    assert not b.tasks or all(t.done() for t in b.tasks)


async def test_the_weight_budget_cuts_a_batch_but_a_batch_always_takes_its_first_write() -> None:
    batches: list[list[str]] = []

    async def submit(partition: str, batch: list[Write]) -> None:
        batches.append([w.row for w in batch])
        for w in batch:
            w.done.set_result(None)

    b = batcher(submit, max_items=10, weight=lambda w: w.size, max_weight=5)
    writes = [Write("big", 9), Write("x", 3), Write("y", 2), Write("z", 1)]
    b.enqueue("p", writes)
    await asyncio.gather(*(w.done for w in writes))
    assert batches == [["big"], ["x", "y"], ["z"]]


async def test_a_failed_batch_fails_its_writers_and_those_still_queued_and_the_next_write_starts_afresh() -> None:
    calls = 0

    async def submit(partition: str, batch: list[Write]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("down")
        for w in batch:
            w.done.set_result(None)

    b = batcher(submit, max_items=1)
    first, queued = Write("a"), Write("b")
    b.enqueue("p", [first, queued])
    for w in (first, queued):
        with pytest.raises(RuntimeError, match="down"):
            await w.done
    later = Write("c")
    b.enqueue("p", [later])
    await later.done
    assert calls == 2


async def test_partitions_drain_independently() -> None:
    seen: list[str] = []

    async def submit(partition: str, batch: list[Write]) -> None:
        seen.append(partition)
        for w in batch:
            w.done.set_result(None)

    b = batcher(submit, max_items=100)
    one, two = Write("a"), Write("a")
    b.enqueue("p1", [one])
    b.enqueue("p2", [two])
    await asyncio.gather(one.done, two.done)
    assert sorted(seen) == ["p1", "p2"]
