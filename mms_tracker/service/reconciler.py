"""The reconciler: finishes sends whose records were not written (storage failed, the worker died),
by repeating the ACS call an intent kept with the same repeatability pairs."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import telemetry
from ..domain.timestamps import shifted
from ..logs import log_event, mask_phone
from .ports import AcsError, AcsRequestRejected, MmsSender, SendIntent, SendIntents, SendResults, TrackingStore
from .sending import _align, _refused_send, _request_of, _send_for
from .tracking import record_sends

_log = logging.getLogger("mms_tracker.sending")
RECONCILE_BATCH = 100  # intents finished per reconciler run; the next run takes the rest
RECONCILE_CONCURRENCY = 4

Poison = Callable[[Mapping[str, Any], str, dt.datetime], Awaitable[None]]


class ReconcileOutcome(enum.Enum):
    """What one reconciler run did with one intent (the value names its count in :class:`Reconciled`)."""

    RECORDED = "recorded"  # recorded from ACS's answer
    REFUSED = "refused"  # ACS refused the repeat as a whole: recorded Rejected
    ABANDONED = "abandoned"  # past its expiry after an attempt: recorded Rejected
    UNKNOWN = "unknown"  # ACS no longer recognises the pairs: kept in poison, no record invented
    PENDING = "pending"  # left for a later run (held by a send, ACS failing, no time left)


@dataclass(frozen=True)
class Reconciled:
    """What one reconciler run did with the intents it found: recorded from ACS's answer,
    refused by ACS as a whole, given up past their expiry, outcome unknown (ACS no longer
    recognises the pairs), or left for a later run (held by a send, ACS failing, no time left)."""

    recorded: int = 0
    refused: int = 0
    abandoned: int = 0
    unknown: int = 0
    pending: int = 0

    @classmethod
    def of(cls, outcomes: Iterable[ReconcileOutcome]) -> Reconciled:
        """Count each outcome under its own field."""
        counts = Counter(outcomes)
        return cls(**{outcome.value: counts[outcome] for outcome in ReconcileOutcome})


@dataclass(frozen=True)
class ReconcileDeps:
    """What every reconciler run needs, built once: the intents, the ACS sender, the records, the
    results of client ids, the records' retention, ``claim`` (how long a run holds an intent it
    takes), ``budget`` (seconds a run may take), where an intent whose outcome is unknown is kept
    (``poison``), and ``on_recorded`` (see :func:`reconcile_sends`)."""

    intents: SendIntents
    acs: MmsSender
    store: TrackingStore
    results_log: SendResults
    retention: dt.timedelta | None = None
    claim: dt.timedelta = dt.timedelta(minutes=5)
    budget: float | None = None
    poison: Poison | None = None
    on_recorded: Callable[[SendIntent], Awaitable[None]] | None = None


@dataclass(frozen=True)
class _Run:
    """What every intent of one reconciler run shares."""

    deps: ReconcileDeps
    now: dt.datetime
    acs_down: asyncio.Event


async def reconcile_sends(deps: ReconcileDeps, now: dt.datetime, older_than: dt.timedelta) -> Reconciled:
    """Finish every send whose intent is older than ``older_than``: its records were not written.

    An intent still held (by its send, until the send's deadline, or by another run) is left
    alone; the others are claimed for ``claim`` (conditionally on being unchanged, so two runs
    never take the same one), then the ACS call is repeated with the same body and pairs: ACS
    answers a pair it has seen with the first call's result (or sends now what never reached it),
    and the records are written from that answer, as the send would have. The first ACS
    failure that is not about this request alone (throttling, an outage, a timeout) leaves every
    intent after it for the next run; so does ``budget`` (seconds) running out.

    ACS refusing the repeat as a whole records every recipient ``Rejected`` with its message,
    except 409 (the original is still being processed: left for later) and 412 (the pair is
    older than ACS keeps it, so the first call's outcome can no longer be learnt): then no record
    is invented; the intent is kept in ``poison`` for an operator (recipients and pairs, not the
    message) and removed, and a report from the carrier still creates the record if it was
    sent. An intent past its expiry that has been tried at least once is recorded ``Rejected``,
    failed to send, with the reason. Storage errors raise: the next run tries again.

    ``on_recorded`` is called with each intent recorded from ACS's answer, after its records and
    results are written and before the intent is removed, so that if it fails the next run
    repeats the whole (the campaigns count a chunk from it, once: ``campaigns.count_recorded_chunk``).
    """
    intents, budget = deps.intents, deps.budget
    found = await intents.intents_before(shifted(now, -older_than), RECONCILE_BATCH)
    run = _Run(deps, now, asyncio.Event())
    limit = asyncio.Semaphore(RECONCILE_CONCURRENCY)

    async def one(intent: SendIntent) -> ReconcileOutcome:
        async with limit:
            if run.acs_down.is_set():
                return ReconcileOutcome.PENDING
            if intent.claimed_until is not None and intent.claimed_until > now:
                return ReconcileOutcome.PENDING  # its send may still be running, or another run has it
            if not await intents.claim_intent(intent, shifted(now, deps.claim)):
                return ReconcileOutcome.PENDING
            return await _reconcile(run, intent)

    tasks = [asyncio.ensure_future(one(i)) for i in found]
    try:
        async with asyncio.timeout(budget):
            await asyncio.gather(*tasks)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log_event(_log, logging.WARNING, "reconcile_run_out_of_time", budget_seconds=budget)
    outcomes = [
        t.result() if t.done() and not t.cancelled() and t.exception() is None else ReconcileOutcome.PENDING
        for t in tasks
    ]
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a storage error: the run fails, the next one retries
    result = Reconciled.of(outcomes)
    if found:
        log_event(_log, logging.INFO, "sends_reconciled", **vars(result))
    return result


async def _items_of(run: _Run, intent: SendIntent) -> tuple[ReconcileOutcome, list[dict[str, Any]]]:
    """Repeat the intent's ACS call (or give it up past its expiry) and return one item per
    recipient; an outcome other than recorded, refused or abandoned comes back with no items."""
    recipients = _request_of(intent.payload).recipients
    if run.now >= intent.expires_at and intent.attempts >= 1:
        reason = (
            f"ACS gave no answer within EXPIRY_WINDOW_HOURS after {intent.attempts + 1} attempts"
            f" (last: {intent.last_error or 'none'}); not known to have been sent."
        )
        items = [{"to": r.to, "httpStatusCode": 504, "successful": False, "errorMessage": reason} for r in recipients]
        return ReconcileOutcome.ABANDONED, items
    try:
        response = await run.deps.acs.send_mms(intent.payload)
    except AcsRequestRejected as exc:
        if exc.upstream_status == 409:  # ACS: the original request is still being processed
            await run.deps.intents.note_intent_attempt(intent, exc.detail)
            return ReconcileOutcome.PENDING, []
        if exc.upstream_status == 412:  # ACS: the pair is older than it keeps; outcome unknowable
            await _give_up_unknown(run, intent, exc.detail)
            return ReconcileOutcome.UNKNOWN, []
        status = exc.upstream_status or 400
        items = [
            {"to": r.to, "httpStatusCode": status, "successful": False, "errorMessage": exc.detail} for r in recipients
        ]
        return ReconcileOutcome.REFUSED, items
    except AcsError as exc:
        run.acs_down.set()  # throttled, down or unreachable: the rest wait for the next run
        await run.deps.intents.note_intent_attempt(intent, exc.detail)
        log_event(_log, logging.WARNING, "send_reconcile_pending", intent=intent.intent_id, reason=exc.detail)
        return ReconcileOutcome.PENDING, []
    return ReconcileOutcome.RECORDED, _align(response["value"], list(recipients))


async def _reconcile(run: _Run, intent: SendIntent) -> ReconcileOutcome:
    outcome, items = await _items_of(run, intent)
    if outcome in (ReconcileOutcome.PENDING, ReconcileOutcome.UNKNOWN):
        return outcome
    request = _request_of(intent.payload)
    sends = [_send_for(request, r, item, intent.created_at) for r, item in zip(request.recipients, items, strict=True)]
    sends += [_refused_send(intent, key, to, error, request) for key, to, error in intent.refused]
    fresh = {
        client_id: {"item": items[position], "request": fingerprint}
        for position, client_id, fingerprint in intent.clients
        if outcome is not ReconcileOutcome.ABANDONED and 0 <= position < len(items)
    }
    window = intent.expires_at - intent.created_at
    # The send's traceparent (kept on the intent), so a later report's span links to the send.
    await record_sends(
        telemetry.with_traceparent(run.deps.store, intent.traceparent), sends, run.now, window, run.deps.retention
    )
    if fresh:
        await run.deps.results_log.put_send_results(fresh)
    if run.deps.on_recorded is not None and outcome is ReconcileOutcome.RECORDED:
        await run.deps.on_recorded(intent)
    await run.deps.intents.remove_intent(intent)
    log_event(
        _log,
        logging.INFO,
        "send_reconciled",
        intent=intent.intent_id,
        outcome=outcome.value,
        accepted=sum(1 for s in sends if s.accepted),
        recipients=len(sends),
    )
    return outcome


async def _give_up_unknown(run: _Run, intent: SendIntent, detail: str) -> None:
    """Keep what an operator needs to look the send up (never the message or attachments), then drop it."""
    kept = {
        "id": f"intent-{intent.intent_id}",
        "type": "MmsTracker.SendOutcomeUnknown",
        "createdAt": intent.created_at.isoformat(),
        "from": intent.payload.get("from"),
        "tag": (intent.payload.get("sendOptions") or {}).get("tag"),
        "recipients": [dict(r) for r in intent.payload.get("recipients", [])],
    }
    reason = f"ACS no longer recognises the send's repeatability pairs ({detail}); whether it was sent is unknown"
    if run.deps.poison is not None:
        await run.deps.poison(kept, reason, run.now)
    await run.deps.intents.remove_intent(intent)
    log_event(
        _log,
        logging.ERROR,
        "send_outcome_unknown",
        intent=intent.intent_id,
        recipients=",".join(mask_phone(str(r.get("to"))) or "" for r in intent.payload.get("recipients", [])),
        reason=detail,
    )
