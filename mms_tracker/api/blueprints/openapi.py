"""``GET /api/openapi.json`` (anonymous): the OpenAPI 3.1 document of every route."""

from __future__ import annotations

import azure.functions as func

from ...runtime import RUNTIME
from ..http import Request, Response
from ..openapi import openapi_document
from ..problems import json_response
from .errors import answers_problems

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
async def openapi(req: Request) -> Response:
    """The OpenAPI document, built from the definitions the code validates with."""
    RUNTIME.settings  # noqa: B018  # a misconfigured app answers 503 on every route (README, Settings)
    return json_response(openapi_document())
