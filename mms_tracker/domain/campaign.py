"""A campaign's statuses and the rules of its counters, as pure functions over its stored state.

A campaign's state is the mapping the store keeps (camelCase keys, the API's names). Every
transition here takes that state and returns a new mapping, or ``None`` when the transition
changes nothing (so the caller writes nothing); the input is never modified. The service applies
them under the entity's ETag.

The rules:

- a chunk is counted once: ``chunksDone`` holds one bit per chunk, set when it is counted;
- a chunk counted ``failedToSend`` is marked in ``chunksFailed``, one skipped as cancelled in
  ``chunksSkipped``; if ACS accepted it after all (:func:`count_found_sent`) it moves once to
  ``sent``/``accepted``/``rejected`` and its mark is cleared;
- once every chunk is counted the job is ``Completed``, or ``CompletedWithErrors`` while any
  recipient failed to send; before, ``Sending``; a cancelled job stays ``Cancelled``;
- a finished or cancelled job cannot be cancelled again (nothing changes).
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import math
from collections.abc import Mapping
from typing import Any


class CampaignStatus(enum.StrEnum):
    """The values of a campaign's ``status``, as the API shows them."""

    QUEUED = "Queued"
    SENDING = "Sending"
    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    CANCELLED = "Cancelled"


FINISHED = frozenset({CampaignStatus.COMPLETED, CampaignStatus.COMPLETED_WITH_ERRORS, CampaignStatus.CANCELLED})
CANCELLED_REASON = "Cancelled by the client."

DONE, FAILED, SKIPPED = "chunksDone", "chunksFailed", "chunksSkipped"


def _bits(campaign: Mapping[str, Any], field: str) -> bytearray:
    raw = str(campaign.get(field) or "")
    bits = bytearray(base64.b64decode(raw)) if raw else bytearray()
    size = math.ceil(int(campaign["chunks"]) / 8)
    return bits + bytearray(size - len(bits))


def has_bit(campaign: Mapping[str, Any], field: str, index: int) -> bool:
    return bool(_bits(campaign, field)[index // 8] & (1 << (index % 8)))


def _set_bit(campaign: dict[str, Any], field: str, index: int, on: bool) -> None:
    bits = _bits(campaign, field)
    if on:
        bits[index // 8] |= 1 << (index % 8)
    else:
        bits[index // 8] &= ~(1 << (index % 8)) & 0xFF
    campaign[field] = base64.b64encode(bytes(bits)).decode()


def chunk_done(campaign: Mapping[str, Any], index: int) -> bool:
    """The chunk was counted."""
    return has_bit(campaign, DONE, index)


def chunk_failed(campaign: Mapping[str, Any], index: int) -> bool:
    """Counted ``failedToSend``, and not found sent since."""
    return has_bit(campaign, FAILED, index)


def _add(campaign: dict[str, Any], counters: Mapping[str, int]) -> None:
    for name, n in counters.items():
        campaign[name] = int(campaign.get(name, 0)) + n


def _settle_status(campaign: dict[str, Any], now: dt.datetime) -> None:
    finished = campaign["chunksCounted"] >= campaign["chunks"]
    if campaign["status"] != CampaignStatus.CANCELLED:
        if finished:
            status = CampaignStatus.COMPLETED_WITH_ERRORS if campaign["failedToSend"] else CampaignStatus.COMPLETED
        else:
            status = CampaignStatus.SENDING
        campaign["status"] = status.value
    if finished and campaign.get("completedAt") is None:
        campaign["completedAt"] = now.astimezone(dt.UTC)


def count_chunk(
    campaign: Mapping[str, Any],
    index: int,
    now: dt.datetime,
    counters: Mapping[str, int],
    reason: str | None = None,
    skipped: bool = False,
) -> dict[str, Any] | None:
    """Chunk ``index`` counted into the campaign, or ``None`` when it was counted already.

    A chunk counted ``failedToSend``, or ``skipped`` (cancelled before a delivery sent it), is
    marked, so that if ACS had accepted it after all it is counted sent once
    (:func:`count_found_sent`). The first ``reason`` given is kept."""
    if chunk_done(campaign, index):
        return None
    new = dict(campaign)
    _set_bit(new, DONE, index, True)
    new["chunksCounted"] = int(new.get("chunksCounted", 0)) + 1
    _add(new, counters)
    if counters.get("failedToSend"):
        _set_bit(new, FAILED, index, True)
    if skipped:
        _set_bit(new, SKIPPED, index, True)
    if reason and not new.get("reason"):
        new["reason"] = reason
    _settle_status(new, now)
    return new


def count_found_sent(
    campaign: Mapping[str, Any], index: int, size: int, accepted: int, now: dt.datetime
) -> tuple[dict[str, Any] | None, bool]:
    """Chunk ``index`` of ``size`` recipients found sent by ACS (``accepted`` of them accepted):
    the new state (``None`` for no change) and whether a chunk counted before as failed or skipped moved.

    Skipped as cancelled: what ACS accepted is counted, the job stays ``Cancelled``. Counted
    ``failedToSend``: it moves to ``sent``/``accepted``/``rejected`` and the status is decided
    again. Not counted yet: counted as sent. Counted as sent: left alone."""
    counters = {"sent": size, "accepted": accepted, "rejected": size - accepted}
    if not 0 <= index < int(campaign["chunks"]):
        return None, False
    if has_bit(campaign, SKIPPED, index):
        new = dict(campaign)
        _set_bit(new, SKIPPED, index, False)
        _add(new, counters)
        return new, True
    if not chunk_failed(campaign, index):
        return count_chunk(campaign, index, now, counters), False
    new = dict(campaign)
    _set_bit(new, FAILED, index, False)
    new["failedToSend"] = max(0, int(new.get("failedToSend", 0)) - size)
    _add(new, counters)
    new["recovered"] = int(new.get("recovered", 0)) + size
    if new["status"] != CampaignStatus.CANCELLED:
        new["reason"] = _recovered_reason(new)
    _settle_status(new, now)
    return new, True


def _recovered_reason(campaign: dict[str, Any]) -> str:
    """What the job says once chunks counted ``failedToSend`` were found sent (the first failure's
    reason is kept in ``firstReason``)."""
    first = campaign.setdefault("firstReason", campaign.get("reason"))
    said = (
        f"{campaign['recovered']} recipients first counted failedToSend were found sent by ACS later"
        " and are counted accepted or rejected"
    )
    if campaign["failedToSend"]:
        said += f"; {campaign['failedToSend']} still failed to send (first failure: {first})"
    return said + "."


def cancel(campaign: Mapping[str, Any]) -> dict[str, Any] | None:
    """The job cancelled (chunks not yet sent are skipped), or ``None`` when it already finished."""
    if campaign["status"] in FINISHED:
        return None
    return {**campaign, "status": CampaignStatus.CANCELLED.value, "reason": CANCELLED_REASON}


def mark_enqueued(campaign: Mapping[str, Any]) -> dict[str, Any] | None:
    """Every chunk is on the queue, or ``None`` when that was recorded already."""
    if campaign.get("enqueued"):
        return None
    return {**campaign, "enqueued": True}
