"""Campaigns: chunking, the deterministic repeatability pairs, and the worker against hand-written fakes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import pytest

from mms_tracker.domain.timestamps import parse_rfc1123
from mms_tracker.service import campaigns
from mms_tracker.service.campaigns import (
    CampaignRequest,
    Chunk,
    ChunkContext,
    campaign_id_for,
    cancel_campaign,
    chunks,
    create_campaign,
    repeatability_first_sent,
    repeatability_request_id,
    send_chunk,
)
from mms_tracker.service.ports import AcsRequestRejected, AcsThrottled, AcsUnavailable
from tests.campaign_fakes import Attachments, Campaigns, LocalThrottle, Queue, RepeatableAcs
from tests.fakes import InMemoryStore

T0 = dt.datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=dt.UTC)
SENDER = "+18004567891"
ATTACHMENT = {"contentType": "image/png", "contentInBase64": "iVBORw0KGgo="}


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+1833555{i:04d}" for i in range(start, start + n)]


def request(recipients: list[str], tag: str | None = "spring") -> CampaignRequest:
    return CampaignRequest(SENDER, tuple(recipients), "Hello", (ATTACHMENT,), tag)


class World:
    """The fakes a campaign runs against."""

    def __init__(self) -> None:
        self.campaigns = Campaigns()
        self.queue = Queue()
        self.attachments = Attachments()
        self.acs = RepeatableAcs()
        self.tracking = InMemoryStore()
        self.slept: list[float] = []
        self.clock = 0.0

    def context(self, per_second: float = 1000.0) -> ChunkContext:
        return ChunkContext(
            acs=self.acs,
            tracking=self.tracking,
            results=self.tracking,
            campaigns=self.campaigns,
            queue=self.queue,
            attachments=self.attachments,
            throttle=LocalThrottle(per_second),
            expiry_window=dt.timedelta(hours=72),
        )

    async def create(self, recipients: list[str], campaign_id: str = "c1") -> dict[str, Any]:
        return await create_campaign(request(recipients), campaign_id, self.campaigns, self.queue, self.attachments, T0)

    def chunk(self, n: int) -> Chunk:
        return Chunk.from_message(self.queue.messages[n][0])

    async def run(self, n: int, dequeue_count: int = 1) -> campaigns.ChunkOutcome:
        return await send_chunk(self.chunk(n), dequeue_count, self.context(), lambda: T0 + dt.timedelta(minutes=1))


# --- chunking and ids ----------------------------------------------------------------------------------


def test_recipients_are_chunked_by_100_in_order() -> None:
    recipients = numbers(250)
    found = chunks("c1", recipients)
    assert [c.index for c in found] == [0, 1, 2]
    assert [len(c.recipients) for c in found] == [100, 100, 50]
    assert [t for c in found for t in c.recipients] == recipients


def test_a_chunk_survives_its_queue_message() -> None:
    chunk = chunks("c1", numbers(3))[0]
    assert Chunk.from_message(chunk.to_message()) == chunk


def test_an_overlong_number_is_cut_but_stays_invalid() -> None:
    [chunk] = chunks("c1", ["+1" + "9" * 500])
    assert len(chunk.recipients[0]) == campaigns.MAX_STORED_TO_CHARS


def test_repeatability_ids_are_the_same_on_every_attempt_and_distinct_per_recipient() -> None:
    ids = {repeatability_request_id("c1", chunk, i) for chunk in range(3) for i in range(100)}
    assert len(ids) == 300
    assert repeatability_request_id("c1", 2, 7) == repeatability_request_id("c1", 2, 7)
    assert repeatability_request_id("c1", 0, 0) != repeatability_request_id("c2", 0, 0)
    assert all(uuid.UUID(i).version == 5 for i in ids)


def test_first_sent_is_the_campaign_creation_time_in_rfc_1123() -> None:
    first_sent = repeatability_first_sent(T0)
    assert first_sent == "Sun, 29 Nov 2026 12:00:00 GMT"
    assert parse_rfc1123(first_sent) == T0.replace(microsecond=0)


def test_an_idempotency_key_always_names_the_same_campaign() -> None:
    assert campaign_id_for("order-1") == campaign_id_for("order-1")
    assert campaign_id_for("order-1") != campaign_id_for("order-2")
    assert campaign_id_for(None) != campaign_id_for(None)


def test_an_idempotency_key_of_bytes_that_are_not_utf8_names_one_campaign_of_its_own() -> None:
    key = b"\xff\xfe".decode("utf-8", "surrogateescape")  # how a Python server hands such a header on
    assert (
        campaign_id_for(key) == campaign_id_for(key) != campaign_id_for(b"\xfe\xff".decode("utf-8", "surrogateescape"))
    )
    assert campaign_id_for(key) != campaign_id_for("fffe") and uuid.UUID(campaign_id_for(key))
    assert campaign_id_for("order-1") == str(uuid.uuid5(campaigns._ID_NAMESPACE, "idempotency:order-1"))  # unchanged


# --- create and cancel ---------------------------------------------------------------------------------


async def test_create_stores_attachments_once_and_enqueues_one_message_per_chunk() -> None:
    world = World()
    campaign = await world.create(numbers(250))
    assert (campaign["status"], campaign["total"], campaign["chunks"]) == ("Queued", 250, 3)
    assert world.attachments.puts == 1
    assert [world.chunk(i).index for i in range(3)] == [0, 1, 2]
    assert all(len(message) < 64 * 1024 for message, _ in world.queue.messages)  # a queue message's limit


async def test_creating_again_with_the_same_id_returns_the_first_job_and_enqueues_nothing() -> None:
    world = World()
    first = await world.create(numbers(150))
    again = await world.create(numbers(150))
    assert again["campaignId"] == first["campaignId"] and again["total"] == 150
    assert len(world.queue.messages) == 2 and world.attachments.puts == 1


async def test_an_idempotency_key_reused_for_a_different_request_is_refused_and_creates_nothing() -> None:
    world = World()
    await world.create(numbers(150))
    with pytest.raises(campaigns.IdempotencyConflict):
        await world.create(numbers(7))
    with pytest.raises(campaigns.IdempotencyConflict):  # the same numbers, another message
        await create_campaign(
            CampaignRequest(SENDER, tuple(numbers(150)), "Other", (ATTACHMENT,), "spring"),
            "c1",
            world.campaigns,
            world.queue,
            world.attachments,
            T0,
        )
    assert len(world.queue.messages) == 2 and world.attachments.puts == 1
    assert world.campaigns.get("c1")["total"] == 150


class RacedCampaigns(Campaigns):
    """A store where another request created the campaign between this one's read and its create."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    async def get_campaign(self, campaign_id: str) -> tuple[dict[str, Any], str]:
        if not self.raced:
            self.raced = True
            raise campaigns.CampaignNotFound(campaign_id)
        return await super().get_campaign(campaign_id)


@pytest.mark.parametrize("same_body", [True, False])
async def test_a_create_that_loses_the_race_for_its_id_keeps_the_first_attachments_and_index_row(
    same_body: bool,
) -> None:
    world = World()
    world.campaigns = RacedCampaigns()
    world.campaigns.raced = True
    await world.create(numbers(1))  # the winner, a millisecond earlier
    world.campaigns.raced = False
    other = {"contentType": "image/gif", "contentInBase64": "R0lGODlh"}
    body = request(numbers(1)) if same_body else CampaignRequest(SENDER, tuple(numbers(1)), "Hello", (other,), "spring")
    later = T0 + dt.timedelta(milliseconds=1)
    if same_body:
        campaign = await create_campaign(body, "c1", world.campaigns, world.queue, world.attachments, later)
        assert campaign["createdAt"] == T0
    else:
        with pytest.raises(campaigns.IdempotencyConflict):
            await create_campaign(body, "c1", world.campaigns, world.queue, world.attachments, later)
    assert world.attachments.stored["c1"] == [ATTACHMENT]
    assert list(world.campaigns.index.values()) == ["c1"]  # listed once, under the stored creation time


# Azurite's queue refuses a message whose text (the base64 the trigger reads) passes 65,536 UTF-8
# bytes: MESSAGETEXT_LENGTH_MAX in Azurite's src/queue/utils/constants.ts (node_modules/azurite).
QUEUE_MESSAGE_BYTES = 65_536


@pytest.mark.parametrize("character", ["\U0001f600", "\x01", '"', "\u4e2d"])
def test_the_largest_chunk_fits_one_queue_message(character: str) -> None:
    [chunk] = chunks(str(uuid.uuid4()), [character * 1000] * 100)
    message = chunk.to_message()
    assert len(base64.b64encode(message.encode())) <= QUEUE_MESSAGE_BYTES
    assert Chunk.from_message(message) == chunk


async def test_a_chunk_settled_from_the_poison_queue_after_its_worker_died_is_counted_once() -> None:
    """The worker died on the chunk's fifth delivery after ACS sent it, before counting: the host
    moved the message to the poison queue, whose trigger settles it as a last delivery."""
    world = World()
    await world.create(numbers(100))
    world.campaigns.replace_failures = 1  # sent and recorded; counting fails as the worker dies
    with pytest.raises(Exception, match="down"):
        await world.run(0, dequeue_count=4)
    outcome = await world.run(0, dequeue_count=campaigns.MAX_DEQUEUE_COUNT)  # settle_campaign_chunk
    assert outcome.result == "sent"
    assert world.campaigns.get("c1")["accepted"] == 100 and world.campaigns.get("c1")["failedToSend"] == 0
    assert world.campaigns.get("c1")["status"] == "Completed"
    assert max(world.acs.sent.values()) == 1
    assert (await world.run(0, dequeue_count=campaigns.MAX_DEQUEUE_COUNT)).result == "skipped"


async def test_a_create_that_failed_before_enqueueing_enqueues_when_repeated() -> None:
    world = World()
    world.queue.failures = 1
    with pytest.raises(Exception, match="queue down"):
        await world.create(numbers(150))
    assert world.campaigns.get("c1")["enqueued"] is False
    campaign = await world.create(numbers(150))
    assert campaign["enqueued"] is True and len(world.queue.messages) == 2


async def test_a_cancelled_campaign_sends_no_further_chunk() -> None:
    world = World()
    await world.create(numbers(200))
    await world.run(0)
    cancelled = await cancel_campaign(world.campaigns, "c1", T0)
    assert cancelled["status"] == "Cancelled"
    await world.run(1)
    assert sum(world.acs.sent.values()) == 100
    assert world.campaigns.get("c1")["status"] == "Cancelled"
    assert world.campaigns.get("c1")["completedAt"] is not None


async def test_cancelling_a_finished_campaign_leaves_it_as_it_finished() -> None:
    world = World()
    await world.create(numbers(10))
    await world.run(0)
    assert (await cancel_campaign(world.campaigns, "c1", T0))["status"] == "Completed"


# --- the worker ----------------------------------------------------------------------------------------


async def test_each_chunk_is_sent_with_its_derived_pairs_and_counted() -> None:
    world = World()
    await world.create(numbers(150))
    assert (await world.run(0)).result == "sent"
    payload = world.acs.calls[0]
    assert payload["attachments"] == [ATTACHMENT] and payload["sendOptions"]["tag"] == "spring"
    assert [r["repeatabilityRequestId"] for r in payload["recipients"]] == [
        repeatability_request_id("c1", 0, i) for i in range(100)
    ]
    assert {r["repeatabilityFirstSent"] for r in payload["recipients"]} == {"Sun, 29 Nov 2026 12:00:00 GMT"}
    assert world.campaigns.get("c1")["status"] == "Sending"
    await world.run(1)
    campaign = world.campaigns.get("c1")
    assert (campaign["sent"], campaign["accepted"], campaign["rejected"], campaign["status"]) == (
        150,
        150,
        0,
        "Completed",
    )
    assert campaign["completedAt"] == T0 + dt.timedelta(minutes=1)


async def test_invalid_numbers_are_counted_rejected_and_never_sent() -> None:
    world = World()
    await world.create(["+18335550001", "not-a-number", "+1"])
    await world.run(0)
    assert [r["to"] for r in world.acs.calls[0]["recipients"]] == ["+18335550001"]
    campaign = world.campaigns.get("c1")
    assert (campaign["accepted"], campaign["rejected"]) == (1, 2)
    rejected = [r for r in world.tracking.records.values() if r.status.value == "Rejected"]
    assert len(rejected) == 2 and {r.tag for r in rejected} == {"spring"}


async def test_a_redelivered_chunk_that_was_counted_is_skipped_without_calling_acs() -> None:
    world = World()
    await world.create(numbers(100))
    await world.run(0)
    assert (await world.run(0, dequeue_count=2)).result == "skipped"
    assert len(world.acs.calls) == 1
    assert world.campaigns.get("c1")["sent"] == 100


async def test_a_chunk_whose_count_was_lost_is_answered_from_stored_results_not_sent_again() -> None:
    world = World()
    await world.create(numbers(100))
    world.campaigns.replace_failures = 1  # sent and recorded, then the counter write fails: redelivered
    with pytest.raises(Exception, match="down"):
        await world.run(0)
    await world.run(0, dequeue_count=2)
    assert max(world.acs.sent.values()) == 1 and len(world.acs.calls) == 1
    assert world.campaigns.get("c1")["accepted"] == 100


async def test_a_response_lost_after_acs_sent_is_deduplicated_by_acs_on_redelivery() -> None:
    world = World()
    await world.create(numbers(100))
    world.acs.lose_response = AcsUnavailable("connection reset", upstream_status=None)
    with pytest.raises(AcsUnavailable):
        await world.run(0)
    await world.run(0, dequeue_count=2)
    assert len(world.acs.calls) == 2
    assert sum(world.acs.sent.values()) == 100 and max(world.acs.sent.values()) == 1
    assert world.campaigns.get("c1")["status"] == "Completed"


async def test_acs_throttling_delays_the_chunk_by_retry_after_and_never_fails_it() -> None:
    world = World()
    await world.create(numbers(100))
    world.acs.faults = [AcsThrottled("slow down", upstream_status=429, retry_after=7.2)]
    outcome = await world.run(0, dequeue_count=campaigns.MAX_DEQUEUE_COUNT)
    assert (outcome.result, outcome.delay_seconds) == ("delayed", 8)
    message, visibility = world.queue.messages[-1]
    assert visibility == 8 and Chunk.from_message(message).index == 0
    campaign = world.campaigns.get("c1")
    assert (campaign["sent"], campaign["failedToSend"], campaign["status"]) == (0, 0, "Queued")


@pytest.mark.parametrize("retry_after", [604_800.0, 1e9])
async def test_a_retry_after_longer_than_an_hour_delays_the_chunk_an_hour(retry_after: float) -> None:
    """A queue message is invisible for at most 7 days and lives 7 days by default (Azurite's
    ENQUEUE_VISIBILITYTIMEOUT_MAX and DEFAULT_MESSAGETTL, src/queue/utils/constants.ts): a longer
    Retry-After was refused by the queue, and 7 days exactly would hide the chunk until it expired."""
    world = World()
    await world.create(numbers(100))
    world.acs.faults = [AcsThrottled("slow down", upstream_status=429, retry_after=retry_after)]
    outcome = await world.run(0)
    assert (outcome.result, outcome.delay_seconds) == ("delayed", 3600)
    assert world.queue.messages[-1][1] == 3600


async def test_a_transient_failure_raises_so_the_queue_retries_and_counts_nothing() -> None:
    world = World()
    await world.create(numbers(100))
    world.acs.faults = [AcsUnavailable("503", upstream_status=503)]
    with pytest.raises(AcsUnavailable):
        await world.run(0, dequeue_count=1)
    assert world.campaigns.get("c1")["failedToSend"] == 0
    await world.run(0, dequeue_count=2)
    assert world.campaigns.get("c1")["status"] == "Completed"


async def test_the_last_failed_delivery_counts_the_chunk_failed_with_the_reason() -> None:
    world = World()
    await world.create(numbers(150))
    await world.run(1)
    world.acs.faults = [AcsUnavailable("503", upstream_status=503)]
    with pytest.raises(AcsUnavailable):
        await world.run(0, dequeue_count=campaigns.MAX_DEQUEUE_COUNT)
    campaign = world.campaigns.get("c1")
    assert (campaign["failedToSend"], campaign["status"]) == (100, "CompletedWithErrors")
    assert "chunk 0" in campaign["reason"]


async def test_a_request_acs_refuses_is_poisoned_at_once_and_never_retried() -> None:
    world = World()
    await world.create(numbers(100))
    world.acs.faults = [AcsRequestRejected("ACS answered 400", upstream_status=400)]
    assert (await world.run(0)).result == "failed"
    assert [Chunk.from_message(m).index for m in world.queue.poisoned] == [0]
    campaign = world.campaigns.get("c1")
    assert (campaign["failedToSend"], campaign["status"]) == (100, "CompletedWithErrors")


async def test_counters_survive_an_etag_conflict() -> None:
    world = World()
    await world.create(numbers(200))
    world.campaigns.conflicts = 2
    await world.run(0)
    await world.run(1)
    assert world.campaigns.get("c1")["sent"] == 200


async def test_a_chunk_of_an_unknown_campaign_is_dropped() -> None:
    world = World()
    chunk = Chunk("gone", 0, tuple(numbers(2)))
    outcome = await send_chunk(chunk, 1, world.context(), lambda: T0)
    assert outcome.result == "skipped" and not world.acs.calls


async def test_the_throttle_spaces_requests_per_sender() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))

    throttle = LocalThrottle(4, clock=lambda: now[0])
    for _ in range(3):
        await throttle.acquire(SENDER, sleep)
    await throttle.acquire("+18005550100", sleep)  # another sender has its own budget
    assert slept == [0.25, 0.5]


def test_the_chunk_message_is_json_naming_campaign_and_chunk() -> None:
    message = json.loads(chunks("c1", numbers(1))[0].to_message())
    assert message == {"campaignId": "c1", "chunk": 0, "recipients": ["+18335550000"]}


async def test_campaigns_are_listed_newest_first_and_a_listed_one_never_stored_is_left_out() -> None:
    world = World()
    for n in range(3):
        await create_campaign(
            request(numbers(1)), f"c{n}", world.campaigns, world.queue, world.attachments, T0 + dt.timedelta(minutes=n)
        )
    await world.campaigns.index_campaign("ghost", T0 + dt.timedelta(hours=1))  # indexed, then the create failed
    page, cursor = await campaigns.list_campaigns(world.campaigns, 2, None)
    assert [c["campaignId"] for c in page] == ["c2"] and cursor is not None
    rest, end = await campaigns.list_campaigns(world.campaigns, 2, cursor)
    assert [c["campaignId"] for c in rest] == ["c1", "c0"] and end is None
