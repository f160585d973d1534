"""Deterministic interleavings of writers against a real Azurite: the races of the record store
(moves of untagged records, claims, retention, bursts on one shard, cancellation)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from typing import Any

from azure.core.exceptions import ServiceRequestError

from mms_tracker.adapters.tables import commit
from mms_tracker.adapters.tables.encoding import shard_of
from mms_tracker.adapters.tables.store import TableStore
from mms_tracker.domain import DeliveryReport, Send, Status
from mms_tracker.runtime import RUNTIME, _table_service, _token_key
from mms_tracker.service.ports import StorageUnavailable
from mms_tracker.service.tracking import record_report, record_sends, retire_old
from mms_tracker.settings import Settings
from tests.support import nonzero

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=1)
KEEP = dt.timedelta(days=1)
HANG = 60  # seconds: anything slower is a hang


def report(message_id: str, status: str, second: float, tag: str | None) -> DeliveryReport:
    return DeliveryReport(
        f"{message_id}-{status}-{second}",
        "Microsoft.Communication.SMSDeliveryReportReceived",
        message_id,
        status,
        f"{status} {second}",
        T0 + dt.timedelta(seconds=second),
        to="+18335852071",
        from_="+18004567891",
        tag=tag,
    )


def send(message_id: str, tag: str | None) -> Send:
    return Send(message_id, "+18335852071", "+18004567891", tag, True, T0)


def same_shard(prefix: str, n: int) -> list[str]:
    ids = (f"{prefix}-{i}" for i in itertools.count())
    first = next(ids)
    return [first, *itertools.islice((i for i in ids if shard_of(i) == shard_of(first)), n - 1)]


def second_worker(settings: Settings) -> TableStore:
    return TableStore(
        _table_service(settings), settings.table_prefix, settings.storage_timeout_seconds, _token_key(settings)
    )


async def test_a_stale_counter_cache_costs_one_retry_not_the_write(runtime: Settings) -> None:
    """Two workers alternate on one shard: each one's cached counter ETag is stale on its next write.
    The failed op is the counter op (index 1); the writer must succeed after re-reading the counters."""
    one, two = RUNTIME.store(), second_worker(runtime)
    try:
        a, b, c = same_shard("cache", 3)
        await asyncio.wait_for(record_sends(one, [send(a, "camp")], T0, WINDOW), HANG)
        await asyncio.wait_for(record_sends(two, [send(b, "camp")], T0, WINDOW), HANG)
        await asyncio.wait_for(record_sends(one, [send(c, "camp")], T0, WINDOW), HANG)  # one's cache is stale
        assert nonzero(await one.tag_counts("camp")) == {"Accepted": 3}
    finally:
        await two.close()


async def test_a_report_written_to_the_untagged_copy_during_a_move_is_not_lost(runtime: Settings) -> None:
    """Untagged report first; the send (tag) moves the record; a Delivered report without tag lands on
    the untagged copy after the mover read it and before it deleted it."""
    store = RUNTIME.store()
    await record_report(store, report("mv1", "Sent", 1, None), T0)
    original = store._write
    fired = False

    async def write(partition: str, entity: Any, before: Any, after: Any) -> None:
        nonlocal fired
        if not fired and after.tag == "camp":
            fired = True
            await record_report(store, report("mv1", "Delivered", 2, None), T0)  # to the untagged copy
        await original(partition, entity, before, after)

    store._write = write  # type: ignore[method-assign]
    await asyncio.wait_for(record_sends(store, [send("mv1", "camp")], T0, WINDOW), HANG)
    record = await store.get("mv1")
    assert record is not None and record.tag == "camp"
    assert record.status is Status.DELIVERED, record  # lost: the moved copy never saw the report
    assert nonzero(await store.tag_counts("camp")) == {"Delivered": 1}
    assert nonzero(await store.tag_counts("")) == {}  # the untagged copy is gone, not counted


async def test_a_move_interrupted_after_writing_the_target_resumes(runtime: Settings, monkeypatch: Any) -> None:
    """The pointer update of a move fails once (transient): the send's retry must finish the move."""
    store = RUNTIME.store()
    await store.ensure_tables()
    await record_report(store, report("mv2", "Sent", 1, None), T0)
    original = store.ids.upsert_entity
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ServiceRequestError("connection reset")
        return await original(*args, **kwargs)

    monkeypatch.setattr(store.ids, "upsert_entity", flaky)
    with contextlib.suppress(StorageUnavailable):  # the caller (Event Grid, the send path) retries
        await record_sends(store, [send("mv2", "camp")], T0, WINDOW)
    await asyncio.wait_for(record_sends(store, [send("mv2", "camp")], T0, WINDOW), HANG)
    record = await store.get("mv2")
    assert record is not None and record.tag == "camp" and record.sent
    assert nonzero(await store.tag_counts("camp")) == {"Accepted": 1}
    assert nonzero(await store.tag_counts("")) == {}


async def test_an_untagged_report_between_a_sends_claim_and_its_write(runtime: Settings) -> None:
    """The send claims the pointer for its tag; an untagged report then creates the record there (tag
    None) before the send writes. The send must not try to move the record onto itself."""
    store = RUNTIME.store()
    original = store._write
    fired = False

    async def write(partition: str, entity: Any, before: Any, after: Any) -> None:
        nonlocal fired
        if not fired and after.sent:
            fired = True
            await record_report(store, report("cl1", "Delivered", 2, None), T0)
        await original(partition, entity, before, after)

    store._write = write  # type: ignore[method-assign]
    await asyncio.wait_for(record_sends(store, [send("cl1", "camp")], T0, WINDOW), HANG)
    record = await store.get("cl1")
    assert record is not None and record.tag == "camp" and record.sent and record.status is Status.DELIVERED
    assert nonzero(await store.tag_counts("camp")) == {"Delivered": 1}


async def test_a_report_with_another_tag_between_a_sends_claim_and_its_write(runtime: Settings) -> None:
    """As above with a report carrying tag B: the record lands in camp's partition saying tag B."""
    store = RUNTIME.store()
    original = store._write
    fired = False

    async def write(partition: str, entity: Any, before: Any, after: Any) -> None:
        nonlocal fired
        if not fired and after.sent:
            fired = True
            await record_report(store, report("cl2", "Delivered", 2, "other"), T0)
        await original(partition, entity, before, after)

    store._write = write  # type: ignore[method-assign]
    await asyncio.wait_for(record_sends(store, [send("cl2", "camp")], T0, WINDOW), HANG)
    record = await store.get("cl2")
    assert record is not None
    listed = {r.message_id: r.tag for r in (await store.list_tag("camp", None, 100, None)).items}
    # it is listed and counted under camp (the first claim), so its tag must say camp
    assert listed == {"cl2": "camp"} and record.tag == "camp", (record.tag, listed)
    assert nonzero(await store.tag_counts("camp")) == {"Delivered": 1}


async def test_a_late_report_racing_retirement_leaves_a_reachable_record(runtime: Settings) -> None:
    """Retention deletes the record; a late report recreates it before retention drops the pointer."""
    store = RUNTIME.store()
    await record_sends(store, [send("rt1", "camp")], T0, WINDOW, KEEP)
    await record_report(store, report("rt1", "Delivered", 1, "camp"), T0)
    original = store._drop_pointer
    fired = False

    async def drop(message_id: str, *etag: str) -> None:
        nonlocal fired
        if not fired:
            fired = True
            await record_report(store, report("rt1", "Failed", 5, "camp"), T0 + WINDOW + KEEP)
        await original(message_id, *etag)

    store._drop_pointer = drop  # type: ignore[method-assign]
    await asyncio.wait_for(retire_old(store, T0 + WINDOW + KEEP + dt.timedelta(hours=1), KEEP), HANG)
    listed = [r.message_id for r in (await store.list_tag("camp", None, 100, None)).items]
    assert listed == ["rt1"]  # the late report's record exists and is counted...
    assert await store.get("rt1") is not None  # ...so it must be reachable by id


# --- what held -------------------------------------------------------------------------------


async def test_tags_that_prefix_one_another_list_and_count_apart(runtime: Settings) -> None:
    store = RUNTIME.store()
    tags = ["a", "a~", "a_", "a-", "a.", "A", "a%", "a|", "a}", "a|00", "ab", "日本" * 70, "日本" * 70 + "x", ""]
    sends = [send(f"pfx{i}-{j}", tag or None) for i, tag in enumerate(tags) for j in range(3)]
    await asyncio.wait_for(record_sends(store, sends, T0, WINDOW), HANG)
    for i, tag in enumerate(tags):
        page = await store.list_tag(tag, None, 100, None)
        assert sorted(r.message_id for r in page.items) == [f"pfx{i}-{j}" for j in range(3)], tag
        assert nonzero(await store.tag_counts(tag)) == {"Accepted": 3}, tag


async def test_many_writers_one_shard_with_repeats_and_stale_etags(runtime: Settings) -> None:
    """120 messages of one shard (over one batch), each sent twice at once and reported twice at once."""
    store = RUNTIME.store()
    ids = same_shard("burst", 120)
    await asyncio.wait_for(
        asyncio.gather(*(record_sends(store, [send(m, "burst")], T0, WINDOW) for m in ids * 2)), HANG
    )
    await asyncio.wait_for(
        asyncio.gather(
            *(
                record_report(store, report(m, s, k, "burst"), T0)
                for m in ids
                for k, s in enumerate(["Delivered", "Failed"])
            )
        ),
        HANG,
    )
    records = [await store.get(m) for m in ids]
    assert all(r is not None and r.status is Status.FAILED and r.sent for r in records)
    assert nonzero(await store.tag_counts("burst")) == {"Failed": 120}


async def test_cancelled_writers_and_a_dead_committer_leave_no_hang_and_exact_counters(
    runtime: Settings, monkeypatch: Any
) -> None:
    store = RUNTIME.store()
    await store.ensure_tables()
    ids = same_shard("cancel", 40)
    tasks = [asyncio.ensure_future(record_sends(store, [send(m, "cancel")], T0, WINDOW)) for m in ids]
    await asyncio.sleep(0)
    for t in tasks[::2]:
        t.cancel()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), HANG)
    deadline = asyncio.get_running_loop().time() + HANG
    while store._commit_tasks and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)  # poll: the committer drains what cancelled writers left queued
    recount = len([m for m in ids if await store.get(m) is not None])
    assert nonzero(await store.tag_counts("cancel")) == ({"Accepted": recount} if recount else {})

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("committer dies")

    original = commit.submit_transaction
    monkeypatch.setattr(commit, "submit_transaction", boom)
    more = same_shard("dead", 5)
    results = await asyncio.wait_for(
        asyncio.gather(*(record_sends(store, [send(m, "dead")], T0, WINDOW) for m in more), return_exceptions=True),
        HANG,
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    monkeypatch.setattr(commit, "submit_transaction", original)
    await asyncio.wait_for(record_sends(store, [send(m, "dead") for m in more], T0, WINDOW), HANG)
    assert nonzero(await store.tag_counts("dead")) == {"Accepted": 5}
