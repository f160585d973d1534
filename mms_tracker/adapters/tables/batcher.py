"""Group commit per partition: one queue of writes, one committer at a time, each writer told its outcome.

Writers to one partition queue up (:meth:`PartitionBatcher.enqueue`) and wait on their own futures.
While a partition has a queue, one committer task drains it: up to ``max_items`` writes per batch
(and, when a ``weight`` is given, up to ``max_weight`` of it, a batch always taking its first
write), a row already in the batch waiting for the next one (an entity appears once in a
transaction), each batch handed to ``submit``. ``submit`` settles its writers itself; whatever it
raises reaches every writer of the batch and every writer still queued, through ``fail``, which
leaves alone a writer already settled. A committer that is cancelled fails its writers and stays
cancelled; one that fails on anything else ends there, its writers told. The records
(``commit.py``) and the outbox index (``outbox.py``) each have one (``docs/storage.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

W = TypeVar("W")


class PartitionBatcher(Generic[W]):
    """The partition queues and their committers, for one kind of write."""

    def __init__(
        self,
        submit: Callable[[str, list[W]], Awaitable[None]],
        *,
        row: Callable[[W], str],
        fail: Callable[[W, BaseException], None],
        max_items: int,
        weight: Callable[[W], int] | None = None,
        max_weight: int = 0,
    ) -> None:
        self._submit = submit
        self._row = row
        self._fail = fail
        self._max_items = max_items
        self._weight = weight
        self._max_weight = max_weight
        self._pending: dict[str, list[W]] = {}  # per partition: writes waiting for the next batch
        self._committing: set[str] = set()  # partitions whose queue a committer is draining
        self.tasks: set[asyncio.Task[None]] = set()  # the committers running

    def enqueue(self, partition: str, writes: Sequence[W]) -> None:
        """Queue ``writes`` for ``partition``'s next batch, starting its committer if none runs."""
        self._pending.setdefault(partition, []).extend(writes)
        if partition not in self._committing:
            self._committing.add(partition)
            task = asyncio.ensure_future(self._drain(partition))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _next_batch(self, queue: list[W]) -> list[W]:
        """Take the next batch off ``queue``, in order, within the limits."""
        batch: list[W] = []
        rows: set[str] = set()
        size = 0
        for write in list(queue):
            weight = self._weight(write) if self._weight is not None else 0
            over = self._weight is not None and bool(batch) and size + weight > self._max_weight
            if len(batch) == self._max_items or over:
                break
            row = self._row(write)
            if row in rows:
                continue  # one entity appears once in a transaction: it goes in the next one
            batch.append(write)
            rows.add(row)
            size += weight
            queue.remove(write)
        return batch

    async def _drain(self, partition: str) -> None:
        try:
            while queue := self._pending.get(partition):
                batch = self._next_batch(queue)
                try:
                    await self._submit(partition, batch)
                except BaseException as exc:
                    for write in batch:  # every writer of the batch hears of it, whatever it is
                        self._fail(write, exc)
                    raise
        except BaseException as exc:
            for write in self._pending.pop(partition, []):
                self._fail(write, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            # No await since the queue was last seen empty, so no writer can have queued unseen.
            self._committing.discard(partition)
            if not self._pending.get(partition):
                self._pending.pop(partition, None)  # no empty queue is kept for every partition ever written
