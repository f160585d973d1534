"""``GET /api/poison``: the events that could never be processed, for inspection."""

from __future__ import annotations

import datetime as dt

import azure.functions as func

from ...runtime import RUNTIME
from ...service import queries
from ..http import Request, Response, params_of
from ..models import PoisonItem, PoisonPage, PoisonQuery, dump
from ..problems import json_response
from ..validation import parse_query
from .registration import declared

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated

DEFAULT_DAYS = 7  # without ``since``: the last week


@declared(blueprint)
async def list_poison(req: Request) -> Response:
    """Poison entries recorded on ``since`` (a UTC day) or later, with reason, type and the payload's start."""
    query = parse_query(PoisonQuery, params_of(req))
    if query.since is not None:
        since = dt.date.fromisoformat(query.since)
    else:
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=DEFAULT_DAYS)).date()
    entries, token = await queries.poison_entries(RUNTIME.store(), since, query.pageSize, query.continuationToken)
    items = [
        PoisonItem(
            eventId=e.event_id, eventType=e.event_type, reason=e.reason, recordedAt=e.recorded_at, payload=e.payload
        )
        for e in entries
    ]
    return json_response(dump(PoisonPage(items=items, continuationToken=token)))
