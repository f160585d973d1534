"""The send use case: validate per recipient, reuse earlier results, call ACS once, record every recipient."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain import FieldError, Send
from ..domain.phone import is_e164
from ..logs import log_event, mask_phone
from .ports import MmsSender, SendResults, StorageRejected, StorageUnavailable, TrackingStore
from .tracking import record_sends

_log = logging.getLogger("mms_tracker.sending")
MAX_STORED_NUMBER_CHARS = 64
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


class RepeatabilityConflict(ValueError):
    """A client ``repeatabilityRequestId`` already answered a different request: nothing is sent."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


async def send_mms(
    request: MmsRequest,
    acs: MmsSender,
    store: TrackingStore,
    results_log: SendResults,
    now: dt.datetime,
    expiry_window: dt.timedelta,
    retention: dt.timedelta | None = None,
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
    _refuse_reused_ids(request, known)
    pending: list[tuple[int, Recipient]] = []
    for i, recipient in enumerate(request.recipients):
        if not recipient.valid:
            items[i] = {"to": recipient.to, "httpStatusCode": 400, "successful": False, "errorMessage": INVALID_NUMBER}
        elif recipient.repeatability_request_id in known:
            items[i] = dict(known[recipient.repeatability_request_id]["item"])
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
    fresh = {
        client_id: {"item": answered[i], "request": request_fingerprint(request, request.recipients[i])}
        for i, client_id in client_id_of.items()
        if client_id
    }
    await _record(store, results_log, sends, fresh, now, expiry_window, retention)
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


def request_fingerprint(request: MmsRequest, recipient: Recipient) -> str:
    """What a client's ``repeatabilityRequestId`` stands for: this recipient of this request."""
    attachments = [
        (a["contentType"], hashlib.sha256(a["contentInBase64"].encode()).hexdigest()) for a in request.attachments
    ]
    parts = [request.from_, recipient.to, recipient.repeatability_first_sent, request.message, request.tag, attachments]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


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


def _send_for(request: MmsRequest, recipient: Recipient, item: Mapping[str, Any], now: dt.datetime) -> Send:
    accepted = bool(item.get("successful")) and bool(item.get("messageId"))
    message_id = str(item["messageId"]) if accepted else _rejected_id(recipient)
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
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    retention: dt.timedelta | None,
) -> None:
    outcomes = await asyncio.gather(
        record_sends(store, sends, now, expiry_window, retention),
        results_log.put_send_results(fresh) if fresh else asyncio.sleep(0),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, (StorageUnavailable, StorageRejected)):
            log_event(
                _log,
                logging.ERROR,
                "send_records_not_written",
                reason=str(outcome),
                recipients=",".join(filter(None, (mask_phone(s.to) for s in sends))),
            )
        elif isinstance(outcome, BaseException):
            raise outcome
