"""``GET /api/tags/{tag}/summary``: how a campaign is doing."""

from __future__ import annotations

import azure.functions as func

from ...runtime import RUNTIME
from ...service import queries
from ..models import ByStatus, TagSummary, dump
from ..problems import json_response
from .errors import answers_problems

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.route(route="tags/{tag}/summary", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def tag_summary(req: func.HttpRequest) -> func.HttpResponse:
    """Messages per status for one tag, every status present (zeros included)."""
    tag = req.route_params["tag"]
    counts = await queries.tag_summary(RUNTIME.store(), tag)
    by_status = ByStatus.model_validate({status.value: n for status, n in counts.items()})
    return json_response(dump(TagSummary(tag=tag, total=sum(counts.values()), byStatus=by_status)))
