"""Query parameters declared once: the same declarations validate requests and describe them in OpenAPI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain import MAX_TAG_CHARS, FieldError, Status

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000


class QueryInvalid(ValueError):
    """Query parameters that fail their declarations; ``errors`` names every failing one."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class QueryParameter:
    name: str
    schema: Mapping[str, Any]
    required: bool
    description: str

    def openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": self.description,
            "schema": dict(self.schema),
        }


LIST_MESSAGES = (
    QueryParameter(
        "tag",
        {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
        True,
        "The tag the messages were sent with (sendOptions.tag).",
    ),
    QueryParameter(
        "status", {"type": "string", "enum": [s.value for s in Status]}, False, "Only messages in this status."
    ),
    QueryParameter(
        "pageSize",
        {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX, "default": PAGE_SIZE_DEFAULT},
        False,
        "Items per page.",
    ),
    QueryParameter(
        "continuationToken",
        {"type": "string", "minLength": 1},
        False,
        "The continuationToken of the previous page, unchanged.",
    ),
)


def parse_query(params: Mapping[str, str], declared: Sequence[QueryParameter]) -> dict[str, Any]:
    """Validate ``params`` against ``declared``; raise :class:`QueryInvalid` naming every bad one."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for parameter in declared:
        raw = params.get(parameter.name)
        schema = parameter.schema
        if raw is None or raw == "":
            if parameter.required:
                errors.append(FieldError(parameter.name, "is required"))
            values[parameter.name] = schema.get("default")
            continue
        value: Any = raw
        if schema.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                errors.append(FieldError(parameter.name, "must be an integer"))
                continue
            if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
                errors.append(
                    FieldError(parameter.name, f"must be between {schema['minimum']} and {schema['maximum']}")
                )
                continue
        elif "maxLength" in schema and len(raw) > schema["maxLength"]:
            errors.append(FieldError(parameter.name, f"must be at most {schema['maxLength']} characters"))
            continue
        if "enum" in schema and value not in schema["enum"]:
            errors.append(FieldError(parameter.name, f"must be one of {', '.join(schema['enum'])}"))
            continue
        values[parameter.name] = value
    if errors:
        raise QueryInvalid(errors)
    return values
