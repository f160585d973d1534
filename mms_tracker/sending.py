"""The send use case: validate per recipient, reuse earlier results, call ACS once, record every recipient."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from .domain import Send
from .logs import log_event, mask_phone
from .send_request import INVALID_NUMBER, MmsRequest, Recipient
from .services import record_sends
from .store import StorageUnavailable, TrackingStore

_log = logging.getLogger("mms_tracker.sending")


class MmsSender(Protocol):
    """The ACS port: one call, ACS's JSON body back (``{"value": [...]}``), or an ``AcsError``."""

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]: ...


class SendResults(Protocol):
    """Results kept by client ``repeatabilityRequestId``, so a repeated request is answered without ACS."""

    async def get_send_results(self, request_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    async def put_send_results(self, results: Mapping[str, dict[str, Any]]) -> None: ...


async def send_mms(
    request: MmsRequest,
    acs: MmsSender,
    store: TrackingStore,
    results_log: SendResults,
    now: dt.datetime,
    expiry_window: dt.timedelta,
) -> list[dict[str, Any]]:
    """Send ``request`` and return one ACS-shaped item per recipient, in request order.

    Recipients that are not E.164 are answered ``400 Invalid phone number format.`` in their
    item and not sent. A recipient whose client ``repeatabilityRequestId`` already has a result
    gets that result and is not sent again. The rest go to ACS in one call, each with a
    repeatability pair (the client's, or one made here) that every HTTP retry reuses. Records
    are written concurrently before returning; if that fails after ACS accepted, the error is
    logged and the ACS result still returned, so the client does not retry into a second send.
    """
    items: list[dict[str, Any] | None] = [None] * len(request.recipients)
    client_ids = [r.repeatability_request_id for r in request.recipients if r.valid and r.repeatability_request_id]
    known = await results_log.get_send_results(client_ids) if client_ids else {}
    pending: list[tuple[int, Recipient]] = []
    for i, recipient in enumerate(request.recipients):
        if not recipient.valid:
            items[i] = {"to": recipient.to, "httpStatusCode": 400, "successful": False, "errorMessage": INVALID_NUMBER}
        elif recipient.repeatability_request_id in known:
            items[i] = known[recipient.repeatability_request_id]
        else:
            pending.append((i, _with_repeatability(recipient, now)))

    if pending:
        response = await acs.send_mms(_acs_payload(request, [r for _, r in pending]))
        for (i, _), item in zip(pending, _align(response["value"], [r for _, r in pending]), strict=True):
            items[i] = item

    answered = [item for item in items if item is not None]
    assert len(answered) == len(request.recipients)
    sends = [_send_for(request, r, item, now) for r, item in zip(request.recipients, answered, strict=True)]
    client_id_of = {i: request.recipients[i].repeatability_request_id for i, _ in pending}
    fresh = {client_id: answered[i] for i, client_id in client_id_of.items() if client_id}
    await _record(store, results_log, sends, fresh, now, expiry_window)
    log_event(
        _log,
        logging.INFO,
        "mms_sent",
        recipients=len(answered),
        accepted=sum(1 for s in sends if s.accepted),
        sent_to_acs=len(pending),
        reused=len(known),
    )
    return answered


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


def _send_for(request: MmsRequest, recipient: Recipient, item: Mapping[str, Any], now: dt.datetime) -> Send:
    accepted = bool(item.get("successful")) and bool(item.get("messageId"))
    message_id = str(item["messageId"]) if accepted else _rejected_id(recipient)
    return Send(
        message_id,
        recipient.to,
        request.from_,
        request.tag,
        accepted,
        now,
        None if accepted else str(item.get("errorMessage") or "Rejected by ACS."),
    )


def _rejected_id(recipient: Recipient) -> str:
    """An app-made id for a refused recipient; stable for a client's repeated request."""
    if recipient.repeatability_request_id:
        return f"rejected-{recipient.repeatability_request_id}"
    return f"rejected-{uuid.uuid4()}"


async def _record(
    store: TrackingStore,
    results_log: SendResults,
    sends: list[Send],
    fresh: Mapping[str, dict[str, Any]],
    now: dt.datetime,
    expiry_window: dt.timedelta,
) -> None:
    outcomes = await asyncio.gather(
        record_sends(store, sends, now, expiry_window),
        results_log.put_send_results(fresh) if fresh else asyncio.sleep(0),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, StorageUnavailable):
            log_event(
                _log,
                logging.ERROR,
                "send_records_not_written",
                reason=str(outcome),
                recipients=",".join(filter(None, (mask_phone(s.to) for s in sends))),
            )
        elif isinstance(outcome, BaseException):
            raise outcome
