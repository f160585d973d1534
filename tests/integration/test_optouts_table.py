"""The OptOuts table against a real Azurite: ETag races, hostile keys, sealed listing, chunk reads."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from mms_tracker.adapters.tables.optouts import OPTOUTS_TABLE, OptOutTables
from mms_tracker.domain.optout import OptOut, OptOutSource
from mms_tracker.service.ports import InvalidContinuationToken
from mms_tracker.settings import Settings

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SENDER = "+18005550100"
OTHER_SENDER = "+18005550199"
HOSTILE = ["+1/2#3?4\\5", "+1%2F", "+1 '\" or 1 eq 1", "+1\u3042\u3044", "+1" + "\u00e9" * 300, "+1\ud800x", "+1|a"]


@pytest.fixture
def optouts(store: Any, runtime: Settings) -> OptOutTables:
    table = store._service.get_table_client(runtime.table_prefix + OPTOUTS_TABLE)
    return OptOutTables(table, store, runtime.storage_timeout_seconds)


def change(recipient: str, opted_out: bool, seconds: float, sender: str = SENDER) -> OptOut:
    return OptOut(
        sender,
        recipient,
        opted_out,
        OptOutSource.REPLY,
        "STOP" if opted_out else "START",
        T0 + dt.timedelta(seconds=seconds),
    )


async def test_stop_then_older_start_keeps_the_opt_out_and_redelivery_changes_nothing(optouts: OptOutTables) -> None:
    assert await optouts.get_pair(SENDER, "+14255550001") is None
    stop = change("+14255550001", True, 10)
    assert await optouts.apply_change(stop) == stop
    assert await optouts.apply_change(change("+14255550001", False, 5)) == stop
    assert await optouts.apply_change(stop) == stop
    assert await optouts.get_pair(SENDER, "+14255550001") == stop
    start = change("+14255550001", False, 20)
    assert await optouts.apply_change(start) == start
    assert await optouts.get_pair(SENDER, "+14255550001") == start
    assert await optouts.get_pair(OTHER_SENDER, "+14255550001") is None


async def test_racing_changes_of_one_pair_end_in_the_latest(optouts: OptOutTables) -> None:
    changes = [change("+14255550002", i % 2 == 0, i) for i in range(12)]
    await asyncio.gather(*(optouts.apply_change(c) for c in reversed(changes)))
    assert await optouts.get_pair(SENDER, "+14255550002") == changes[-1]


async def test_hostile_numbers_are_stored_and_read_back_per_pair(optouts: OptOutTables) -> None:
    for i, number in enumerate(HOSTILE):
        await optouts.apply_change(change(number, True, i, sender=number))
        await optouts.apply_change(change(number, True, i))
    for number in HOSTILE:
        stored = await optouts.get_pair(number, number)
        assert stored is not None and stored.opted_out
    # One query finds them all, a hashed key (the 300 accents) and a lone surrogate included.
    assert await optouts.opted_out_among(SENDER, HOSTILE) == frozenset(HOSTILE)


async def test_one_query_answers_a_chunk_of_100(optouts: OptOutTables) -> None:
    recipients = [f"+1425556{i:04d}" for i in range(100)]
    opted = recipients[::7]
    await asyncio.gather(*(optouts.apply_change(change(r, True, 1)) for r in opted))
    await optouts.apply_change(change(recipients[7], False, 2))  # opted back in
    await optouts.apply_change(change(recipients[1], True, 1, sender=OTHER_SENDER))  # another sender's
    await optouts.apply_change(change("+14255559999", True, 1))  # outside the chunk, inside no range
    before = optouts.queries
    found = await optouts.opted_out_among(SENDER, recipients)
    assert optouts.queries - before == 1
    assert found == frozenset(opted) - {recipients[7]}
    assert await optouts.opted_out_among(SENDER, []) == frozenset()
    with pytest.raises(ValueError, match="at most 100"):
        await optouts.opted_out_among(SENDER, [*recipients, "+14255550000"])


async def test_listing_pages_with_a_sealed_token_bound_to_the_sender(optouts: OptOutTables) -> None:
    sender = "+18005550111"
    recipients = {f"+1206555{i:04d}" for i in range(5)}
    for r in recipients:
        await optouts.apply_change(change(r, True, 1, sender=sender))
    await optouts.apply_change(change("+12065550000", True, 1, sender=OTHER_SENDER))
    seen: list[str] = []
    items, token = await optouts.list_sender(sender, 2, None)
    seen += [i.recipient for i in items]
    assert token is not None
    with pytest.raises(InvalidContinuationToken):
        await optouts.list_sender(OTHER_SENDER, 2, token)
    with pytest.raises(InvalidContinuationToken):
        await optouts.list_sender(sender, 2, token[:-2] + "AA")
    while token:
        items, token = await optouts.list_sender(sender, 2, token)
        seen += [i.recipient for i in items]
    assert sorted(seen) == sorted(recipients)
