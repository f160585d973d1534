"""``GET /api/tags/{tag}/summary``: how a campaign is doing."""

from __future__ import annotations

import azure.functions as func

from ...domain import Status
from ...runtime import RUNTIME
from ..problems import json_response
from .errors import answers_problems

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.route(route="tags/{tag}/summary", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def tag_summary(req: func.HttpRequest) -> func.HttpResponse:
    """Messages per status for one tag, every status present (zeros included)."""
    tag = req.route_params["tag"]
    counts = await RUNTIME.store().tag_counts(tag)
    by_status = {status.value: counts.get(status.value, 0) for status in Status}
    return json_response({"tag": tag, "total": sum(by_status.values()), "byStatus": by_status})
