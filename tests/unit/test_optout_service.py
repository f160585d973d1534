"""service/optouts.py over a fake store: record_inbound and split_opted_out."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mms_tracker.domain.inbound import InboundReply
from mms_tracker.domain.optout import OptOut, OptOutSource, apply, classify
from mms_tracker.service.optouts import record_inbound, split_opted_out

SENDER = "+18005550100"
OTHER_SENDER = "+18005550199"
RECIPIENT = "+14255550123"
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
# The opted-out item (issue 27): its keys are ACS's per-recipient send item's, MmsSendResponseItem
# (Azure/azure-rest-api-specs, specification/communication/data-plane/Sms/preview/2024-01-14-preview/
# communicationservicessms.json: to, messageId, httpStatusCode, repeatabilityResult, successful,
# errorMessage), in the order of the 400 item service/sending.py writes for an invalid number.
OPTED_OUT_ITEM_KEYS = ["to", "httpStatusCode", "successful", "errorMessage"]


class FakeOptOuts:
    """The OptOutStore port in memory, counting opted_out_among reads."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], OptOut] = {}
        self.reads: list[tuple[str, list[str]]] = []

    async def get_pair(self, sender: str, recipient: str) -> OptOut | None:
        return self.pairs.get((sender, recipient))

    async def apply_change(self, change: OptOut) -> OptOut:
        key = (change.sender, change.recipient)
        self.pairs[key] = apply(self.pairs.get(key), change)
        return self.pairs[key]

    async def list_sender(
        self, sender: str, page_size: int, continuation_token: str | None
    ) -> tuple[list[OptOut], str | None]:
        return [s for (p, _), s in sorted(self.pairs.items()) if p == sender][:page_size], None

    async def opted_out_among(self, sender: str, recipients: Sequence[str]) -> frozenset[str]:
        assert len(recipients) <= 100
        self.reads.append((sender, list(recipients)))
        return frozenset(r for r in recipients if (s := self.pairs.get((sender, r))) is not None and s.opted_out)


def reply(text: str, at: dt.datetime, *, sender: str = SENDER, event_id: str = "e1") -> InboundReply:
    return InboundReply(
        event_id=event_id,
        message_id="m-" + event_id,
        sender=sender,
        recipient=RECIPIENT,
        keyword=classify(text),
        received_timestamp=at,
    )


def test_stop_opts_the_pair_out_and_start_reverses_it_for_that_sender_only() -> None:
    store = FakeOptOuts()
    stop = asyncio.run(record_inbound(store, reply(" stop ", T0)))
    assert stop is not None and stop.opted_out and stop.keyword == "STOP" and stop.source == "reply"
    assert asyncio.run(store.get_pair(OTHER_SENDER, RECIPIENT)) is None
    start = asyncio.run(record_inbound(store, reply("Start", T0 + dt.timedelta(seconds=1), event_id="e2")))
    assert start is not None and not start.opted_out and start.keyword == "START"
    assert start.changed_at == T0 + dt.timedelta(seconds=1)


def test_other_text_changes_nothing_and_an_earlier_start_loses_to_a_later_stop() -> None:
    store = FakeOptOuts()
    assert asyncio.run(record_inbound(store, reply("please stop by", T0))) is None
    assert store.pairs == {}
    asyncio.run(record_inbound(store, reply("STOP", T0 + dt.timedelta(seconds=5))))
    late = asyncio.run(record_inbound(store, reply("START", T0, event_id="e2")))
    assert late is not None and late.opted_out and late.keyword == "STOP"


def test_record_inbound_logs_masked_numbers_and_never_the_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store = FakeOptOuts()
    asyncio.run(record_inbound(store, reply("unsubscribe", T0)))
    asyncio.run(record_inbound(store, reply("my secret words", T0, event_id="e2")))
    text = caplog.text
    assert "+1******0123" in text and RECIPIENT not in text and SENDER not in text
    assert "secret" not in text and "unsubscribe" not in text  # the keyword is logged upper-case only
    assert "UNSUBSCRIBE" in text


@given(st.permutations(range(6)), st.lists(st.booleans(), min_size=6, max_size=6), st.integers(1, 3))
def test_any_arrival_order_and_redelivery_end_in_the_latest_replys_state(
    order: list[int], stops: list[bool], redeliver: int
) -> None:
    replies = [
        reply("STOP" if stop else "START", T0 + dt.timedelta(seconds=i), event_id=f"e{i}")
        for i, stop in enumerate(stops)
    ]
    store = FakeOptOuts()
    for i in order * redeliver:
        asyncio.run(record_inbound(store, replies[i]))
    state = store.pairs[(SENDER, RECIPIENT)]
    assert state.opted_out is stops[-1]
    assert state.changed_at == T0 + dt.timedelta(seconds=5)


def test_split_keeps_order_answers_each_opted_out_recipient_with_a_403_and_reads_once_per_chunk() -> None:
    store = FakeOptOuts()
    recipients = [f"+1425555{i:04d}" for i in range(150)]
    for to in recipients[::10]:
        change = OptOut(SENDER, to, opted_out=True, source=OptOutSource.REPLY, keyword="STOP", changed_at=T0)
        asyncio.run(store.apply_change(change))
    allowed, rejected = asyncio.run(split_opted_out(store, SENDER, recipients))
    assert allowed == [to for i, to in enumerate(recipients) if i % 10]
    assert [item["to"] for item in rejected] == recipients[::10]
    assert all(list(item) == OPTED_OUT_ITEM_KEYS for item in rejected)
    assert rejected[0] == {
        "to": recipients[0],
        "successful": False,
        "httpStatusCode": 403,
        "errorMessage": "Recipient has opted out of messages from this sender.",
    }
    assert [len(chunk) for _, chunk in store.reads] == [100, 50]
    other_allowed, other_rejected = asyncio.run(split_opted_out(store, OTHER_SENDER, recipients))
    assert other_allowed == recipients and other_rejected == []


def test_split_of_no_recipients_reads_nothing() -> None:
    store = FakeOptOuts()
    assert asyncio.run(split_opted_out(store, SENDER, [])) == ([], [])
    assert store.reads == []
