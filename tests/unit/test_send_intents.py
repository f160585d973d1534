"""Intent before the ACS call, and the reconciler that finishes what the send could not (issue 19),
over the hand-written fake store."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from mms_tracker.domain import Status
from mms_tracker.service.ports import (
    AcsError,
    AcsRequestRejected,
    AcsThrottled,
    AcsTimeout,
    SendIntent,
    StorageUnavailable,
)
from mms_tracker.service.reconciler import Reconciled, ReconcileDeps, reconcile_sends
from mms_tracker.service.sending import (
    MmsRequest,
    Recipient,
    RepeatabilityConflict,
    SendDeps,
    send_mms,
)
from tests.fakes import InMemoryStore, RecordsDown

T0 = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
MINUTE = dt.timedelta(minutes=1)


class Acs:
    """ACS as far as repeatability goes: a pair it has answered gets the same answer again.

    ``failures`` are raised, one per call, before anything else; ``no_report`` numbers are
    accepted like any other (whether a report follows is not ACS's answer).
    """

    def __init__(self, *failures: AcsError, store: InMemoryStore | None = None) -> None:
        self.failures = list(failures)
        self.calls: list[Mapping[str, Any]] = []
        self.answered: dict[str, dict[str, Any]] = {}
        self.intents_seen: list[int] = []
        self._store = store

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(payload)
        if self._store is not None:
            self.intents_seen.append(len(self._store.intents))
        if self.failures:
            raise self.failures.pop(0)
        value = []
        for r in payload["recipients"]:
            key = r["repeatabilityRequestId"]
            if key not in self.answered:
                self.answered[key] = {
                    "to": r["to"],
                    "messageId": f"m-{uuid.uuid4().hex[:8]}",
                    "httpStatusCode": 202,
                    "successful": True,
                }
            value.append(self.answered[key])
        return {"value": value}

    @property
    def sent(self) -> int:
        """Messages ACS actually sent: one per distinct repeatability pair it answered."""
        return len(self.answered)


def request(*numbers: str, tag: str = "t", client_ids: bool = False) -> MmsRequest:
    recipients = tuple(
        Recipient(n, str(uuid.uuid4()), "Sun, 29 Nov 2026 09:00:00 GMT") if client_ids else Recipient(n)
        for n in numbers
    )
    return MmsRequest("+18004567891", recipients, "hi", (), tag)


async def send(store: InMemoryStore, acs: Acs, req: MmsRequest, budget: float | None = None) -> list[dict[str, Any]]:
    return await send_mms(req, SendDeps(acs, store, store, WINDOW, intents=store, storage_budget=budget), T0)


async def reconcile(store: InMemoryStore, acs: Acs, at: dt.datetime) -> Any:
    return await reconcile_sends(ReconcileDeps(store, acs, store, store), at, MINUTE)


async def test_the_intent_is_written_before_acs_is_called_and_removed_after_the_records() -> None:
    store = InMemoryStore()
    acs = Acs(store=store)
    items = await send(store, acs, request("+15550003333", "+15550004044"))
    assert acs.intents_seen == [1]
    [intent_payload] = acs.calls
    assert [r["to"] for r in intent_payload["recipients"]] == ["+15550003333", "+15550004044"]
    assert store.intents == {}
    assert {store.records[i["messageId"]].status for i in items} == {Status.ACCEPTED}


async def test_an_intent_holds_the_call_it_stands_for_and_its_expiry() -> None:
    store = RecordsDown()
    acs = Acs()
    await send(store, acs, request("+15550003333"))
    [intent] = store.intents.values()
    assert intent.payload == acs.calls[0]
    assert (intent.created_at, intent.expires_at) == (T0, T0 + WINDOW)


async def test_when_the_intent_cannot_be_written_nothing_is_sent() -> None:
    store = InMemoryStore()
    store.intents_down = True
    acs = Acs()
    with pytest.raises(StorageUnavailable):
        await send(store, acs, request("+15550003333"))
    assert acs.calls == []
    assert store.records == {}


async def test_when_the_records_cannot_be_written_the_answer_stands_and_the_intent_stays() -> None:
    store = RecordsDown()
    acs = Acs()
    items = await send(store, acs, request("+15550003333", "+15550004044"))
    assert all(i["successful"] for i in items)
    assert store.records == {} and len(store.intents) == 1
    assert await reconcile(store, acs, T0 + MINUTE / 2) == Reconciled()  # too young: left alone
    assert len(acs.calls) == 1
    with pytest.raises(StorageUnavailable):  # still down: the run fails, the intent stays
        await reconcile(store, acs, T0 + 2 * MINUTE)
    assert len(store.intents) == 1


async def test_the_reconciler_records_what_acs_answered_first_and_sends_nothing_twice() -> None:
    store = RecordsDown()
    acs = Acs()
    items = await send(store, acs, request("+15550003333", "+15550004044"))
    store.fail = False
    outcome = await reconcile(store, acs, T0 + 2 * MINUTE)
    assert outcome.recorded == 1
    assert acs.sent == 2  # the repeat carried the same pairs: ACS answered, sent nothing new
    assert {i["messageId"] for i in items} == set(store.records)
    for item in items:
        record = store.records[item["messageId"]]
        assert (record.status, record.created_at, record.tag) == (Status.ACCEPTED, T0, "t")
        assert store.due_entries[item["messageId"]] == T0 + WINDOW
    assert store.intents == {}
    assert (await reconcile(store, acs, T0 + 3 * MINUTE)).recorded == 0


async def test_the_reconciler_keeps_client_results_so_a_repeated_request_is_answered_from_storage() -> None:
    store = RecordsDown()
    acs = Acs()
    req = request("+15550003333", tag="c", client_ids=True)
    first = await send(store, acs, req)
    assert all("item" not in v for v in store.send_results.values())  # claimed before the call, no result yet
    store.fail = False
    await reconcile(store, acs, T0 + 2 * MINUTE)
    again = await send(store, acs, req)
    assert again == first
    assert len(acs.calls) == 2  # the send and the reconciler's repeat; the repeated request: none


@pytest.mark.parametrize("failure", [AcsThrottled("slow down"), AcsRequestRejected("bad", upstream_status=400)])
async def test_an_acs_refusal_removes_the_intent(failure: AcsError) -> None:
    store = InMemoryStore()
    with pytest.raises(type(failure)):
        await send(store, Acs(failure), request("+15550003333"))
    assert store.intents == {}
    assert store.records == {}


@pytest.mark.parametrize("failure", [AcsThrottled("slow down"), AcsRequestRejected("bad", upstream_status=400)])
async def test_a_client_id_is_free_again_when_acs_certainly_took_nothing(failure: AcsError) -> None:
    store = InMemoryStore()
    first = request("+15550003333", tag="c", client_ids=True)
    with pytest.raises(type(failure)):
        await send(store, Acs(failure), first)
    assert store.send_results == {}  # the claim went with the intent: ACS never saw the id
    other = MmsRequest(first.from_, first.recipients, "another message", first.attachments, "c")
    assert (await send(store, Acs(), other))[0]["successful"] is True


async def test_a_claim_stays_while_acs_may_have_the_id_and_refuses_another_request_under_it() -> None:
    store = InMemoryStore()
    first = request("+15550003333", tag="c", client_ids=True)
    with pytest.raises(AcsTimeout):
        await send(store, Acs(AcsTimeout("lost", maybe_sent=True)), first)
    other = MmsRequest(first.from_, first.recipients, "another message", first.attachments, "c")
    acs = Acs()
    with pytest.raises(RepeatabilityConflict):
        await send(store, acs, other)
    assert acs.calls == []
    assert (await send(store, acs, first))[0]["successful"] is True  # the same request goes through


async def test_an_acs_failure_that_may_have_sent_keeps_the_intent_for_the_reconciler() -> None:
    store = InMemoryStore()
    acs = Acs(AcsTimeout("lost", maybe_sent=True))
    with pytest.raises(AcsTimeout):
        await send(store, acs, request("+15550004044"))
    assert len(store.intents) == 1
    outcome = await reconcile(store, acs, T0 + 2 * MINUTE)
    assert outcome.recorded == 1
    [record] = store.records.values()
    assert record.status is Status.ACCEPTED and record.to == "+15550004044"


async def test_an_unanswered_intent_is_retried_then_given_up_after_the_expiry_window_with_a_reason() -> None:
    store = InMemoryStore()
    acs = Acs(AcsTimeout("lost", maybe_sent=True), AcsTimeout("still lost", maybe_sent=True))
    with pytest.raises(AcsTimeout):
        await send(store, acs, request("+15550004044"))
    assert (await reconcile(store, acs, T0 + 2 * MINUTE)).pending == 1
    [intent] = store.intents.values()
    assert (intent.attempts, intent.last_error) == (1, "still lost")
    outcome = await reconcile(store, acs, T0 + WINDOW)
    assert outcome.abandoned == 1
    [record] = store.records.values()
    assert record.status is Status.REJECTED
    assert record.status_details is not None and "EXPIRY_WINDOW_HOURS" in record.status_details
    assert "still lost" in record.status_details
    assert store.intents == {}
    assert len(acs.calls) == 2  # past its window, an intent is not sent again


async def test_a_whole_request_that_acs_refuses_on_reconciliation_is_recorded_as_refused() -> None:
    store = InMemoryStore()
    acs = Acs(
        AcsTimeout("lost", maybe_sent=True), AcsRequestRejected("ACS refused the request: nope", upstream_status=400)
    )
    with pytest.raises(AcsTimeout):
        await send(store, acs, request("+15550003333"))
    assert (await reconcile(store, acs, T0 + 2 * MINUTE)).refused == 1
    [record] = store.records.values()
    assert record.status is Status.REJECTED and record.status_details == "ACS refused the request: nope"
    assert store.intents == {}


async def test_a_stalled_store_after_acs_accepted_still_answers_within_the_storage_budget() -> None:
    class Stalled(InMemoryStore):
        stall = False

        async def apply(self, *args: Any, **kwargs: Any) -> Any:
            if self.stall:
                await asyncio.Event().wait()
            return await super().apply(*args, **kwargs)

    store = Stalled()
    store.stall = True
    items = await send(store, Acs(), request("+15550003333"), budget=0.05)
    assert items[0]["successful"] is True
    assert len(store.intents) == 1


async def test_a_stalled_store_before_the_call_is_a_storage_error_and_nothing_is_sent() -> None:
    class Stalled(InMemoryStore):
        async def put_intent(self, intent: SendIntent) -> None:
            await asyncio.Event().wait()

    acs = Acs()
    with pytest.raises(StorageUnavailable):
        await send(Stalled(), acs, request("+15550003333"), budget=0.05)
    assert acs.calls == []


async def test_only_recipients_sent_to_acs_are_in_the_intent() -> None:
    store = InMemoryStore()
    acs = Acs(store=store)
    items = await send(store, acs, request("+15550003333", "not-a-number"))
    assert [r["to"] for r in acs.calls[0]["recipients"]] == ["+15550003333"]
    assert items[1]["httpStatusCode"] == 400
    assert store.intents == {}


async def test_an_id_claimed_by_another_request_between_the_read_and_the_claim_is_a_409_and_frees_the_rest() -> None:
    class ClaimedMeanwhile(InMemoryStore):
        async def get_send_results(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
            return {}  # read before the other request's claim landed

    store = ClaimedMeanwhile()
    req = request("+15550003333", "+15550004444", tag="c", client_ids=True)
    raced, mine = (r.repeatability_request_id or "" for r in req.recipients)
    store.send_results[raced] = {"request": "another request's fingerprint"}
    acs = Acs()
    with pytest.raises(RepeatabilityConflict) as refused:
        await send(store, acs, req)
    assert [e.field for e in refused.value.errors] == ["recipients[0].repeatabilityRequestId"]
    assert acs.calls == [] and store.intents == {}
    assert mine not in store.send_results  # the id claimed here is free again


# Review of the claims (the reviewer's sequences, each once a different request reached ACS
# under a claimed id, or a claim was promised free and was not).


async def test_acs_409_leaves_the_claim_as_another_call_under_the_pair_is_in_flight() -> None:
    store = InMemoryStore()
    first = request("+15550003333", tag="c", client_ids=True)
    with pytest.raises(AcsRequestRejected):
        await send(store, Acs(AcsRequestRejected("still processing", upstream_status=409)), first)
    other = MmsRequest(first.from_, first.recipients, "another message", first.attachments, "c")
    acs = Acs()
    with pytest.raises(RepeatabilityConflict):
        await send(store, acs, other)
    assert acs.calls == []


async def test_a_claim_stays_when_the_intent_it_guards_could_not_be_removed() -> None:
    class IntentStays(InMemoryStore):
        async def remove_intent(self, intent: Any) -> None:
            raise StorageUnavailable("down")

    store = IntentStays()
    first = request("+15550003333", tag="c", client_ids=True)
    with pytest.raises(AcsThrottled):
        await send(store, Acs(AcsThrottled("slow down")), first)
    assert len(store.intents) == 1  # the reconciler will repeat this call under the same id
    other = MmsRequest(first.from_, first.recipients, "another message", first.attachments, "c")
    with pytest.raises(RepeatabilityConflict):
        await send(store, Acs(), other)


async def test_a_claim_stays_when_the_intent_write_failed_as_it_may_have_landed() -> None:
    store = InMemoryStore()
    store.intents_down = True
    first = request("+15550003333", tag="c", client_ids=True)
    with pytest.raises(StorageUnavailable):
        await send(store, Acs(), first)
    [held] = store.send_results.values()
    assert "item" not in held
    store.intents_down = False
    assert (await send(store, Acs(), first))[0]["successful"] is True  # the same request goes through
