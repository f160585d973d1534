"""No accepted send without a record (issue 19), against a real Azurite: the intents table, and a
storage process paused between ACS's answer and the records (SIGSTOP/SIGCONT)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from mms_tracker.adapters.tables.intents import CHUNK_BYTES, CHUNKS_PER_ROW, MAX_PAYLOAD_BYTES, intent_rows
from mms_tracker.api.blueprints.delivery_reports import reconcile_sends
from mms_tracker.api.blueprints.messages import send_message
from mms_tracker.domain import Status
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.ports import IntentTooLarge, SendIntent
from mms_tracker.settings import Settings
from tests.support import Azurite, app_environment, content_type, fixture, http_request, nonzero, poll_async

T0 = dt.datetime(2026, 11, 29, 9, 0, 30, tzinfo=dt.UTC)


def intent(payload: dict[str, Any], created_at: dt.datetime = T0) -> SendIntent:
    return SendIntent(
        uuid.uuid4().hex,
        created_at,
        created_at + dt.timedelta(hours=72),
        payload,
        ((0, str(uuid.uuid4()), "f" * 64),),
    )


def payload(attachment_bytes: int = 10) -> dict[str, Any]:
    content = base64.b64encode(random.randbytes(attachment_bytes)).decode()
    return {
        "from": "+18004567891",
        "recipients": [
            {"to": "+15550003333", "repeatabilityRequestId": str(uuid.uuid4()), "repeatabilityFirstSent": "x"}
        ],
        "message": "héllo \U0001f600",
        "attachments": [{"contentType": "image/png", "contentInBase64": content}],
        "sendOptions": {"enableDeliveryReport": True, "tag": "t/\\#?'"},
    }


async def test_an_intent_reads_back_whole_small_or_spread_over_rows(store: Any) -> None:
    # The send's W3C traceparent rides on the intent's head (the reconciler stamps the records with it).
    small = replace(intent(payload()), traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    large = intent(payload(1_800_000))  # random bytes: incompressible
    assert len(intent_rows(small)) == 1
    assert len(intent_rows(large)) == 2  # more than 15 chunks of 64,000 bytes
    for made in (small, large):
        await store.put_intent(made)
        await store.put_intent(made)  # a retried write of the same intent changes nothing
    found = {i.intent_id: i for i in await store.intents_before(T0 + dt.timedelta(seconds=1), 10)}
    assert found == {small.intent_id: small, large.intent_id: large}
    await store.note_intent_attempt(large, "ACS did not answer in time.")
    [noted] = [
        i for i in await store.intents_before(T0 + dt.timedelta(seconds=1), 10) if i.intent_id == large.intent_id
    ]
    assert (noted.attempts, noted.last_error, noted.payload) == (1, "ACS did not answer in time.", large.payload)
    for made in (small, large):
        await store.remove_intent(made)
    assert await store.intents_before(T0 + dt.timedelta(seconds=1), 10) == []


async def test_only_intents_older_than_the_cutoff_are_found_oldest_first_and_bounded(store: Any) -> None:
    made = [intent(payload(), T0 + dt.timedelta(seconds=20 * n)) for n in range(5)]
    for i in reversed(made):
        await store.put_intent(i)
    before = await store.intents_before(T0 + dt.timedelta(seconds=50), 10)
    assert [i.intent_id for i in before] == [i.intent_id for i in made[:3]]
    assert len(await store.intents_before(T0 + dt.timedelta(hours=1), 2)) == 2
    for i in made:
        await store.remove_intent(i)


def test_an_intent_too_large_for_one_transaction_is_refused_before_anything_is_written() -> None:
    assert CHUNK_BYTES * CHUNKS_PER_ROW < 1024 * 1024  # an entity holds at most 1 MiB
    with pytest.raises(IntentTooLarge):
        intent_rows(intent(payload(MAX_PAYLOAD_BYTES + 1)))


# --- storage paused after ACS accepted ------------------------------------------------------------


@pytest.fixture
def paused_azurite() -> Iterator[Azurite]:
    """An Azurite of this test's own, so pausing it stalls nothing else."""
    server = Azurite().start()
    yield server
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGCONT)
    server.stop()


class Timer:
    past_due = False


async def test_records_follow_within_one_reconciler_run_when_storage_stalls_after_acs_accepted(
    paused_azurite: Azurite,
) -> None:
    """Issue 19's repro: Azurite is paused (SIGSTOP) the moment ACS accepts, so no record can be
    written; the client still gets ACS's 202 by the deadline, and once storage is back one
    reconciler run writes every record, its expiry entry and its count, exactly once."""
    assert paused_azurite.process is not None
    group = paused_azurite.process.pid
    sent: list[dict[str, Any]] = []

    def acs(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not sent:
            os.killpg(group, signal.SIGSTOP)  # storage stalls between ACS's answer and the records
        sent.append(body)
        first = sent[0]["recipients"]
        value = [
            {"to": r["to"], "messageId": f"id-{r['repeatabilityRequestId']}", "httpStatusCode": 202, "successful": True}
            for r in body["recipients"]
        ]
        assert [r["repeatabilityRequestId"] for r in body["recipients"]] == [r["repeatabilityRequestId"] for r in first]
        return httpx.Response(202, json={"value": value})

    env = app_environment(  # a send's deadline (and its hold on its intent): 2 x 1 + 0 + 1 = 3 s
        paused_azurite.connection_string,
        TRACKING_STORAGE_TIMEOUT_SECONDS="1",
        ACS_RETRY_MAX_SECONDS="0",
        ACS_TIMEOUT_SECONDS="1",
        SEND_RECONCILE_AFTER_SECONDS="0",
    )
    RUNTIME.configure(Settings.from_environment(env), acs_transport=httpx.MockTransport(acs))
    try:
        body = fixture("seed_send_request.json") | {
            "recipients": [{"to": "+15550003333"}, {"to": "+15550004044"}],
            "sendOptions": {"tag": "paused"},
        }
        started = time.monotonic()
        response = await send_message(
            http_request("POST", "http://localhost/api/messages", body=json.dumps(body).encode())
        )
        assert time.monotonic() - started <= RUNTIME.settings.send_deadline_seconds  # the documented deadline
        assert response.status_code == 202
        items = json.loads(response.body)["value"]
        assert [i["successful"] for i in items] == [True, True]
        os.killpg(group, signal.SIGCONT)

        store = RUNTIME.store()
        assert await store.get(items[1]["messageId"]) is None  # nothing was written while paused...

        async def reconciled() -> bool:  # ...the first reconciler run after the send's deadline writes it all
            await reconcile_sends(Timer())
            return await store.get(items[1]["messageId"]) is not None

        assert await poll_async(reconciled, 30, interval=0.5)
        for item in items:
            record = await store.get(item["messageId"])
            assert record is not None and record.status is Status.ACCEPTED and record.tag == "paused"
            assert record.to == item["to"] and record.created_at is not None
        assert nonzero(await store.tag_counts("paused")) == {"Accepted": 2}
        due_hour = (record.created_at + dt.timedelta(hours=72)).replace(minute=0, second=0, microsecond=0)
        assert {m for m, _ in await store.due(due_hour)} == {i["messageId"] for i in items}
        assert await store.intents_before(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1), 10) == []
        assert len(sent) == 2  # the send, and the reconciler's repeat under the same pairs

        await reconcile_sends(Timer())  # a second run finds nothing and counts nothing twice
        assert nonzero(await store.tag_counts("paused")) == {"Accepted": 2}
        assert len(sent) == 2
    finally:
        os.killpg(group, signal.SIGCONT)
        await RUNTIME.aclose()


async def test_a_paused_storage_before_the_call_is_a_503_and_nothing_is_sent(paused_azurite: Azurite) -> None:
    assert paused_azurite.process is not None
    calls: list[httpx.Request] = []
    env = app_environment(paused_azurite.connection_string, TRACKING_STORAGE_TIMEOUT_SECONDS="0.5")
    RUNTIME.configure(Settings.from_environment(env), acs_transport=httpx.MockTransport(calls.append))  # type: ignore[arg-type]
    try:
        await RUNTIME.store().ensure_tables()  # type: ignore[attr-defined]
        os.killpg(paused_azurite.process.pid, signal.SIGSTOP)
        body = fixture("seed_send_request.json") | {"recipients": [{"to": "+15550003333"}]}
        response = await send_message(
            http_request("POST", "http://localhost/api/messages", body=json.dumps(body).encode())
        )
        assert response.status_code == 503
        assert content_type(response) == "application/problem+json"
        assert calls == []
    finally:
        os.killpg(paused_azurite.process.pid, signal.SIGCONT)
        await RUNTIME.aclose()


async def test_a_send_answers_by_its_deadline_when_acs_never_answers_and_keeps_its_intent(azurite: Azurite) -> None:
    """The deadline is the settings' sum (docs/api.md, "Sending"): here 2 x 1 s of storage + 0 s of retries + 0.5 s
    for the one attempt. ACS may have taken the request, so the intent stays for the reconciler."""

    async def stalled(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    env = app_environment(
        azurite.connection_string,
        TRACKING_STORAGE_TIMEOUT_SECONDS="1",
        ACS_TIMEOUT_SECONDS="0.5",
        ACS_RETRY_MAX_SECONDS="0",
        ACS_MAX_ATTEMPTS="1",
    )
    settings = Settings.from_environment(env)
    assert settings.send_deadline_seconds == 2.5
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(stalled))
    try:
        body = fixture("seed_send_request.json") | {"recipients": [{"to": "+15550003333"}]}
        started = time.monotonic()
        response = await send_message(
            http_request("POST", "http://localhost/api/messages", body=json.dumps(body).encode())
        )
        assert time.monotonic() - started <= settings.send_deadline_seconds
        assert response.status_code == 504
        problem = json.loads(response.body)
        assert "repeats the same call" in problem["detail"]
        [pair] = problem["recipients"]  # repeat the request with exactly these, and ACS recognises it
        [kept] = await RUNTIME.store().intents_before(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1), 10)
        assert kept.payload["recipients"] == [pair]
    finally:
        await RUNTIME.aclose()
