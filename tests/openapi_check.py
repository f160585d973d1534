"""Validate actual responses against the OpenAPI document's schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mms_tracker.api.openapi import openapi_document

DOCUMENT = openapi_document()
_REGISTRY = Registry().with_resource(
    "urn:mms-tracker", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def response_schema(path: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
    responses = DOCUMENT["paths"][path][method]["responses"]
    declared = responses.get(str(status))
    assert declared is not None, f"{method.upper()} {path} answered {status}, which the document does not declare"
    [(media_type, content)] = declared["content"].items()
    return media_type, content["schema"]


def assert_conforms(path: str, method: str, status: int, content_type: str, body: Any) -> None:
    """The response's status, media type and body are what the document says."""
    media_type, schema = response_schema(path, method, status)
    assert content_type.split(";")[0].strip() == media_type
    validator = jsonschema.Draft202012Validator(
        {"$ref": "urn:mms-tracker#/components/schemas/" + schema["$ref"].rsplit("/", 1)[-1]}
        if "$ref" in schema
        else schema,
        registry=_REGISTRY,
    )
    validator.validate(body)
