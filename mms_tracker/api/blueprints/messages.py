"""The message routes: send, look up one, list a tag's messages."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import azure.functions as func

from ... import telemetry
from ...runtime import RUNTIME
from ...service import queries
from ...service.sending import send_mms
from ..http import Request, Response, body_within, params_of, route_param
from ..models import MessagePage, MessageRecord, MessageSummary, dump
from ..problems import json_response
from ..validation import SendLimits, parse_list_query, parse_send_request
from .registration import declared

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@declared(blueprint)
async def send_message(req: Request) -> Response:
    """Send an MMS through ACS (the ACS ``MmsSendMessageRequest``), tracking every recipient."""
    settings = RUNTIME.settings
    request = parse_send_request(
        await body_within(req, settings.max_request_bytes),
        settings.senders,
        SendLimits(settings.max_request_bytes, settings.max_attachment_bytes),
    )
    with telemetry.span("mms.send", {"mms.tag": request.tag, "mms.recipients": len(request.recipients)}) as span:
        try:
            deps = RUNTIME.send_deps()
            # each record keeps this span's traceparent
            deps = replace(deps, store=telemetry.stamping_traceparent(deps.store))
            items = await send_mms(request, deps, dt.datetime.now(dt.UTC))
        except Exception as exc:
            telemetry.send_failed(len(request.recipients), exc)
            raise
        accepted = sum(1 for item in items if item.get("successful"))
        span.set("mms.accepted", accepted)
        span.set("mms.rejected", len(items) - accepted)
        telemetry.sent(items)
    return json_response({"value": items}, status=202)


@declared(blueprint)
async def get_message_status(req: Request) -> Response:
    """The tracking record of one message, with every distinct delivery report."""
    record = await queries.get_message(RUNTIME.store(), route_param(req, "messageId"))
    return json_response(dump(MessageRecord.of(record)))


@declared(blueprint)
async def list_messages(req: Request) -> Response:
    """One page of a tag's messages (records without events), optionally filtered by status."""
    query = parse_list_query(params_of(req))
    page = await queries.list_messages(
        RUNTIME.store(), query.tag, query.status, query.pageSize, query.continuationToken
    )
    body = MessagePage(items=[MessageSummary.of(r) for r in page.items], continuationToken=page.continuation_token)
    return json_response(dump(body))
