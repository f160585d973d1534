"""The reconciler against what ACS can answer a repeat with, and the races around an intent
(issue 19; first written as an attacker's probes in review, each failing on the first version).

ACS's repeatability, from its published page "Repeatable requests"
(https://learn.microsoft.com/en-us/rest/api/communication/repeatable-requests): ACS tracks a
request id for 5 minutes; a repeat whose first-sent time is older is answered 412 (Precondition
Failed, "potentially unsafe to re-execute"); a repeat while the original is still in progress is
answered 409.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from mms_tracker.adapters.acs import AcsClient, HmacSigner, RetryPolicy
from mms_tracker.domain import Status
from mms_tracker.service.ports import AcsTimeout, SendIntent, StorageUnavailable
from mms_tracker.service.reconciler import ReconcileDeps, reconcile_sends
from mms_tracker.service.sending import MmsRequest, Recipient, RepeatabilityConflict, SendDeps, send_mms
from mms_tracker.settings import Settings
from tests.fakes import InMemoryStore, RecordsDown
from tests.support import app_environment

T0 = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
MINUTE = dt.timedelta(minutes=1)


class RemoveFailsOnce(InMemoryStore):
    """The records land; removing the intent fails once (storage stalls at that very moment)."""

    failed = False

    async def remove_intent(self, intent: SendIntent) -> None:
        if not self.failed:
            self.failed = True
            raise StorageUnavailable("stalled")
        await super().remove_intent(intent)


def acs_answering(first: int, then: int) -> AcsClient:
    """The real ACS client over a transport that accepts the first call and answers ``then`` after."""
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            return httpx.Response(then, json={"error": {"code": "PreconditionFailed", "message": "repeat"}})
        body = json.loads(request.content)
        return httpx.Response(
            first,
            json={
                "value": [
                    {"to": r["to"], "messageId": f"m-{uuid.uuid4().hex[:8]}", "httpStatusCode": 202, "successful": True}
                    for r in body["recipients"]
                ]
            },
        )

    return AcsClient(
        "https://acs.example",
        HmacSigner(b"k"),
        transport=httpx.MockTransport(handle),
        retry=RetryPolicy(max_attempts=1),
    )


async def test_a_repeat_answered_409_is_left_for_later_and_nothing_is_invented() -> None:
    """ACS: 409 while the original request is still being processed."""
    store = RecordsDown()
    acs = acs_answering(202, 409)
    req = MmsRequest("+18004567891", (Recipient("+15550004044"),), "hi", (), "t")
    [item] = await send_mms(req, SendDeps(acs, store, store, WINDOW, intents=store), T0)
    assert item["successful"] is True
    store.fail = False
    outcome = await reconcile_sends(ReconcileDeps(store, acs, store, store), T0 + 10 * MINUTE, MINUTE)
    assert outcome.pending == 1
    assert store.records == {}  # no Rejected record for a message ACS accepted
    [intent] = store.intents.values()
    assert intent.attempts == 1
    await acs.aclose()


async def test_a_repeat_answered_412_invents_no_record_and_keeps_the_pairs_for_an_operator() -> None:
    """ACS: 412 when the first-sent time is older than it keeps requests (5 minutes, per the
    "Repeatable requests" page): whether the first call was sent can no longer be learnt."""
    store = RecordsDown()
    acs = acs_answering(202, 412)
    req = MmsRequest("+18004567891", (Recipient("+15550004044"),), "secret body", (), "t")
    [item] = await send_mms(req, SendDeps(acs, store, store, WINDOW, intents=store), T0)
    assert item["successful"] is True
    store.fail = False
    kept: list[tuple[Mapping[str, Any], str]] = []

    async def poison(envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None:
        kept.append((envelope, reason))

    outcome = await reconcile_sends(ReconcileDeps(store, acs, store, store, poison=poison), T0 + 10 * MINUTE, MINUTE)
    assert outcome.unknown == 1
    assert store.records == {} and store.intents == {}
    [(envelope, reason)] = kept
    assert envelope["type"] == "MmsTracker.SendOutcomeUnknown"
    assert [r["to"] for r in envelope["recipients"]] == ["+15550004044"]
    assert envelope["recipients"][0]["repeatabilityRequestId"]
    assert "secret body" not in json.dumps(envelope)
    assert "unknown" in reason
    await acs.aclose()


async def test_a_recipient_acs_refused_is_counted_once_when_the_intent_outlives_its_records() -> None:
    store = RemoveFailsOnce()

    class PerItemRefusal:
        async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            return {
                "value": [
                    {"to": r["to"], "httpStatusCode": 400, "successful": False, "errorMessage": "Invalid sender."}
                    for r in payload["recipients"]
                ]
            }

    req = MmsRequest("+18004567891", (Recipient("+15550003333"),), "hi", (), "t")
    await send_mms(req, SendDeps(PerItemRefusal(), store, store, WINDOW, intents=store), T0)
    assert len(store.intents) == 1  # the records were written; only the intent's removal failed
    await reconcile_sends(ReconcileDeps(store, PerItemRefusal(), store, store), T0 + 2 * MINUTE, MINUTE)
    assert store.intents == {}
    assert await store.tag_counts("t") == {"Rejected": 1}


async def test_an_accepted_message_whose_intent_is_given_up_is_not_also_counted_rejected() -> None:
    store = RemoveFailsOnce()

    class AcceptsThenSilent:
        calls = 0

        async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            self.calls += 1
            if self.calls > 1:
                raise AcsTimeout("lost", maybe_sent=True)
            return {
                "value": [
                    {"to": r["to"], "messageId": "m-1", "httpStatusCode": 202, "successful": True}
                    for r in payload["recipients"]
                ]
            }

    acs = AcceptsThenSilent()
    req = MmsRequest("+18004567891", (Recipient("+15550003333"),), "hi", (), "t")
    await send_mms(req, SendDeps(acs, store, store, WINDOW, intents=store), T0)
    assert store.records["m-1"].status is Status.ACCEPTED and len(store.intents) == 1
    await reconcile_sends(
        ReconcileDeps(store, acs, store, store), T0 + WINDOW, MINUTE
    )  # ACS silent for the whole window
    assert await store.tag_counts("t") == {"Accepted": 1}


async def test_the_reconciler_never_takes_up_a_send_that_may_still_be_running() -> None:
    """The send holds its intent until its deadline (docs/api.md, "Sending": 70 s with the defaults); the
    reconciler, taking intents a minute old, leaves it alone until then."""
    settings = Settings.from_environment(
        app_environment("UseDevelopmentStorage=true") | {"TRACKING_STORAGE_TIMEOUT_SECONDS": "10"}
    )
    deadline = dt.timedelta(seconds=settings.send_deadline_seconds)
    store = RecordsDown()
    calls: list[Mapping[str, Any]] = []

    class Accepts:
        async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            calls.append(payload)
            return {
                "value": [
                    {"to": r["to"], "messageId": "m-1", "httpStatusCode": 202, "successful": True}
                    for r in payload["recipients"]
                ]
            }

    req = MmsRequest("+18004567891", (Recipient("+15550003333"),), "hi", (), "t")
    await send_mms(req, SendDeps(Accepts(), store, store, WINDOW, intents=store, claim=deadline), T0)
    store.fail = False
    early = await reconcile_sends(
        ReconcileDeps(store, Accepts(), store, store), T0 + deadline - dt.timedelta(seconds=1), MINUTE
    )
    assert (early.pending, len(calls)) == (1, 1)
    later = await reconcile_sends(
        ReconcileDeps(store, Accepts(), store, store), T0 + deadline + dt.timedelta(seconds=1), MINUTE
    )
    assert (later.recorded, len(calls)) == (1, 2)


async def test_two_reconciler_runs_never_take_the_same_intent() -> None:
    store = RecordsDown()
    calls: list[Mapping[str, Any]] = []

    class Slow:
        async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            calls.append(payload)
            await asyncio.sleep(0)  # let the other run look at the intent meanwhile
            return {
                "value": [
                    {"to": r["to"], "messageId": "m-1", "httpStatusCode": 202, "successful": True}
                    for r in payload["recipients"]
                ]
            }

    req = MmsRequest("+18004567891", (Recipient("+15550003333"),), "hi", (), "t")
    await send_mms(req, SendDeps(Slow(), store, store, WINDOW, intents=store), T0)
    store.fail = False
    runs = await asyncio.gather(
        *(reconcile_sends(ReconcileDeps(store, Slow(), store, store), T0 + 2 * MINUTE, MINUTE) for _ in range(2))
    )
    assert sorted((r.recorded, r.pending) for r in runs) == [(0, 1), (1, 0)]
    assert len(calls) == 2  # the send and one repeat


async def test_a_client_id_held_by_a_send_in_flight_is_refused_for_a_different_request() -> None:
    """The contract: a client id that already stands for a different request is a 409 and
    nothing is sent. While the first request's outcome is unknown (its intent pending), the id
    is claimed for it in the results log, so the second request is refused before ACS."""
    store = InMemoryStore()
    calls: list[Mapping[str, Any]] = []

    class LostAnswerThenAccepts:
        async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            calls.append(payload)
            if len(calls) == 1:
                raise AcsTimeout("lost", maybe_sent=True)
            return {
                "value": [
                    {"to": r["to"], "messageId": "m-2", "httpStatusCode": 202, "successful": True}
                    for r in payload["recipients"]
                ]
            }

    client_id, first_sent = str(uuid.uuid4()), "Sun, 29 Nov 2026 09:00:00 GMT"
    first = MmsRequest("+18004567891", (Recipient("+15550003333", client_id, first_sent),), "first", (), "t")
    second = MmsRequest("+18004567891", (Recipient("+15550009999", client_id, first_sent),), "other", (), "t")
    acs = LostAnswerThenAccepts()
    with pytest.raises(AcsTimeout):
        await send_mms(first, SendDeps(acs, store, store, WINDOW, intents=store), T0)
    assert len(store.intents) == 1
    with pytest.raises(RepeatabilityConflict):
        await send_mms(second, SendDeps(acs, store, store, WINDOW, intents=store), T0)
    assert len(calls) == 1


async def test_a_client_that_retries_a_send_answered_5xx_with_the_pairs_it_was_given_gets_one_message() -> None:
    """A request whose ACS call never got through (the connection dropped after the request was
    written: ``maybe_sent``) is answered 504 with each recipient's pair; the client repeats it
    with those pairs, and the reconciler repeats the first call: ACS sends the message once."""
    store = InMemoryStore()
    answered: dict[str, dict[str, Any]] = {}
    calls = 0

    class DropsTheFirstCall:
        async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise AcsTimeout("ACS did not answer in time.", maybe_sent=True)  # never reached ACS
            value = []
            for r in payload["recipients"]:
                pair = (r["repeatabilityRequestId"], r["repeatabilityFirstSent"])
                answered.setdefault(
                    str(pair),
                    {"to": r["to"], "messageId": f"m-{len(answered)}", "httpStatusCode": 202, "successful": True},
                )
                value.append(answered[str(pair)])
            return {"value": value}

    acs = DropsTheFirstCall()
    req = MmsRequest("+18004567891", (Recipient("+15550003333"),), "hi", (), "t")
    with pytest.raises(AcsTimeout) as caught:
        await send_mms(req, SendDeps(acs, store, store, WINDOW, intents=store), T0)
    [pair] = caught.value.pairs
    assert pair["to"] == "+15550003333" and pair["repeatabilityRequestId"] and pair["repeatabilityFirstSent"]
    retry = MmsRequest(
        "+18004567891",
        (Recipient(pair["to"], pair["repeatabilityRequestId"], pair["repeatabilityFirstSent"]),),
        "hi",
        (),
        "t",
    )
    await send_mms(retry, SendDeps(acs, store, store, WINDOW, intents=store), T0 + dt.timedelta(seconds=5))
    await reconcile_sends(ReconcileDeps(store, acs, store, store), T0 + 2 * MINUTE, MINUTE)
    assert len(answered) == 1, f"ACS sent {len(answered)} messages for one intended message"
    assert [r.status for r in store.records.values()] == [Status.ACCEPTED]
