"""``GET /api/openapi.json`` (anonymous): the OpenAPI 3.1 document of every route."""

from __future__ import annotations

import azure.functions as func

from ..http import Request, Response
from ..openapi import openapi_document
from ..problems import json_response
from .registration import declared

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@declared(blueprint)
async def openapi(req: Request) -> Response:
    """The OpenAPI document, built from the definitions the code validates with."""
    return json_response(openapi_document())
