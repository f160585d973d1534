"""The send use case: validate per recipient, reuse earlier results, keep an intent, call ACS once,
record every recipient. The reconciler that finishes sends whose records were not written is
:mod:`.reconciler`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from .. import telemetry
from ..domain import FieldError, Send
from ..domain.phone import MAX_STORED_NUMBER_CHARS, is_e164
from ..domain.text import clip, content_fingerprint, without_surrogates
from ..domain.timestamps import shifted
from ..logs import log_event, mask_phone
from .ports import (
    AcsError,
    MmsSender,
    SendIntent,
    SendIntents,
    SendResults,
    StorageRejected,
    StorageUnavailable,
    TrackingStore,
)
from .tracking import record_sends

_log = logging.getLogger("mms_tracker.sending")
MAX_STORED_ERROR_CHARS = 1024


INVALID_NUMBER = "Invalid phone number format."  # ACS's own errorMessage for a non-E.164 `to`


@dataclass(frozen=True)
class Recipient:
    to: str
    repeatability_request_id: str | None = None
    repeatability_first_sent: str | None = None

    @property
    def valid(self) -> bool:
        return is_e164(self.to)


@dataclass(frozen=True)
class MmsRequest:
    from_: str
    recipients: tuple[Recipient, ...]
    message: str | None
    attachments: tuple[dict[str, str], ...]
    tag: str | None


# ACS statuses after which a claim stays though ACS took nothing from *this* call: 409, the same
# pair is still being processed (another call under it is in flight: ACS holds the id); 412, the
# pair is past its window (ACS judged the id, and the first call's outcome is unknown). The
# statuses come from Microsoft's repeatable-requests guidance (learn.microsoft.com/rest/api/
# communication/repeatable-requests), as the reconciler's handling of them does.
HOLDS_THE_ID = frozenset({409, 412})


class RepeatabilityConflict(ValueError):
    """A client ``repeatabilityRequestId`` already answered a different request: nothing is sent."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class SendDeps:
    """What every send needs, built once (``Runtime.send_deps``, or a campaign's chunk context):
    the ACS sender, the records, the results of client repeatability ids, the intents (None: no
    intent is kept), the records' expiry window and retention, ``storage_budget`` (seconds each
    storage phase may take) and ``claim`` (how long a send holds its intent)."""

    acs: MmsSender
    store: TrackingStore
    results_log: SendResults
    expiry_window: dt.timedelta
    retention: dt.timedelta | None = None
    intents: SendIntents | None = None
    storage_budget: float | None = None
    claim: dt.timedelta | None = None


async def send_mms(
    request: MmsRequest,
    deps: SendDeps,
    now: dt.datetime,
    *,
    claim_client_ids: bool = True,
    campaign_chunk: tuple[str, int, int] | None = None,
) -> list[dict[str, Any]]:
    """Send ``request`` and return one ACS-shaped item per recipient, in request order.

    Recipients that are not E.164 are answered ``400 Invalid phone number format.`` in their
    item and not sent. A recipient whose client ``repeatabilityRequestId`` already has a result
    gets that result and is not sent again. The rest go to ACS in one call, each with a
    repeatability pair (the client's, or one made here) that every HTTP retry reuses.

    With ``intents``, the call is first kept as an intent; if that cannot be written, storage's
    error is raised and nothing is sent. After ACS answers, the records are written and the
    intent removed; if storage fails or ``storage_budget`` passes meanwhile, the intent stays
    (:func:`reconcile_sends` finishes it) and ACS's answer is still returned, so the client does
    not retry into a second send. ``storage_budget`` bounds each storage phase, before the call
    and after it; the ACS client bounds its own. ``claim`` is how long the send holds its intent
    (its deadline): the reconciler does not take it up before. When ACS may have accepted without
    its answer arriving, the error carries each recipient's pair (``AcsError.pairs``) and the
    intent stays.

    A client ``repeatabilityRequestId`` is claimed for this request (its fingerprint, no result
    yet) before the call, so that while the outcome is unknown a *different* request under the
    same id is a 409 too, not a second call ACS would answer with this one's result. The claim
    goes when ACS certainly took nothing. ``claim_client_ids=False`` skips it for ids no client
    chose (a campaign's, derived from the campaign, chunk and position). ``campaign_chunk`` (campaign
    id, chunk index, recipients in the chunk) goes on the intent, for the reconciler's ``on_recorded``.
    """
    plan = await _prepare(request, deps, now, claim_client_ids=claim_client_ids, campaign_chunk=campaign_chunk)
    intent, pending, items = plan.intent, plan.pending, plan.items
    # Each recipient as sent (with the pair made here), so a refused one gets the same
    # ``rejected-...`` id from this path and from the reconciler's.
    as_sent = list(request.recipients)
    if intent is not None:
        for (i, recipient), item in zip(pending, await _call_acs(deps, intent, pending, plan.claims), strict=True):
            as_sent[i] = recipient
            items[i] = item

    answered = [item for item in items if item is not None]
    assert len(answered) == len(request.recipients)
    sends = [
        _send_for(request, r, item, now, _refused_id(intent, i) if i in plan.refused else None)
        for i, (r, item) in enumerate(zip(as_sent, answered, strict=True))
    ]
    await _record(deps, intent, sends, _fresh_results(request, pending, answered), now)
    log_event(
        _log,
        logging.INFO,
        "mms_sent",
        recipients=len(answered),
        accepted=sum(1 for s in sends if s.accepted),
        sent_to_acs=len(pending),
        reused=plan.reused,
    )
    return answered


@dataclass
class _Plan:
    """A send once validated, reused and claimed: ``items`` holds each answer known before the call
    (None: still to send), ``pending`` the recipients to send (position, as sent), ``refused`` the
    positions refused as not E.164, ``reused`` how many client ids already had a result."""

    items: list[dict[str, Any] | None]
    pending: list[tuple[int, Recipient]]
    refused: list[int]
    reused: int
    intent: SendIntent | None
    claims: dict[str, str]


async def _prepare(
    request: MmsRequest,
    deps: SendDeps,
    now: dt.datetime,
    *,
    claim_client_ids: bool,
    campaign_chunk: tuple[str, int, int] | None,
) -> _Plan:
    """The storage phase before the call: look up the client ids' results (refusing one reused for
    another request), sort the recipients, claim the client ids and keep the intent."""
    client_ids = [r.repeatability_request_id for r in request.recipients if r.valid and r.repeatability_request_id]
    async with _storage_phase(deps.storage_budget):
        known = await deps.results_log.get_send_results(client_ids) if client_ids else {}
        _refuse_reused_ids(request, known)  # a claim held for another request refuses too
        answered_ids = {k: v for k, v in known.items() if "item" in v}
        items, pending, refused = _sort_recipients(request, answered_ids, now)
        intent = _intent_for(request, pending, refused, now, deps, campaign_chunk) if pending else None
        claims = await _claim(deps.results_log, request, pending, known) if claim_client_ids else {}
        if intent is not None and deps.intents is not None:
            # A failed intent write may still have landed (and the reconciler would send it), so
            # the claims stay: the same request still goes through, another one under the ids is a 409.
            await deps.intents.put_intent(intent)
    return _Plan(items, pending, refused, len(answered_ids), intent, claims)


def _sort_recipients(
    request: MmsRequest, answered_ids: dict[str, dict[str, Any]], now: dt.datetime
) -> tuple[list[dict[str, Any] | None], list[tuple[int, Recipient]], list[int]]:
    """Each recipient refused (not E.164: ACS's own 400 item), answered by its client id's earlier
    result, or pending (with a repeatability pair made here when the client gave none)."""
    items: list[dict[str, Any] | None] = [None] * len(request.recipients)
    pending: list[tuple[int, Recipient]] = []
    refused: list[int] = []
    for i, recipient in enumerate(request.recipients):
        if not recipient.valid:
            items[i] = {
                "to": recipient.to,
                "httpStatusCode": 400,
                "successful": False,
                "errorMessage": INVALID_NUMBER,
            }
            refused.append(i)
        elif recipient.repeatability_request_id in answered_ids:
            items[i] = dict(answered_ids[recipient.repeatability_request_id]["item"])
        else:
            pending.append((i, _with_repeatability(recipient, now)))
    return items, pending, refused


def _fresh_results(
    request: MmsRequest, pending: list[tuple[int, Recipient]], answered: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The results to keep for the client ids sent in this call: each item and its request's fingerprint."""
    return {
        client_id: {"item": answered[i], "request": request_fingerprint(request, request.recipients[i])}
        for i, client_id in ((i, request.recipients[i].repeatability_request_id) for i, _ in pending)
        if client_id
    }


async def _call_acs(
    deps: SendDeps, intent: SendIntent, pending: list[tuple[int, Recipient]], claims: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Call ACS once with the intent's body and return its item for each pending recipient. When
    ACS certainly took nothing, the intent goes and (unless ACS holds the ids) the claims too; when
    it may have sent, the error carries each recipient's pair."""
    try:
        response = await deps.acs.send_mms(intent.payload)
    except AcsError as exc:
        if not exc.maybe_sent:
            intents = deps.intents
            dropped = await _drop_intent(intents, intent, deps.storage_budget) if intents is not None else True
            if dropped and exc.upstream_status not in HOLDS_THE_ID:
                await _release(deps.results_log, claims, deps.storage_budget)
        if exc.maybe_sent:
            exc.pairs = [_pair(r) for _, r in pending]
        raise
    return _align(response["value"], [r for _, r in pending])


def _pair(recipient: Recipient) -> dict[str, str]:
    return {
        "to": recipient.to,
        "repeatabilityRequestId": recipient.repeatability_request_id or "",
        "repeatabilityFirstSent": recipient.repeatability_first_sent or "",
    }


def _refused_id(intent: SendIntent | None, position: int) -> str | None:
    """The id of a recipient refused before the call, the same on the send's path and the
    reconciler's: the client's id makes it (as without an intent), or else the intent and position."""
    if intent is None:
        return None
    for key, _, _ in intent.refused:
        if key == str(position):
            return f"rejected-{intent.intent_id}-{position}"
    return None  # the client's own id: ``_rejected_id`` makes ``rejected-<client id>``


def _refused_send(intent: SendIntent, key: str, to: str, error: str, request: MmsRequest) -> Send:
    message_id = key if key.startswith("rejected-") else f"rejected-{intent.intent_id}-{key}"
    return Send(message_id, to, request.from_, request.tag, False, intent.created_at, error)


@contextlib.asynccontextmanager
async def _storage_phase(budget: float | None) -> AsyncIterator[None]:
    """Bound one storage phase of a send; running out of time is storage being unavailable."""
    try:
        async with asyncio.timeout(budget):
            yield
    except TimeoutError:
        raise StorageUnavailable(f"storage did not answer within {budget:g} s") from None


def _intent_for(
    request: MmsRequest,
    pending: list[tuple[int, Recipient]],
    refused: list[int],
    now: dt.datetime,
    deps: SendDeps,
    campaign_chunk: tuple[str, int, int] | None = None,
) -> SendIntent:
    recipients = [r for _, r in pending]
    clients = tuple(
        (position, r.repeatability_request_id, request_fingerprint(request, request.recipients[i]))
        for position, (i, r) in enumerate(pending)
        if request.recipients[i].repeatability_request_id and r.repeatability_request_id
    )
    return SendIntent(
        uuid.uuid4().hex,
        now,
        shifted(now, deps.expiry_window),
        _acs_payload(request, recipients),
        clients,
        refused=tuple(
            (
                _rejected_id(request.recipients[i]) if request.recipients[i].repeatability_request_id else f"{i}",
                _storable(request.recipients[i].to, MAX_STORED_NUMBER_CHARS),
                INVALID_NUMBER,
            )
            for i in refused
        ),
        claimed_until=shifted(now, deps.claim) if deps.claim is not None else None,
        traceparent=telemetry.current_traceparent(),
        campaign_chunk=campaign_chunk,
    )


async def _drop_intent(intents: SendIntents, intent: SendIntent, budget: float | None) -> bool:
    """ACS certainly sent nothing: the intent goes (True). If it cannot (False), the reconciler's
    repeat is refused or answered as the first call was, by the same repeatability pairs."""
    try:
        async with _storage_phase(budget):
            await intents.remove_intent(intent)
    except (StorageUnavailable, StorageRejected) as exc:
        log_event(_log, logging.WARNING, "send_intent_not_removed", intent=intent.intent_id, reason=str(exc))
        return False
    return True


async def _claim(
    results_log: SendResults,
    request: MmsRequest,
    pending: list[tuple[int, Recipient]],
    known: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Claim the client ids this call is about to use, each for its request's fingerprint (insert
    if absent), and return those claimed here. An id another request claimed meanwhile is a 409:
    what was claimed here is released and nothing is sent."""
    wanted = {
        client_id: request_fingerprint(request, request.recipients[i])
        for i, _ in pending
        if (client_id := request.recipients[i].repeatability_request_id) and client_id not in known
    }
    if not wanted:
        return {}
    made, taken = await results_log.claim_send_ids(wanted)
    claimed = {k: wanted[k] for k in made}
    if taken:
        await _release(results_log, claimed, None)
        raise RepeatabilityConflict(
            [
                FieldError(f"recipients[{i}].repeatabilityRequestId", "was already used for a different request")
                for i, r in enumerate(request.recipients)
                if r.repeatability_request_id in taken
            ]
        )
    return claimed


async def _release(results_log: SendResults, claims: Mapping[str, str], budget: float | None) -> None:
    """ACS certainly took nothing and the intent is gone: the claims go (each only while still a
    claim for this request), so the client may use its ids again. If that fails, a claim lingers:
    a retry of the same request still goes through, another request under those ids is a 409."""
    if not claims:
        return
    try:
        async with _storage_phase(budget):
            await results_log.release_send_claims(claims)
    except (StorageUnavailable, StorageRejected) as exc:
        log_event(_log, logging.WARNING, "send_claims_not_released", claims=len(claims), reason=str(exc))


def request_fingerprint(request: MmsRequest, recipient: Recipient) -> str:
    """What a client's ``repeatabilityRequestId`` stands for: this recipient of this request."""
    parts = [request.from_, recipient.to, recipient.repeatability_first_sent, request.message, request.tag]
    return content_fingerprint(parts, request.attachments)


def _refuse_reused_ids(request: MmsRequest, known: Mapping[str, Mapping[str, Any]]) -> None:
    """A client id that already answered a *different* request is a 409: ACS would answer the first
    request's result (another number, another tag), so nothing is sent and nothing recorded."""
    errors = [
        FieldError(f"recipients[{i}].repeatabilityRequestId", "was already used for a different request")
        for i, r in enumerate(request.recipients)
        if r.repeatability_request_id is not None
        and r.repeatability_request_id in known
        and known[r.repeatability_request_id].get("request") != request_fingerprint(request, r)
    ]
    if errors:
        raise RepeatabilityConflict(errors)


def _with_repeatability(recipient: Recipient, now: dt.datetime) -> Recipient:
    if recipient.repeatability_request_id:
        return recipient
    return Recipient(recipient.to, str(uuid.uuid4()), email.utils.format_datetime(now.astimezone(dt.UTC), usegmt=True))


def _acs_payload(request: MmsRequest, recipients: list[Recipient]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "from": request.from_,
        "recipients": [
            {
                "to": r.to,
                "repeatabilityRequestId": r.repeatability_request_id,
                "repeatabilityFirstSent": r.repeatability_first_sent,
            }
            for r in recipients
        ],
        "attachments": list(request.attachments),
        "sendOptions": {"enableDeliveryReport": True, **({"tag": request.tag} if request.tag else {})},
    }
    if request.message is not None:
        payload["message"] = request.message
    return payload


def _align(values: list[Any], recipients: list[Recipient]) -> list[dict[str, Any]]:
    """ACS answers in request order; fall back to matching by number if the counts differ."""
    items = [v for v in values if isinstance(v, dict)]
    if len(items) == len(recipients):
        return items
    by_number: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_number.setdefault(str(item.get("to")), []).append(item)
    aligned = []
    for r in recipients:
        matches = by_number.get(r.to) or []
        aligned.append(
            matches.pop(0)
            if matches
            else {"to": r.to, "httpStatusCode": 502, "successful": False, "errorMessage": "ACS returned no result."}
        )
    return aligned


def _send_for(
    request: MmsRequest, recipient: Recipient, item: Mapping[str, Any], now: dt.datetime, rejected_id: str | None = None
) -> Send:
    accepted = bool(item.get("successful")) and bool(item.get("messageId"))
    message_id = str(item["messageId"]) if accepted else rejected_id or _rejected_id(recipient)
    return Send(
        message_id,
        _storable(recipient.to, MAX_STORED_NUMBER_CHARS),  # a refused `to` may be anything a client sent
        request.from_,
        request.tag,
        accepted,
        now,
        None if accepted else _storable(str(item.get("errorMessage") or "Rejected by ACS."), MAX_STORED_ERROR_CHARS),
    )


def _storable(text: str, limit: int) -> str:
    """Client- or ACS-supplied text cut to ``limit`` and made valid unicode, so that its record can be stored."""
    return clip(without_surrogates(text), limit)


def _rejected_id(recipient: Recipient) -> str:
    """An app-made id for a refused recipient; stable for a client's repeated request."""
    if recipient.repeatability_request_id:
        return f"rejected-{recipient.repeatability_request_id}"
    return f"rejected-{uuid.uuid4()}"


async def _record(
    deps: SendDeps, intent: SendIntent | None, sends: list[Send], fresh: Mapping[str, dict[str, Any]], now: dt.datetime
) -> bool:
    """Write the records and results, then remove the intent; False (logged) when that did not
    finish in ``deps.storage_budget``: the intent stays and the reconciler finishes it. When nothing went to
    ACS (no intent), storage's error is raised instead: nothing was sent, so the client may retry."""
    try:
        async with _storage_phase(deps.storage_budget):
            outcomes = await asyncio.gather(
                record_sends(deps.store, sends, now, deps.expiry_window, deps.retention),
                deps.results_log.put_send_results(fresh) if fresh else asyncio.sleep(0),
                return_exceptions=True,
            )
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            for failure in failures:
                if not isinstance(failure, (StorageUnavailable, StorageRejected)):
                    raise failure
            if failures:
                raise failures[0]
            if deps.intents is not None and intent is not None:
                await deps.intents.remove_intent(intent)
    except (StorageUnavailable, StorageRejected) as exc:
        if intent is None:
            raise
        log_event(
            _log,
            logging.ERROR,
            "send_records_deferred",
            reason=str(exc),
            intent=intent.intent_id if intent is not None and deps.intents is not None else None,
            recipients=",".join(filter(None, (mask_phone(s.to) for s in sends))),
        )
        return False
    return True


def _request_of(payload: Mapping[str, Any]) -> MmsRequest:
    """The request an intent's ACS body was made from (the recipients ACS was asked to send to)."""
    return MmsRequest(
        from_=str(payload["from"]),
        recipients=tuple(
            Recipient(str(r["to"]), r.get("repeatabilityRequestId"), r.get("repeatabilityFirstSent"))
            for r in payload["recipients"]
        ),
        message=payload.get("message"),
        attachments=tuple(payload.get("attachments") or ()),
        tag=(payload.get("sendOptions") or {}).get("tag"),
    )
