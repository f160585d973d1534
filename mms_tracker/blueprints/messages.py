"""The message routes: ``GET /api/messages/{messageId}``."""

from __future__ import annotations

import azure.functions as func

from ..problems import Problem, json_response
from ..representation import record_json
from ..runtime import RUNTIME
from ..services import MessageNotFound, get_message
from .errors import answers_problems

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


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
