"""Issue 25: a chunk the queue gave up on while ACS had accepted it (its answer lost on every
delivery) is counted ``failedToSend`` only until the reconciler records ACS's answer; then the
campaign's counters move to ``accepted``/``rejected`` once, against hand-written fakes."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from mms_tracker.domain import DeliveryReport
from mms_tracker.service import campaigns
from mms_tracker.service.campaigns import ChunkContext, cancel_campaign, count_recorded_chunk
from mms_tracker.service.ports import AcsUnavailable, SendIntent
from mms_tracker.service.reconciler import ReconcileDeps, reconcile_sends
from mms_tracker.service.tracking import record_report
from tests.campaign_fakes import LocalThrottle
from tests.unit.test_campaigns import T0, World, numbers

LATER = T0 + dt.timedelta(minutes=10)
LAST = campaigns.MAX_DEQUEUE_COUNT
MINUTE = dt.timedelta(minutes=1)


def lost() -> AcsUnavailable:
    # What the ACS client raises for a dropped connection after the request was written (adapters/acs.py).
    return AcsUnavailable("connection reset after the request was sent", maybe_sent=True)


class IntentWorld(World):
    """The campaign fakes with the send path's intents (the reconciler's input), as deployed."""

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
            intents=self.tracking,
        )

    async def deliver_losing_every_answer(self, n: int, deliveries: int = LAST) -> None:
        """Deliver chunk ``n`` ``deliveries`` times; ACS sends (once) and every answer is lost."""
        for count in range(1, deliveries + 1):
            self.acs.lose_response = lost()
            with pytest.raises(AcsUnavailable):
                await self.run(n, dequeue_count=count)

    async def count(self, intent: SendIntent) -> None:
        if intent.campaign_chunk is not None:
            await count_recorded_chunk(self.campaigns, self.tracking, intent.campaign_chunk, LATER)

    async def reconcile(self) -> Any:
        return await reconcile_sends(
            ReconcileDeps(self.tracking, self.acs, self.tracking, self.tracking, on_recorded=self.count), LATER, MINUTE
        )


def counters(campaign: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("status", "sent", "accepted", "rejected", "failedToSend")
    return tuple(campaign[k] for k in keys)


async def test_a_chunk_acs_accepted_whose_answer_was_lost_on_every_delivery_moves_to_accepted_once() -> None:
    world = IntentWorld()
    await world.create(numbers(100))
    await world.deliver_losing_every_answer(0)
    assert counters(world.campaigns.get("c1")) == ("CompletedWithErrors", 0, 0, 0, 100)
    assert len(world.tracking.intents) == LAST  # one intent per delivery, all of the same pairs
    done = await world.reconcile()
    assert done.recorded == LAST
    campaign = world.campaigns.get("c1")
    assert counters(campaign) == ("Completed", 100, 100, 0, 0)
    assert "100 recipients first counted failedToSend were found sent by ACS" in campaign["reason"]
    assert campaign["completedAt"] == T0 + dt.timedelta(minutes=1)  # when it finished, not when it was corrected
    assert max(world.acs.sent.values()) == 1 and sum(world.acs.sent.values()) == 100
    assert (await world.reconcile()).recorded == 0
    assert counters(world.campaigns.get("c1")) == ("Completed", 100, 100, 0, 0)
    # settle_campaign_chunk, then a redelivery of the poisoned message: the chunk stays counted once.
    assert (await world.run(0, dequeue_count=LAST)).result == "skipped"
    assert counters(world.campaigns.get("c1")) == ("Completed", 100, 100, 0, 0)


async def test_a_move_splits_accepted_and_rejected_per_recipient_and_leaves_a_chunk_never_sent_failed() -> None:
    """Chunk 0 (with two numbers that are not E.164) was sent, its answers lost; chunk 1 never
    reached ACS (a 503 every time, nothing sent): it stays failedToSend and the job says both."""
    world = IntentWorld()
    await world.create([*numbers(98), "not-a-number", "+1", *numbers(50, start=500)])
    await world.deliver_losing_every_answer(0)
    for count in range(1, LAST + 1):
        world.acs.faults = [AcsUnavailable("503", upstream_status=503)]
        with pytest.raises(AcsUnavailable):
            await world.run(1, dequeue_count=count)
    assert counters(world.campaigns.get("c1")) == ("CompletedWithErrors", 0, 0, 0, 150)
    await world.reconcile()
    campaign = world.campaigns.get("c1")
    assert counters(campaign) == ("CompletedWithErrors", 100, 98, 2, 50)
    assert "100 recipients first counted failedToSend were found sent" in campaign["reason"]
    assert "50 still failed to send (first failure: chunk 0 failed 5 times: AcsUnavailable)" in campaign["reason"]
    assert sum(world.acs.sent.values()) == 98


async def test_a_chunk_recorded_before_its_last_delivery_is_counted_sent_and_the_last_delivery_skips_it() -> None:
    world = IntentWorld()
    await world.create(numbers(100))
    await world.deliver_losing_every_answer(0, deliveries=LAST - 1)
    await world.reconcile()
    assert counters(world.campaigns.get("c1")) == ("Completed", 100, 100, 0, 0)
    assert world.campaigns.get("c1").get("reason") is None
    assert (await world.run(0, dequeue_count=LAST)).result == "skipped"
    assert counters(world.campaigns.get("c1")) == ("Completed", 100, 100, 0, 0)


class ReconcilingMidCall:
    """ACS during the chunk's last delivery: while that call is in flight, the reconciler records the
    chunk (from an earlier delivery's intent); then this call's answer is lost too."""

    def __init__(self, world: IntentWorld) -> None:
        self.world, self.acs, self.armed = world, world.acs, True

    async def send_mms(self, payload: Any) -> dict[str, Any]:
        if self.armed:
            self.armed = False
            self.world.acs = self.acs  # the reconciler's own calls go straight to ACS
            await self.world.reconcile()
            self.acs.lose_response = lost()
        return await self.acs.send_mms(payload)


async def test_the_reconciler_counting_while_the_last_delivery_fails_counts_the_chunk_once() -> None:
    """The last delivery read the campaign (chunk not counted) before the reconciler counted it as
    sent; its failure count then finds the chunk counted and changes nothing."""
    world = IntentWorld()
    await world.create(numbers(100))
    await world.deliver_losing_every_answer(0, deliveries=LAST - 1)
    world.acs = ReconcilingMidCall(world)  # type: ignore[assignment]
    with pytest.raises(AcsUnavailable):
        await world.run(0, dequeue_count=LAST)
    assert counters(world.campaigns.get("c1")) == ("Completed", 100, 100, 0, 0)
    await world.reconcile()  # the last delivery's own intent: recorded, counted nowhere again
    chunk = (world.chunk(0).campaign_id, 0, 100)
    await count_recorded_chunk(world.campaigns, world.tracking, chunk, LATER)
    assert counters(world.campaigns.get("c1")) == ("Completed", 100, 100, 0, 0)
    assert sum(world.acs.sent.values()) == 100 and max(world.acs.sent.values()) == 1


async def test_counts_racing_under_etag_conflicts_move_the_chunk_once() -> None:
    """Five reconciler runs' counts of the chunk (one per intent) at once, each losing ETag races."""
    world = IntentWorld()
    await world.create(numbers(150))
    await world.run(1)
    await world.deliver_losing_every_answer(0)
    await asyncio.gather(*(world.acs.send_mms(i.payload) for i in world.tracking.intents.values()))
    await world.tracking.put_send_results(
        {
            r["repeatabilityRequestId"]: {"item": world.acs.first[r["repeatabilityRequestId"]], "request": "-"}
            for r in next(iter(world.tracking.intents.values())).payload["recipients"]
        }
    )
    world.campaigns.conflicts = 6
    chunk = (world.chunk(0).campaign_id, 0, 100)
    await asyncio.gather(*(count_recorded_chunk(world.campaigns, world.tracking, chunk, LATER) for _ in range(5)))
    assert counters(world.campaigns.get("c1")) == ("Completed", 150, 150, 0, 0)
    assert world.campaigns.get("c1")["recovered"] == 100


async def test_a_cancelled_campaign_keeps_its_status_and_reason_when_a_chunk_is_found_sent() -> None:
    world = IntentWorld()
    await world.create(numbers(200))
    await world.deliver_losing_every_answer(0)
    await cancel_campaign(world.campaigns, "c1", T0)
    await world.run(1)
    await world.reconcile()
    campaign = world.campaigns.get("c1")
    assert counters(campaign) == ("Cancelled", 100, 100, 0, 0)
    assert campaign["reason"] == "Cancelled by the client."


async def test_later_delivery_reports_change_no_counter_beyond_the_move() -> None:
    world = IntentWorld()
    await world.create(numbers(100))
    await world.deliver_losing_every_answer(0)
    await world.reconcile()
    moved = dict(world.campaigns.get("c1"))
    for n, (rid, item) in enumerate(list(world.acs.first.items())[:2]):
        status = "Delivered" if n == 0 else "Failed"
        report = DeliveryReport(
            f"e-{rid}", "Microsoft.Communication.SMSDeliveryReportReceived", item["messageId"], status
        )
        await record_report(world.tracking, report, LATER)
    assert world.campaigns.get("c1") == moved


async def test_a_count_for_an_unknown_campaign_or_a_chunk_beyond_it_changes_nothing() -> None:
    world = IntentWorld()
    await world.create(numbers(100))
    await count_recorded_chunk(world.campaigns, world.tracking, ("gone", 0, 100), LATER)
    await count_recorded_chunk(world.campaigns, world.tracking, ("c1", 7, 100), LATER)
    assert counters(world.campaigns.get("c1")) == ("Queued", 0, 0, 0, 0)


async def test_a_chunk_cancelled_while_its_answers_were_lost_is_counted_sent_once_found_and_stays_cancelled() -> None:
    """Cancelled after ACS accepted the chunk (its answer lost): the redelivery skips it as
    cancelled, counted as nothing; when the reconciler records it, what ACS sent is counted, once."""
    world = IntentWorld()
    await world.create(numbers(100))
    await world.deliver_losing_every_answer(0, deliveries=2)
    await cancel_campaign(world.campaigns, "c1", T0)
    assert (await world.run(0, dequeue_count=3)).result == "skipped"
    assert counters(world.campaigns.get("c1")) == ("Cancelled", 0, 0, 0, 0)
    await world.reconcile()
    await world.reconcile()
    chunk = (world.chunk(0).campaign_id, 0, 100)
    await count_recorded_chunk(world.campaigns, world.tracking, chunk, LATER)
    campaign = world.campaigns.get("c1")
    assert counters(campaign) == ("Cancelled", 100, 100, 0, 0)
    assert campaign["reason"] == "Cancelled by the client."
