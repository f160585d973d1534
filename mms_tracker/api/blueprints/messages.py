"""The message routes: send, look up one, list a tag's messages."""

from __future__ import annotations

import datetime as dt

import azure.functions as func

from ...domain import Status
from ...runtime import RUNTIME
from ...service.sending import send_mms
from ...service.tracking import MessageNotFound, get_message
from ..problems import Problem, json_response
from ..queries import LIST_MESSAGES, parse_query
from ..representation import record_json
from ..send_request import SendLimits, parse_send_request
from .errors import answers_problems

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.route(route="messages", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def send_message(req: func.HttpRequest) -> func.HttpResponse:
    """Send an MMS through ACS (the ACS ``MmsSendMessageRequest``), tracking every recipient."""
    settings = RUNTIME.settings
    request = parse_send_request(
        req.get_body(), settings.senders, SendLimits(settings.max_request_bytes, settings.max_attachment_bytes)
    )
    items = await send_mms(
        request,
        RUNTIME.acs(),
        RUNTIME.store(),
        RUNTIME.store(),
        dt.datetime.now(dt.UTC),
        dt.timedelta(hours=settings.expiry_window_hours),
    )
    return json_response({"value": items}, status=202)


@blueprint.route(route="messages/{messageId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def get_message_status(req: func.HttpRequest) -> func.HttpResponse:
    """The tracking record of one message, with every distinct delivery report."""
    message_id = req.route_params["messageId"]
    try:
        record = await get_message(RUNTIME.store(), message_id)
    except MessageNotFound:
        raise Problem(404, "No message is tracked under this messageId.", "Message not found") from None
    return json_response(record_json(record))


@blueprint.route(route="messages", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def list_messages(req: func.HttpRequest) -> func.HttpResponse:
    """One page of a tag's messages (records without events), optionally filtered by status."""
    query = parse_query(req.params, LIST_MESSAGES)
    status = Status(query["status"]) if query["status"] else None
    page = await RUNTIME.store().list_tag(query["tag"], status, query["pageSize"], query["continuationToken"])
    return json_response(
        {
            "items": [record_json(r, with_events=False) for r in page.items],
            "continuationToken": page.continuation_token,
        }
    )
