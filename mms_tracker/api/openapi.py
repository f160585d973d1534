"""The OpenAPI 3.1 document, built from the definitions the code validates with.

Limits, content types, statuses and query parameters come from ``send_request``, ``domain``
and ``queries``, so the document and the validation cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..domain import MAX_TAG_CHARS, Status
from .queries import LIST_MESSAGES
from .send_request import (
    MAX_ATTACHMENTS,
    MAX_MESSAGE_CHARS,
    MAX_RECIPIENTS,
    MMS_CONTENT_TYPES,
    REPEATABILITY_REQUEST_ID,
)

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "MmsRecipient": {
        "type": "object",
        "required": ["to"],
        "properties": {
            "to": {"type": "string", "minLength": 1, "description": "E.164; others are answered per item with 400."},
            "repeatabilityRequestId": {
                "type": "string",
                "pattern": f"^{REPEATABILITY_REQUEST_ID.pattern}$",
                "description": "A UUID.",
            },
            "repeatabilityFirstSent": {
                "type": "string",
                "minLength": 1,
                "description": "An RFC 1123 date, e.g. Tue, 26 Mar 2019 16:06:51 GMT.",
            },
        },
        "dependentRequired": {
            "repeatabilityRequestId": ["repeatabilityFirstSent"],
            "repeatabilityFirstSent": ["repeatabilityRequestId"],
        },
    },
    "MmsAttachment": {
        "type": "object",
        "required": ["contentType", "contentInBase64"],
        "properties": {
            "contentType": {
                "type": "string",
                "description": "One of the MmsContentType enum, in any case: " + ", ".join(MMS_CONTENT_TYPES),
            },
            "contentInBase64": {"type": "string", "minLength": 1, "contentEncoding": "base64"},
        },
    },
    "MmsSendMessageRequest": {
        "type": "object",
        "required": ["recipients", "attachments"],
        "properties": {
            "from": {
                "type": "string",
                "pattern": E164_PATTERN,
                "description": "One of MMS_SENDERS; default: the first.",
            },
            "recipients": {"type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS, "items": _ref("MmsRecipient")},
            "message": {"type": "string", "maxLength": MAX_MESSAGE_CHARS},
            "attachments": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ATTACHMENTS,
                "items": _ref("MmsAttachment"),
            },
            "sendOptions": {
                "type": "object",
                "properties": {
                    "enableDeliveryReport": {
                        "type": "boolean",
                        "description": "Ignored: reports are always requested.",
                    },
                    "tag": {"type": "string", "maxLength": MAX_TAG_CHARS},
                },
            },
        },
    },
    "MmsSendResultItem": {
        "type": "object",
        "required": ["to", "httpStatusCode", "successful"],
        "properties": {
            "to": {"type": "string"},
            "messageId": {"type": "string"},
            "httpStatusCode": {"type": "integer"},
            "successful": {"type": "boolean"},
            "errorMessage": {"type": "string"},
            "repeatabilityResult": {"type": "string", "enum": ["accepted", "rejected"]},
        },
    },
    "MmsSendResult": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "array", "items": _ref("MmsSendResultItem")}},
    },
    "DeliveryAttempt": {
        "type": "object",
        "required": ["timestamp", "segmentsSucceeded", "segmentsFailed"],
        "properties": {
            "timestamp": _NULLABLE_TIME,
            "segmentsSucceeded": {"type": "integer"},
            "segmentsFailed": {"type": "integer"},
        },
    },
    "DeliveryEvent": {
        "type": "object",
        "required": ["eventId", "eventType", "deliveryStatus", "receivedTimestamp", "recordedAt"],
        "properties": {
            "eventId": {"type": "string"},
            "eventType": {"type": "string"},
            "deliveryStatus": {"type": "string"},
            "deliveryStatusDetails": {"type": ["string", "null"]},
            "receivedTimestamp": _NULLABLE_TIME,
            "recordedAt": _TIME,
            "tag": {
                "type": ["string", "null"],
                "description": "The report's own tag; a message stays in the first tag recorded for it.",
            },
        },
    },
    "MessageSummary": {
        "type": "object",
        "required": [
            "messageId",
            "to",
            "from",
            "tag",
            "status",
            "statusDetails",
            "createdAt",
            "updatedAt",
            "completedAt",
            "deliveryAttempts",
        ],
        "properties": {
            "messageId": {"type": "string"},
            "to": {"type": ["string", "null"]},
            "from": {"type": ["string", "null"]},
            "tag": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "statusDetails": {"type": ["string", "null"]},
            "createdAt": _TIME,
            "updatedAt": _TIME,
            "completedAt": _NULLABLE_TIME,
            "deliveryAttempts": {"type": "array", "items": _ref("DeliveryAttempt")},
        },
    },
    "MessageRecord": {
        "allOf": [
            _ref("MessageSummary"),
            {
                "type": "object",
                "required": ["events"],
                "properties": {"events": {"type": "array", "items": _ref("DeliveryEvent")}},
            },
        ],
    },
    "MessagePage": {
        "type": "object",
        "required": ["items", "continuationToken"],
        "properties": {
            "items": {"type": "array", "items": _ref("MessageSummary")},
            "continuationToken": {"type": ["string", "null"]},
        },
    },
    "TagSummary": {
        "type": "object",
        "required": ["tag", "total", "byStatus"],
        "properties": {
            "tag": {"type": "string"},
            "total": {"type": "integer", "minimum": 0},
            "byStatus": {
                "type": "object",
                "required": [s.value for s in Status],
                "additionalProperties": False,
                "properties": {s.value: {"type": "integer", "minimum": 0} for s in Status},
            },
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}

_KEYED: list[dict[str, list[str]]] = [{"functionKeyHeader": []}, {"functionKeyQuery": []}]
_ERRORS = {
    "401": _problem_response("No or wrong function key."),
    "503": _problem_response("Table storage is unavailable."),
}


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
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
                        "content": {"application/json": {"schema": _ref("MmsSendMessageRequest")}},
                    },
                    "responses": {
                        "202": _json_response("One item per recipient, in request order.", "MmsSendResult"),
                        "400": _problem_response("The request is invalid; errors[] names each field."),
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
                    "parameters": [p.openapi() for p in LIST_MESSAGES],
                    "responses": {
                        "200": _json_response("A page of messages.", "MessagePage"),
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
                        "200": _json_response("The record.", "MessageRecord"),
                        "404": _problem_response("No message is tracked under this id."),
                        **_ERRORS,
                    },
                },
            },
            "/tags/{tag}/summary": {
                "get": {
                    "operationId": "getTagSummary",
                    "summary": "Messages per status for one tag.",
                    "security": _KEYED,
                    "parameters": [
                        {
                            "name": "tag",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
                        }
                    ],
                    "responses": {"200": _json_response("Counts per status, zeros included.", "TagSummary"), **_ERRORS},
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
                        "200": _json_response("Healthy.", "Health"),
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
            "schemas": SCHEMAS,
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
