"""``GET /api/openapi.json`` (anonymous): the OpenAPI 3.1 document of every route."""

from __future__ import annotations

import azure.functions as func

from ..openapi import openapi_document
from ..problems import json_response

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI document, built from the definitions the code validates with."""
    return json_response(openapi_document())
