"""Opt-outs (issue 27): record an inbound STOP/START reply, and split a send chunk by the list.

:func:`record_inbound` applies the keyword change a reply makes through the store's ETag-guarded
:meth:`~.optout_ports.OptOutStore.apply_change` (which keeps the later ``receivedTimestamp``, so
arrival order and redelivery do not matter); other text changes nothing. Neither the body nor a
full number is ever logged.

:func:`split_opted_out` reads the list once per chunk (:data:`MAX_CHUNK_RECIPIENTS`) and answers
each opted-out recipient with its own 403 item, in the key order of ACS's send items.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..domain.inbound import InboundReply
from ..domain.optout import OptOut
from ..logs import log_event, mask_phone
from .optout_ports import OptOutStore

_log = logging.getLogger(__name__)

MAX_CHUNK_RECIPIENTS = 100  # the store's opted_out_among takes at most a send chunk
OPTED_OUT_MESSAGE = "Recipient has opted out of messages from this sender."


async def record_inbound(optouts: OptOutStore, reply: InboundReply) -> OptOut | None:
    """Apply the reply's keyword change and return the pair's stored state; None for other text."""
    change = reply.change()
    if change is None:
        log_event(_log, logging.INFO, "inbound_not_a_keyword", event_id=reply.event_id)
        return None
    state = await optouts.apply_change(change)
    log_event(
        _log,
        logging.INFO,
        "optout_recorded",
        event_id=reply.event_id,
        sender=mask_phone(reply.sender),
        recipient=mask_phone(reply.recipient),
        keyword=change.keyword,
        opted_out=state.opted_out,
    )
    return state


def opted_out_item(to: str) -> dict[str, Any]:
    """The per-recipient send item of an opted-out recipient (ACS's item keys, in their order)."""
    return {"to": to, "httpStatusCode": 403, "successful": False, "errorMessage": OPTED_OUT_MESSAGE}


async def split_opted_out(
    optouts: OptOutStore, sender: str, recipients: Sequence[str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """``recipients`` in their order, split into those allowed and the 403 items of those opted out.

    One :meth:`~.optout_ports.OptOutStore.opted_out_among` read per chunk of 100.
    """
    allowed: list[str] = []
    rejected: list[dict[str, Any]] = []
    for start in range(0, len(recipients), MAX_CHUNK_RECIPIENTS):
        chunk = recipients[start : start + MAX_CHUNK_RECIPIENTS]
        opted_out = await optouts.opted_out_among(sender, chunk)
        for to in chunk:
            if to in opted_out:
                rejected.append(opted_out_item(to))
            else:
                allowed.append(to)
    return allowed, rejected
