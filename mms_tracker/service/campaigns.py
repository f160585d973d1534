"""Campaigns: one job sends to many recipients in chunks of 100, throttled, resumable, never twice.

A campaign is created once (its attachments stored once, one queue message per chunk); the
queue-triggered worker sends each chunk through :func:`send_mms` with repeatability pairs derived
from (campaign, chunk, recipient), so a chunk sent again after a crash or a redelivered message is
answered from the stored results or recognised by ACS, and never sent twice. The job's counters
live in its own entity and change only under its ETag, once per chunk (a bit per chunk says it
was counted). A chunk counted ``failedToSend`` is marked too (a second bit), and moves to
``accepted``/``rejected`` once, when the reconciler records ACS's answer for it
(:func:`count_recorded_chunk`): the queue gave up on it, but ACS had accepted it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain import campaign as rules
from ..domain.campaign import CampaignStatus, chunk_done
from ..domain.phone import MAX_STORED_NUMBER_CHARS, is_e164
from ..domain.text import content_fingerprint
from ..logs import log_event
from .campaign_ports import AttachmentStore, CampaignChanged, CampaignNotFound, CampaignStore, ChunkQueue
from .ports import (
    AcsAuthFailed,
    AcsRequestRejected,
    AcsThrottled,
    MmsSender,
    SendIntents,
    SendResults,
    TrackingStore,
)
from .sending import MmsRequest, Recipient, SendDeps, send_mms

_log = logging.getLogger("mms_tracker.campaigns")

CHUNK_SIZE = 100  # ACS takes at most 100 recipients in one request (MmsSendMessageRequest.recipients)
MAX_CAMPAIGN_RECIPIENTS = 100_000
# The host moves a message to ``<queue>-poison`` after this many failed deliveries; host.json sets
# extensions.queues.maxDequeueCount to it (the extension's default, QueuesOptions.cs), a test holds them equal.
MAX_DEQUEUE_COUNT = 5
THROTTLED_DELAY_SECONDS = 10  # a 429 without Retry-After delays the chunk this long
# A longer Retry-After delays the chunk this long (and it asks again): a queue message stays invisible
# at most 7 days and lives 7 days (Put Message; Azurite's ENQUEUE_VISIBILITYTIMEOUT_MAX, DEFAULT_MESSAGETTL).
MAX_THROTTLED_DELAY_SECONDS = 3600
# A chunk keeps one character more than a record stores: a longer `to` is not E.164 (16 characters
# at most) and stays invalid when cut, and it is still over the stored length, so its record is
# clipped with an ellipsis exactly as a direct send of the whole number would be.
MAX_STORED_TO_CHARS = MAX_STORED_NUMBER_CHARS + 1
_ID_NAMESPACE = uuid.UUID("8e0c7c1e-2f7c-4d55-9b0e-5b1f1c3a6d21")  # this app's own uuid5 namespace
_ETAG_RETRIES = 30
_ETAG_BACKOFF_CAP_SECONDS = 0.5


@dataclass(frozen=True)
class CampaignRequest:
    """A validated ``POST /api/campaigns`` body."""

    from_: str
    recipients: tuple[str, ...]
    message: str | None
    attachments: tuple[dict[str, str], ...]
    tag: str | None


@dataclass(frozen=True)
class Chunk:
    campaign_id: str
    index: int
    recipients: tuple[str, ...]

    def to_message(self) -> str:
        """The chunk as queue text. Not ASCII-escaped: a queue message holds at most 64 KiB (of its
        base64, as the trigger sends it), and 100 recipients of :data:`MAX_STORED_TO_CHARS` astral
        characters escaped as ``\\ud83d\\ude00`` would not fit; unescaped, the worst (a control
        character, 6 bytes) stays under."""
        recipients = list(self.recipients)
        return json.dumps(
            {"campaignId": self.campaign_id, "chunk": self.index, "recipients": recipients}, ensure_ascii=False
        )

    @classmethod
    def from_message(cls, body: str) -> Chunk:
        data = json.loads(body)
        return cls(str(data["campaignId"]), int(data["chunk"]), tuple(str(t) for t in data["recipients"]))


def chunks(campaign_id: str, recipients: Sequence[str]) -> list[Chunk]:
    """The campaign's recipients in order, ``CHUNK_SIZE`` at a time."""
    return [
        Chunk(campaign_id, i // CHUNK_SIZE, tuple(t[:MAX_STORED_TO_CHARS] for t in recipients[i : i + CHUNK_SIZE]))
        for i in range(0, len(recipients), CHUNK_SIZE)
    ]


def repeatability_request_id(campaign_id: str, chunk: int, recipient: int) -> str:
    """The same UUID for the same (campaign, chunk, recipient), on every attempt and every instance."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{campaign_id}/{chunk}/{recipient}"))


def repeatability_first_sent(created_at: dt.datetime) -> str:
    """The campaign's creation time as RFC 1123, the first-sent time of every recipient's first attempt."""
    return email.utils.format_datetime(created_at.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def campaign_id_for(idempotency_key: str | None) -> str:
    """A client's ``Idempotency-Key`` always names the same campaign; without one, a new id.

    A header whose bytes are not UTF-8 reaches the app with lone surrogates in it (Python's servers
    decode with ``surrogateescape``): it is named by its bytes, under a prefix no text key has."""
    if not idempotency_key:
        return str(uuid.uuid4())
    try:
        return str(uuid.uuid5(_ID_NAMESPACE, "idempotency:" + idempotency_key))
    except UnicodeEncodeError:
        raw = idempotency_key.encode("utf-8", "surrogatepass")
        return str(uuid.uuid5(_ID_NAMESPACE, "idempotency-bytes:" + raw.hex()))


# --- create, read, cancel ---------------------------------------------------------------------------


async def create_campaign(
    request: CampaignRequest,
    campaign_id: str,
    store: CampaignStore,
    queue: ChunkQueue,
    attachments: AttachmentStore,
    now: dt.datetime,
) -> dict[str, Any]:
    """Store the job and enqueue its chunks; the same ``campaign_id`` again returns the first job.

    Order makes a crash at any point safe to repeat, and a request that loses a race for its
    ``campaign_id`` writes nothing of its own: the entity first (only one request creates it;
    another body is then an :class:`IdempotencyConflict` before it writes anything), then the
    attachments (the worker needs them before any chunk), the index row (under the *stored*
    creation time, so however many requests race, the job is listed once), the chunks, and
    ``enqueued``. A repeat that finds the entity not yet ``enqueued`` does all but the first again
    (the same attachments, the same index row); a chunk delivered twice is sent once.
    """
    all_chunks = chunks(campaign_id, request.recipients)
    fingerprint = request_fingerprint(request)
    campaign: dict[str, Any] = {
        "campaignId": campaign_id,
        "fingerprint": fingerprint,
        "tag": request.tag or campaign_id,
        "from": request.from_,
        "message": request.message,
        "status": CampaignStatus.QUEUED.value,
        "total": len(request.recipients),
        "chunks": len(all_chunks),
        "chunksCounted": 0,
        "chunksDone": "",
        "chunksFailed": "",
        "chunksSkipped": "",
        "sent": 0,
        "accepted": 0,
        "rejected": 0,
        "failedToSend": 0,
        "createdAt": now.astimezone(dt.UTC),
        "completedAt": None,
        "reason": None,
        "enqueued": False,
    }
    try:
        existing, _ = await store.get_campaign(campaign_id)
    except CampaignNotFound:
        existing = None
    if existing is not None and existing.get("fingerprint", fingerprint) != fingerprint:
        raise IdempotencyConflict(campaign_id)
    if existing is not None and existing.get("enqueued"):
        return existing
    if existing is None and not await store.create_campaign(campaign):
        existing, _ = await store.get_campaign(campaign_id)
        if existing.get("fingerprint", fingerprint) != fingerprint:
            raise IdempotencyConflict(campaign_id)
        if existing.get("enqueued"):
            return existing
    await attachments.put_attachments(campaign_id, list(request.attachments))
    await store.index_campaign(campaign_id, (existing or campaign)["createdAt"])
    await queue.enqueue([c.to_message() for c in all_chunks])
    return await _update(store, campaign_id, rules.mark_enqueued)


class IdempotencyConflict(ValueError):
    """An ``Idempotency-Key`` that already created a campaign from a different body: nothing is created."""


def request_fingerprint(request: CampaignRequest) -> str:
    """What an ``Idempotency-Key`` stands for: this sender, message, tag, recipients and attachments."""
    parts = [request.from_, request.message, request.tag, list(request.recipients)]
    return content_fingerprint(parts, request.attachments)


async def list_campaigns(
    store: CampaignStore, page_size: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of campaigns, newest first (each read afresh; one listed but never stored is left out)."""
    ids, cursor = await store.list_campaigns(page_size, after)

    async def read(campaign_id: str) -> dict[str, Any] | None:
        try:
            return (await store.get_campaign(campaign_id))[0]
        except CampaignNotFound:
            return None

    found = await asyncio.gather(*(read(i) for i in ids))
    return [c for c in found if c is not None], cursor


async def cancel_campaign(store: CampaignStore, campaign_id: str, now: dt.datetime) -> dict[str, Any]:
    """Chunks not yet sent are not sent; a job already finished stays as it finished."""
    return await _update(store, campaign_id, rules.cancel)


async def _update(
    store: CampaignStore, campaign_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any]:
    """Apply the transition ``change`` to the campaign under its ETag, again on a conflict; ``change``
    returns the new state, or None for no write."""
    for attempt in range(_ETAG_RETRIES):
        campaign, etag = await store.get_campaign(campaign_id)
        changed = change(campaign)
        if changed is None:
            return campaign
        try:
            await store.replace_campaign(changed, etag)
            return changed
        except CampaignChanged:
            # Chunks of one campaign finish together and all write its entity: back off with jitter so
            # that they spread out instead of colliding again on every try.
            await asyncio.sleep(random.uniform(0, min(_ETAG_BACKOFF_CAP_SECONDS, 0.005 * 2**attempt)))
    raise CampaignChanged(campaign_id)


# --- the worker -------------------------------------------------------------------------------------


class SendSlots(Protocol):
    """Send slots per sender shared by every instance (``adapters.campaigns.CampaignTable``)."""

    async def reserve_send_slot(self, sender: str, interval: float, now: float) -> float: ...


class Throttle(Protocol):
    """Waits until ``sender`` may send its next request (``SendThrottle`` in the app)."""

    async def acquire(self, sender: str) -> None: ...


class SendThrottle:
    """At most ``per_second`` requests per second per sender number.

    The slots are shared by every instance through storage, so the rate holds however far the
    queue trigger scales out: a chunk reserves the sender's next slot (one read and one
    conditional write) and waits for it.
    """

    def __init__(
        self,
        per_second: float,
        slots: SendSlots,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = 1.0 / per_second
        self.slots = slots
        self.wall_clock = wall_clock

    async def acquire(self, sender: str, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        now = self.wall_clock()
        slot = await self.slots.reserve_send_slot(sender, self.interval, now)
        if slot > now:
            await sleep(slot - now)


@dataclass(frozen=True)
class ChunkOutcome:
    """What the worker did with one chunk: ``sent``, ``skipped`` (counted before, or the job cancelled),
    ``delayed`` (ACS throttled: the chunk comes back later) or ``failed`` (for good)."""

    result: str
    delay_seconds: int = 0


@dataclass(frozen=True)
class ChunkContext:
    acs: MmsSender
    tracking: TrackingStore
    results: SendResults
    campaigns: CampaignStore
    queue: ChunkQueue
    attachments: AttachmentStore
    throttle: Throttle
    expiry_window: dt.timedelta
    retention: dt.timedelta | None = None
    # The send path's intents (issue 19): with them, a chunk ACS accepted whose records could not
    # be written is finished by the reconciler, like any send, instead of waiting on redelivery.
    intents: SendIntents | None = None
    storage_budget: float | None = None
    claim: dt.timedelta | None = None

    def send_deps(self) -> SendDeps:
        """What a chunk's :func:`send_mms` needs, from this context."""
        return SendDeps(
            self.acs,
            self.tracking,
            self.results,
            self.expiry_window,
            self.retention,
            intents=self.intents,
            storage_budget=self.storage_budget,
            claim=self.claim,
        )


async def send_chunk(
    chunk: Chunk, dequeue_count: int, context: ChunkContext, now: Callable[[], dt.datetime]
) -> ChunkOutcome:
    """Send one chunk once, count it once.

    Raises on a transient failure (the queue redelivers after its visibility timeout); on the last
    delivery the chunk is first counted as ``failedToSend`` with the reason, so the job ends
    ``CompletedWithErrors`` while the host moves the message to the poison queue. A failure that
    cannot succeed on retry (ACS refused the request or the credentials) is counted and poisoned
    at once. ACS throttling re-enqueues the chunk after ``Retry-After`` and never fails it.
    """
    try:
        campaign, _ = await context.campaigns.get_campaign(chunk.campaign_id)
    except CampaignNotFound:
        log_event(_log, logging.WARNING, "campaign_chunk_orphaned", campaign=chunk.campaign_id, chunk=chunk.index)
        return ChunkOutcome("skipped")
    if chunk_done(campaign, chunk.index):
        return ChunkOutcome("skipped")
    if campaign["status"] == CampaignStatus.CANCELLED:
        await _count(context.campaigns, chunk, now(), {}, skipped=True)
        return ChunkOutcome("skipped")
    created_at: dt.datetime = campaign["createdAt"]
    first_sent = repeatability_first_sent(created_at)
    request = MmsRequest(
        from_=str(campaign["from"]),
        recipients=tuple(
            Recipient(to, repeatability_request_id(chunk.campaign_id, chunk.index, i), first_sent)
            for i, to in enumerate(chunk.recipients)
        ),
        message=campaign.get("message"),
        attachments=tuple(await context.attachments.get_attachments(chunk.campaign_id)),
        tag=str(campaign["tag"]),
    )
    if any(is_e164(to) for to in chunk.recipients):
        await context.throttle.acquire(request.from_)
    try:
        items = await send_mms(
            request,
            context.send_deps(),
            now(),
            claim_client_ids=False,  # the ids are derived from (campaign, chunk, position): no client reuses them
            campaign_chunk=(chunk.campaign_id, chunk.index, len(chunk.recipients)),
        )
    except AcsThrottled as exc:
        delay = math.ceil(exc.retry_after) if exc.retry_after is not None else THROTTLED_DELAY_SECONDS
        delay = min(delay, MAX_THROTTLED_DELAY_SECONDS)
        await context.queue.enqueue([chunk.to_message()], visibility_timeout=max(1, delay))
        log_event(
            _log, logging.INFO, "campaign_chunk_delayed", campaign=chunk.campaign_id, chunk=chunk.index, delay=delay
        )
        return ChunkOutcome("delayed", delay)
    except (AcsAuthFailed, AcsRequestRejected) as exc:
        await _count(context.campaigns, chunk, now(), {"failedToSend": len(chunk.recipients)}, reason=str(exc))
        await context.queue.poison(chunk.to_message())
        return ChunkOutcome("failed")
    except Exception as exc:
        if dequeue_count >= MAX_DEQUEUE_COUNT:
            await _count(
                context.campaigns,
                chunk,
                now(),
                {"failedToSend": len(chunk.recipients)},
                reason=f"chunk {chunk.index} failed {dequeue_count} times: {type(exc).__name__}",
            )
        raise
    accepted = sum(1 for item in items if item.get("successful"))
    await _count(
        context.campaigns,
        chunk,
        now(),
        {"sent": len(items), "accepted": accepted, "rejected": len(items) - accepted},
    )
    return ChunkOutcome("sent")


async def _count(
    store: CampaignStore,
    chunk: Chunk,
    now: dt.datetime,
    counters: Mapping[str, int],
    reason: str | None = None,
    skipped: bool = False,
) -> None:
    def change(campaign: dict[str, Any]) -> dict[str, Any] | None:
        return rules.count_chunk(campaign, chunk.index, now, counters, reason, skipped)

    await _update(store, chunk.campaign_id, change)


# --- a chunk found sent after all -------------------------------------------------------------------


async def count_recorded_chunk(
    store: CampaignStore, results: SendResults, campaign_chunk: tuple[str, int, int], now: dt.datetime
) -> None:
    """The reconciler recorded ACS's answer for a chunk's send (``SendIntent.campaign_chunk``):
    count the chunk from the results now stored under its derived ids, once.

    A chunk counted ``failedToSend`` (the queue gave up on it while ACS had accepted it, its answer
    lost on every delivery) moves: ``failedToSend`` goes down by the chunk's size, ``sent`` up by
    it, ``accepted`` by the recipients ACS accepted and ``rejected`` by the rest (refused by ACS,
    or not E.164), and the status is decided again (``Completed`` once nothing failed remains). A
    chunk not counted yet is counted as sent (its last delivery then skips it); one counted as sent
    is left alone. The ``chunksFailed`` bit, cleared under the ETag with the move, makes it happen
    once however many intents of the chunk (one per delivery) are recorded, in whatever order.
    """
    campaign_id, index, size = campaign_chunk
    ids = [repeatability_request_id(campaign_id, index, i) for i in range(size)]
    stored = await results.get_send_results(ids)
    accepted = sum(1 for rid in ids if (stored.get(rid) or {}).get("item", {}).get("successful"))
    moved = False

    def change(campaign: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal moved
        changed, moved = rules.count_found_sent(campaign, index, size, accepted, now)  # again on each try
        return changed

    try:
        await _update(store, campaign_id, change)
    except CampaignNotFound:
        log_event(_log, logging.WARNING, "campaign_chunk_orphaned", campaign=campaign_id, chunk=index)
        return
    if moved:
        log_event(
            _log,
            logging.WARNING,
            "campaign_chunk_found_sent",
            campaign=campaign_id,
            chunk=index,
            accepted=accepted,
            recipients=size,
        )
