"""The OpenAPI 3.1 document, generated: every operation from its route declaration (``routes.py``),
every schema from the models (``models.py``).

No path, parameter or schema is written twice: the request, query and response schemas are
``model_json_schema()`` output, so the document states exactly the limits, patterns and enums
the code validates with (``tests/unit/test_models_agree.py`` proves it, instance by instance).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import azure.functions as func
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .models import (
    Campaign,
    CampaignCreated,
    CampaignCreateRequest,
    CampaignPage,
    DashboardQuery,
    ExportQuery,
    Health,
    ListCampaignsQuery,
    ListMessagesQuery,
    ListTagsQuery,
    MessagePage,
    MessageRecord,
    MmsSendMessageRequest,
    MmsSendResult,
    PoisonPage,
    PoisonQuery,
    Problem,
    TagExportQuery,
    TagPage,
    TagQuery,
    TagSummary,
)
from .routes import ROUTES, Content, Parameter, Route

_REQUESTS: tuple[type[BaseModel], ...] = (
    MmsSendMessageRequest,
    ListMessagesQuery,
    ListTagsQuery,
    PoisonQuery,
    ExportQuery,
    TagQuery,
    TagExportQuery,
    DashboardQuery,
    CampaignCreateRequest,
    ListCampaignsQuery,
)
_RESPONSES: tuple[type[BaseModel], ...] = (
    MmsSendResult,
    MessageRecord,
    MessagePage,
    TagSummary,
    TagPage,
    PoisonPage,
    Health,
    Problem,
    CampaignCreated,
    Campaign,
    CampaignPage,
)


@cache
def schemas() -> dict[str, Any]:
    """Every model's JSON Schema, as OpenAPI components (requests as validated, responses as serialised)."""
    _, document = models_json_schema(
        [(m, "validation") for m in _REQUESTS] + [(m, "serialization") for m in _RESPONSES],
        ref_template="#/components/schemas/{model}",
    )
    return dict(document["$defs"])


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _field_schema(model: type[BaseModel], field: str) -> dict[str, Any]:
    """A model field's schema as a parameter's: without the description and title the parameter carries."""
    field_schema = schemas()[model.__name__]["properties"][field]
    return {k: v for k, v in field_schema.items() if k not in ("description", "title")}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI parameters (its schema, its descriptions, its required list)."""
    schema = schemas()[model.__name__]
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": field_schema.get("description", ""),
            "schema": _field_schema(model, name),
        }
        for name, field_schema in schema["properties"].items()
    ]


def _parameter(parameter: Parameter) -> dict[str, Any]:
    """A path or header parameter, typed as the model field it carries (``tag`` as ``ListMessagesQuery.tag``)."""
    declared = parameter.schema
    schema = _field_schema(*declared) if isinstance(declared, tuple) else dict(declared)
    described = {} if parameter.description is None else {"description": parameter.description}
    return {
        "name": parameter.name,
        "in": parameter.where,
        "required": parameter.required,
        **described,
        "schema": schema,
    }


def _content(media_type: str, schema: Any) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _answer(description: str, content: Content) -> dict[str, Any]:
    if content is None:
        return {"description": description}
    if isinstance(content, tuple):
        return {"description": description, "content": _content(content[0], dict(content[1]))}
    return {"description": description, "content": _content("application/json", _ref(content))}


def _responses(route: Route) -> dict[str, Any]:
    """The route's answers, then its problems (401 and 503 last, in that order)."""
    responses = {str(status): _answer(description, content) for status, description, content in route.answers}
    last = [status for status in (401, 503) if status in route.problems]
    for status in sorted(route.problems - set(last)) + last:
        responses[str(status)] = _answer(route.problem_title(status), ("application/problem+json", _ref(Problem)))
    return responses


_KEYED: list[dict[str, list[str]]] = [{"functionKeyHeader": []}, {"functionKeyQuery": []}]


def _operation(route: Route) -> dict[str, Any]:
    """One route's operation: operationId, summary, security, parameters, requestBody, responses."""
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": route.summary,
        "security": _KEYED if route.auth == func.AuthLevel.FUNCTION else [],
    }
    parameters = [_parameter(p) for p in route.parameters]
    parameters += _query_parameters(route.query) if route.query is not None else []
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        schema = _ref(route.body) if isinstance(route.body, type) else dict(route.body)
        operation["requestBody"] = {"required": True, "content": _content("application/json", schema)}
    operation["responses"] = _responses(route)
    return operation


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        for method in route.documented_methods:
            paths.setdefault("/" + route.path, {})[method.lower()] = _operation(route)
    return paths


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document: one operation per declared route (``routes.py``), with every
    problem status its declaration says it can answer."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mms-tracker",
            "version": __version__,
            "description": "Send MMS through Azure Communication Services and track every message.",
        },
        "servers": [{"url": "/api"}],
        "paths": _paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
