"""Requests and queries in: the models' shape first, then what a schema cannot say; errors named by path.

Whole-request problems raise :class:`RequestInvalid` (every failing field, as ``recipients[0].to``)
or :class:`RequestTooLarge`; a bad query string raises :class:`QueryInvalid`. A recipient whose
number is not E.164 is *not* a whole-request problem: it is answered in its own item, as ACS does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..domain import FieldError, Status
from ..domain.timestamps import parse_rfc1123
from ..service.campaigns import CampaignRequest
from ..service.sending import MmsRequest, Recipient
from .models import (
    MMS_CONTENT_TYPES,
    CampaignCreateRequest,
    ListCampaignsQuery,
    ListMessagesQuery,
    MmsAttachment,
    MmsSendMessageRequest,
)

M = TypeVar("M", bound=BaseModel)


class RequestInvalid(ValueError):
    """A send request that fails validation; ``errors`` names every failing field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class QueryInvalid(RequestInvalid):
    """Query parameters that fail their declarations; ``errors`` names every failing one."""


class RequestTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds {limit} bytes.")
        self.limit = limit


@dataclass(frozen=True)
class SendLimits:
    max_request_bytes: int = 2 * 1024 * 1024
    max_attachment_bytes: int = 1024 * 1024


def parse_send_request(body: bytes, senders: tuple[str, ...], limits: SendLimits) -> MmsRequest:
    """Validate a ``POST /api/messages`` body; raise :class:`RequestTooLarge` or :class:`RequestInvalid`."""
    if len(body) > limits.max_request_bytes:
        raise RequestTooLarge(limits.max_request_bytes)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise RequestInvalid([FieldError("body", "must be a JSON object")]) from None
    if not isinstance(data, dict):
        raise RequestInvalid([FieldError("body", "must be a JSON object")])
    request = _validated(MmsSendMessageRequest, data, RequestInvalid)
    errors = _beyond_the_schema(request, senders, limits)
    if errors:
        raise RequestInvalid(errors)
    options = request.sendOptions
    return MmsRequest(
        from_=request.from_ or senders[0],
        recipients=tuple(
            Recipient(r.to, r.repeatabilityRequestId, r.repeatabilityFirstSent) for r in request.recipients
        ),
        message=request.message,
        attachments=tuple(
            {"contentType": a.contentType, "contentInBase64": a.contentInBase64} for a in request.attachments
        ),
        tag=(options.tag or None) if options else None,
    )


def parse_campaign_request(body: bytes, senders: tuple[str, ...], limits: SendLimits) -> CampaignRequest:
    """Validate a ``POST /api/campaigns`` body with the rules of ``POST /api/messages``; numbers that are
    not E.164 are not refused (they are counted as Rejected, as ACS answers them per recipient)."""
    if len(body) > limits.max_request_bytes:
        raise RequestTooLarge(limits.max_request_bytes)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RequestInvalid([FieldError("body", "must be a JSON object")]) from None
    if not isinstance(data, dict):
        raise RequestInvalid([FieldError("body", "must be a JSON object")])
    request = _validated(CampaignCreateRequest, data, RequestInvalid)
    errors: list[FieldError] = []
    if request.from_ is not None and request.from_ not in senders:
        errors.append(FieldError("from", "must be one of the numbers in MMS_SENDERS"))
    errors += _attachment_budget(request.attachments, limits)
    if errors:
        raise RequestInvalid(errors)
    options = request.sendOptions
    return CampaignRequest(
        from_=request.from_ or senders[0],
        recipients=tuple(r.to for r in request.recipients),
        message=request.message,
        attachments=tuple(
            {"contentType": a.contentType, "contentInBase64": a.contentInBase64} for a in request.attachments
        ),
        tag=(options.tag or None) if options else None,
    )


MAX_IDEMPOTENCY_KEY_CHARS = 200


def idempotency_key(value: str | None) -> str | None:
    """``POST /api/campaigns``'s ``Idempotency-Key`` header: absent, or 1 to 200 characters; anything
    else raises :class:`RequestInvalid` naming the header, as a body field is named."""
    if value is not None and not 0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise RequestInvalid([FieldError("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters")])
    return value


def parse_campaign_list_query(params: Mapping[str, str]) -> ListCampaignsQuery:
    """Validate ``GET /api/campaigns``'s query string; raise :class:`QueryInvalid` naming every bad parameter."""
    present = {k: v for k, v in params.items() if k in ListCampaignsQuery.model_fields and v != ""}
    return _validated(ListCampaignsQuery, present, QueryInvalid)


def parse_list_query(params: Mapping[str, str]) -> ListMessagesQuery:
    """Validate ``GET /api/messages``'s query string; raise :class:`QueryInvalid` naming every bad parameter."""
    present = {k: v for k, v in params.items() if k in ListMessagesQuery.model_fields and v != ""}
    return _validated(ListMessagesQuery, present, QueryInvalid)


def parse_query(model: type[M], params: Mapping[str, str]) -> M:
    """Validate a query string against ``model``; raise :class:`QueryInvalid` naming every bad parameter."""
    present = {k: v for k, v in params.items() if k in model.model_fields and v != ""}
    return _validated(model, present, QueryInvalid)


def _validated(model: type[M], data: Any, error: type[RequestInvalid]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(field_errors(exc, model)) from None


def field_errors(exc: ValidationError, model: type[BaseModel] = ListMessagesQuery) -> list[FieldError]:
    """pydantic's errors as ``FieldError``s: ``loc`` ``("recipients", 0, "to")`` becomes ``recipients[0].to``."""
    errors: dict[str, FieldError] = {}
    for error in exc.errors(include_url=False, include_input=False):
        path = _path(error["loc"])
        errors.setdefault(path, FieldError(path, _message(error, model)))
    return list(errors.values())


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for step in loc:
        if isinstance(step, int):
            path += f"[{step}]"
        elif not step.startswith("function-after["):  # a validator's name, not a field
            path += f".{step}" if path else step
    return path or "body"


# What a value must look like, by field name, for the pattern each field's model declares.
_PATTERN_MESSAGES = {
    "from": "must be an E.164 number, one of MMS_SENDERS",
    "repeatabilityRequestId": "must be a UUID",
    "repeatabilityFirstSent": "must be an RFC 1123 date such as 'Tue, 26 Mar 2019 16:06:51 GMT'",
    "contentType": "must be one of the MMS content types: " + ", ".join(MMS_CONTENT_TYPES),
    "contentInBase64": "is not valid base64",
    "since": "must be a date (YYYY-MM-DD)",
}
_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "enum": "must be one of " + ", ".join(s.value for s in Status),
    "missing": "is required",
    "string_unicode": "must be valid unicode text (no lone surrogates)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
}


def _message(error: Any, model: type[BaseModel] = ListMessagesQuery) -> str:
    kind, context, loc = error["type"], error.get("ctx") or {}, error["loc"]
    field = next((str(step) for step in reversed(loc) if isinstance(step, str)), "")
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(field, "is not in the expected format")
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {context['max_length']} characters"
    if kind in ("too_short", "too_long"):
        n = context["min_length"] if kind == "too_short" else context["max_length"]
        noun = field.removesuffix("s") + ("" if n == 1 else "s")  # recipients, attachments
        return f"must list at {'least' if kind == 'too_short' else 'most'} {n} {noun}"
    if kind in ("greater_than_equal", "less_than_equal"):
        return "must be between {} and {}".format(*_bounds(field, model))
    return str(error["msg"])


def _bounds(field: str, model: type[BaseModel]) -> tuple[Any, Any]:
    schema = model.model_json_schema()["properties"].get(field, {})
    return schema.get("minimum"), schema.get("maximum")


def _beyond_the_schema(
    request: MmsSendMessageRequest, senders: tuple[str, ...], limits: SendLimits
) -> list[FieldError]:
    """The rules a JSON Schema cannot say, each named by field (the document's descriptions state them)."""
    errors: list[FieldError] = []
    if request.from_ is not None and request.from_ not in senders:
        errors.append(FieldError("from", "must be one of the numbers in MMS_SENDERS"))
    seen: set[str] = set()
    for i, r in enumerate(request.recipients):
        where = f"recipients[{i}]"
        if (r.repeatabilityRequestId is None) != (r.repeatabilityFirstSent is None):  # one of them null
            errors.append(FieldError(where, "repeatabilityRequestId and repeatabilityFirstSent go together"))
            continue
        if r.repeatabilityFirstSent is not None and parse_rfc1123(r.repeatabilityFirstSent) is None:
            errors.append(FieldError(f"{where}.repeatabilityFirstSent", "is not a real date (day, date and weekday)"))
        if r.repeatabilityRequestId is not None:
            if r.repeatabilityRequestId.lower() in seen:
                errors.append(FieldError(f"{where}.repeatabilityRequestId", "is used by another recipient"))
            seen.add(r.repeatabilityRequestId.lower())
    return errors + _attachment_budget(request.attachments, limits)


def _attachment_budget(attachments: list[MmsAttachment], limits: SendLimits) -> list[FieldError]:
    total = sum(len(base64.b64decode(a.contentInBase64)) for a in attachments)
    if total > limits.max_attachment_bytes:
        return [FieldError("attachments", f"must total at most {limits.max_attachment_bytes} bytes")]
    return []
