"""The OpenAPI 3.1 document: the route table here, every schema from the models (``models.py``).

Nothing a model already says is written here: the request, query and response schemas are
``model_json_schema()`` output, so the document states exactly the limits, patterns and enums
the code validates with (``tests/unit/test_models_agree.py`` proves it, instance by instance).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .export import COLUMNS as CSV_COLUMNS
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
from .routes import PROBLEM_TITLES, ROUTES

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


_CAMPAIGN_ID = {"name": "campaignId", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref(Problem)}}}


def _json_response(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI parameters (its schema, its descriptions, its required list)."""
    schema = schemas()[model.__name__]
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        parameter_schema = {k: v for k, v in field_schema.items() if k not in ("description", "title")}
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": field_schema.get("description", ""),
                "schema": parameter_schema,
            }
        )
    return parameters


def _path_parameter(name: str, model: type[BaseModel], field: str, description: str = "") -> dict[str, Any]:
    """A path parameter typed as the model field it carries (``tag`` as ``ListMessagesQuery.tag``)."""
    field_schema = schemas()[model.__name__]["properties"][field]
    schema = {k: v for k, v in field_schema.items() if k not in ("description", "title")}
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


# Why a tag has a query form: README, "Tags in URLs".
_TAG_IN_PATH = (
    "The tag as one percent-encoded path segment. A tag holding `/`, `\\`, `%` or a newline, or that is `.` "
    "or `..`, cannot travel in a path through every client and host (dot segments are removed by "
    "clients, `%2F` may be a 404 in Azure): use the query form "
    "(`/tags/summary?tag=`, `/tags/messages.csv?tag=`), which carries any tag a send accepts."
)
_TAG_PATH_PARAMETER = _path_parameter("tag", ListMessagesQuery, "tag", _TAG_IN_PATH)
_CSV_RESPONSE = {
    "description": "Header row: " + ",".join(CSV_COLUMNS) + ".",
    "content": {"text/csv": {"schema": {"type": "string"}}},
}
_SUMMARY_RESPONSE = "Counts per status (zeros included), delivery latency, top failure reasons."


_KEYED: list[dict[str, list[str]]] = [{"functionKeyHeader": []}, {"functionKeyQuery": []}]
_ERRORS = {
    "401": _problem_response("No or wrong function key."),
    "503": _problem_response("Table storage is unavailable."),
}


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document: the operations below, with every problem status its route
    declaration (``routes.py``) says it can answer."""
    document = _document()
    for route in ROUTES:
        for method in route.documented_methods:
            responses = document["paths"]["/" + route.path][method.lower()]["responses"]
            for status in sorted(route.problems):
                responses.setdefault(str(status), _problem_response(PROBLEM_TITLES[status]))
    return document


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mms-tracker",
            "version": __version__,
            "description": "Send MMS through Azure Communication Services and track every message.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/messages": {
                "post": {
                    "operationId": "sendMessage",
                    "summary": "Send an MMS (ACS MmsSendMessageRequest) and track it.",
                    "security": _KEYED,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(MmsSendMessageRequest)}},
                    },
                    "responses": {
                        "202": _json_response("One item per recipient, in request order.", MmsSendResult),
                        "400": _problem_response("The request is invalid; errors[] names each field."),
                        "409": _problem_response(
                            "A repeatabilityRequestId was already used for a different request; nothing was sent."
                        ),
                        "413": _problem_response("The body is larger than MMS_MAX_REQUEST_BYTES."),
                        "429": _problem_response("ACS is throttling; see Retry-After."),
                        "502": _problem_response("ACS failed or refused the credentials."),
                        "504": _problem_response("ACS timed out."),
                        **_ERRORS,
                    },
                },
                "get": {
                    "operationId": "listMessages",
                    "summary": "One page of a tag's messages.",
                    "security": _KEYED,
                    "parameters": _query_parameters(ListMessagesQuery),
                    "responses": {
                        "200": _json_response("A page of messages.", MessagePage),
                        "400": _problem_response("A parameter is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/messages/{messageId}": {
                "get": {
                    "operationId": "getMessage",
                    "summary": "A message's tracking record with its delivery reports.",
                    "security": _KEYED,
                    "parameters": [
                        {
                            "name": "messageId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        }
                    ],
                    "responses": {
                        "200": _json_response("The record.", MessageRecord),
                        "404": _problem_response("No message is tracked under this id."),
                        **_ERRORS,
                    },
                },
            },
            "/campaigns": {
                "post": {
                    "operationId": "createCampaign",
                    "summary": "Create a campaign: up to 100,000 recipients, sent in chunks of 100 by a queue worker.",
                    "security": _KEYED,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "A repeated create with the same key returns the first campaign.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(CampaignCreateRequest)}},
                    },
                    "responses": {
                        "202": _json_response("Queued; Location names the campaign.", CampaignCreated),
                        "400": _problem_response("The request is invalid; errors[] names each field."),
                        "409": _problem_response(
                            "This Idempotency-Key already created a campaign from a different request."
                        ),
                        "413": _problem_response("The body is larger than CAMPAIGN_MAX_REQUEST_BYTES."),
                        **_ERRORS,
                    },
                },
                "get": {
                    "operationId": "listCampaigns",
                    "summary": "Campaigns, newest first, a page at a time.",
                    "security": _KEYED,
                    "parameters": _query_parameters(ListCampaignsQuery),
                    "responses": {
                        "200": _json_response("A page of campaigns.", CampaignPage),
                        "400": _problem_response("A parameter is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/campaigns/{campaignId}": {
                "get": {
                    "operationId": "getCampaign",
                    "summary": "A campaign's status, counters and its tag's delivery summary.",
                    "security": _KEYED,
                    "parameters": [_CAMPAIGN_ID],
                    "responses": {
                        "200": _json_response("The campaign.", Campaign),
                        "404": _problem_response("No campaign has this id."),
                        **_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "cancelCampaign",
                    "summary": "Cancel a campaign: chunks not yet sent are not sent.",
                    "security": _KEYED,
                    "parameters": [_CAMPAIGN_ID],
                    "responses": {
                        "202": _json_response("The campaign, cancelled (or as it finished).", Campaign),
                        "404": _problem_response("No campaign has this id."),
                        **_ERRORS,
                    },
                },
            },
            "/tags/{tag}/summary": {
                "get": {
                    "operationId": "getTagSummary",
                    "summary": "Messages per status for one tag (the tag in the path).",
                    "security": _KEYED,
                    "parameters": [_TAG_PATH_PARAMETER],
                    "responses": {
                        "200": _json_response(_SUMMARY_RESPONSE, TagSummary),
                        "400": _problem_response("The tag is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/tags/summary": {
                "get": {
                    "operationId": "getTagSummaryByQuery",
                    "summary": "Messages per status for one tag (the tag in the query: any tag a send accepts).",
                    "security": _KEYED,
                    "parameters": _query_parameters(TagQuery),
                    "responses": {
                        "200": _json_response(_SUMMARY_RESPONSE, TagSummary),
                        "400": _problem_response("The tag is missing or invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/tags": {
                "get": {
                    "operationId": "listTags",
                    "summary": "The tags, newest activity first, with their counts.",
                    "security": _KEYED,
                    "parameters": _query_parameters(ListTagsQuery),
                    "responses": {
                        "200": _json_response("A page of tags.", TagPage),
                        "400": _problem_response("A parameter is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/tags/{tag}/messages.csv": {
                "get": {
                    "operationId": "exportTagMessages",
                    "summary": "Every message of the tag (in the path) as CSV (RFC 4180, UTF-8), formulas escaped; "
                    "streamed.",
                    "security": _KEYED,
                    "parameters": [_TAG_PATH_PARAMETER, *_query_parameters(ExportQuery)],
                    "responses": {
                        "200": _CSV_RESPONSE,
                        "400": _problem_response("A parameter is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/tags/messages.csv": {
                "get": {
                    "operationId": "exportTagMessagesByQuery",
                    "summary": "Every message of the tag (in the query: any tag a send accepts) as CSV (RFC 4180, "
                    "UTF-8), formulas escaped; streamed.",
                    "security": _KEYED,
                    "parameters": _query_parameters(TagExportQuery),
                    "responses": {
                        "200": _CSV_RESPONSE,
                        "400": _problem_response("The tag is missing, or a parameter is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/poison": {
                "get": {
                    "operationId": "listPoison",
                    "summary": "Events that could never be processed, with the reason and the payload's start.",
                    "security": _KEYED,
                    "parameters": _query_parameters(PoisonQuery),
                    "responses": {
                        "200": _json_response("A page of poison entries.", PoisonPage),
                        "400": _problem_response("A parameter is invalid."),
                        **_ERRORS,
                    },
                },
            },
            "/dashboard": {
                "get": {
                    "operationId": "getDashboard",
                    "summary": "The dashboard: one self-contained HTML page (no external requests).",
                    "security": _KEYED,
                    "parameters": _query_parameters(DashboardQuery),
                    "responses": {
                        "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                        "400": _problem_response("A parameter is invalid."),
                        "401": _problem_response("No or wrong function key."),
                    },
                },
            },
            "/events/delivery-reports": {
                "post": {
                    "operationId": "receiveDeliveryReports",
                    "summary": "Batched ingest: an Event Grid WebHook endpoint (maxEventsPerBatch up to 5000).",
                    "security": _KEYED,
                    "parameters": [
                        {
                            "name": "aeg-event-type",
                            "in": "header",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": ["SubscriptionValidation", "Notification", "Unsubscribe"],
                            },
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Every event recorded (or kept as poison); or the validation answer.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"validationResponse": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "202": {"description": "Unsubscribe acknowledged."},
                        "400": _problem_response("Not JSON, or a missing or unknown aeg-event-type."),
                        "401": _problem_response("No or wrong function key."),
                        "503": _problem_response("Some events were not recorded; Event Grid redelivers the batch."),
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "getHealth",
                    "summary": "Is the app up and can it reach table storage?",
                    "security": [],
                    "responses": {
                        "200": _json_response("Healthy.", Health),
                        "503": _problem_response("Table storage is unreachable."),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                },
            },
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
