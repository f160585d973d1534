"""``POST /api/messages`` bodies: the ACS ``MmsSendMessageRequest``, validated as a whole.

Whole-request problems raise :class:`RequestInvalid` (every failing field named) or
:class:`RequestTooLarge`; a recipient whose number is not E.164 is *not* a whole-request
problem: it is marked invalid and answered in its own item, as ACS does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from ..domain import MAX_TAG_CHARS, FieldError
from ..domain.timestamps import parse_rfc1123
from ..service.sending import MmsRequest, Recipient

MAX_RECIPIENTS = 100
MAX_ATTACHMENTS = 10
MAX_MESSAGE_CHARS = 1000
# The API's ``MmsContentType`` enum, in its own spelling and order: Azure/azure-rest-api-specs,
# specification/communication/data-plane/Sms/preview/2024-01-14-preview/communicationservicessms.json,
# ``MmsSendRequestAttachment.contentType``. Matched case-insensitively, forwarded as spelled here.
MMS_CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "audio/wav",
    "audio/x-wav",
    "audio/ac3",
    "audio/amr",
    "video/mp4",
    "video/x-msvideo",
    "text/plain",
)
CONTENT_TYPES = {t.lower(): t for t in MMS_CONTENT_TYPES}
# ``MmsRecipient.repeatabilityRequestId``: "a client-generated, 36-character hexadecimal
# case-insensitive encoding of a UUID (GUID)"; ``repeatabilityFirstSent``: an RFC 1123 date,
# "eg- Tue, 26 Mar 2019 16:06:51 GMT" (same swagger).
REPEATABILITY_REQUEST_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class RequestInvalid(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class RequestTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds {limit} bytes.")
        self.limit = limit


@dataclass(frozen=True)
class SendLimits:
    max_request_bytes: int = 2 * 1024 * 1024
    max_attachment_bytes: int = 1024 * 1024


def parse_send_request(body: bytes, senders: tuple[str, ...], limits: SendLimits) -> MmsRequest:
    """Validate a request body; raise :class:`RequestTooLarge` or :class:`RequestInvalid`."""
    if len(body) > limits.max_request_bytes:
        raise RequestTooLarge(limits.max_request_bytes)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise RequestInvalid([FieldError("body", "must be a JSON object")]) from None
    if not isinstance(data, dict):
        raise RequestInvalid([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    sender = _sender(data.get("from"), senders, errors)
    recipients = _recipients(data.get("recipients"), errors)
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        errors.append(FieldError("message", "must be a string"))
    elif isinstance(message, str) and len(message) > MAX_MESSAGE_CHARS:
        errors.append(FieldError("message", f"must be at most {MAX_MESSAGE_CHARS} characters"))
    elif isinstance(message, str) and not _is_unicode(message):
        errors.append(FieldError("message", "must be valid unicode text (no lone surrogates)"))
    attachments = _attachments(data.get("attachments"), limits, errors)
    tag = _tag(data.get("sendOptions"), errors)
    if errors:
        raise RequestInvalid(errors)
    return MmsRequest(sender, recipients, message, attachments, tag)


def _sender(value: Any, senders: tuple[str, ...], errors: list[FieldError]) -> str:
    if value is None:
        return senders[0]
    if not isinstance(value, str) or value not in senders:
        errors.append(FieldError("from", "must be one of the numbers in MMS_SENDERS"))
        return ""
    return value


def _recipients(value: Any, errors: list[FieldError]) -> tuple[Recipient, ...]:
    if not isinstance(value, list) or not value:
        errors.append(FieldError("recipients", "must list at least one recipient"))
        return ()
    if len(value) > MAX_RECIPIENTS:
        errors.append(FieldError("recipients", f"must list at most {MAX_RECIPIENTS} recipients"))
        return ()
    recipients = []
    seen_ids: set[str] = set()
    for i, item in enumerate(value):
        where = f"recipients[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("to"), str) or not item["to"]:
            errors.append(FieldError(f"{where}.to", "is required and must be a string"))
            continue
        request_id, first_sent = item.get("repeatabilityRequestId"), item.get("repeatabilityFirstSent")
        if (request_id is None) != (first_sent is None):
            errors.append(FieldError(where, "repeatabilityRequestId and repeatabilityFirstSent go together"))
            continue
        if request_id is not None:
            bad = False
            if not isinstance(request_id, str) or not REPEATABILITY_REQUEST_ID.fullmatch(request_id):
                errors.append(FieldError(f"{where}.repeatabilityRequestId", "must be a UUID"))
                bad = True
            if not isinstance(first_sent, str) or parse_rfc1123(first_sent) is None:
                errors.append(
                    FieldError(
                        f"{where}.repeatabilityFirstSent",
                        "must be an RFC 1123 date such as 'Tue, 26 Mar 2019 16:06:51 GMT'",
                    )
                )
                bad = True
            if not bad and request_id.lower() in seen_ids:
                errors.append(FieldError(f"{where}.repeatabilityRequestId", "is used by another recipient"))
                bad = True
            if bad:
                continue
            seen_ids.add(request_id.lower())
        recipients.append(Recipient(item["to"], request_id, first_sent))
    return tuple(recipients)


def _attachments(value: Any, limits: SendLimits, errors: list[FieldError]) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        errors.append(FieldError("attachments", "must list at least one attachment"))
        return ()
    if len(value) > MAX_ATTACHMENTS:
        errors.append(FieldError("attachments", f"must list at most {MAX_ATTACHMENTS} attachments"))
        return ()
    attachments = []
    total = 0
    for i, item in enumerate(value):
        where = f"attachments[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        content_type, content = item.get("contentType"), item.get("contentInBase64")
        canonical = CONTENT_TYPES.get(content_type.lower()) if isinstance(content_type, str) else None
        if canonical is None:
            allowed = ", ".join(MMS_CONTENT_TYPES)
            errors.append(FieldError(f"{where}.contentType", f"must be one of the MMS content types: {allowed}"))
        if not isinstance(content, str) or not content:
            errors.append(FieldError(f"{where}.contentInBase64", "is required"))
            continue
        try:
            total += len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"{where}.contentInBase64", "is not valid base64"))
            continue
        attachments.append({"contentType": canonical or "", "contentInBase64": content})
    if total > limits.max_attachment_bytes:
        errors.append(FieldError("attachments", f"must total at most {limits.max_attachment_bytes} bytes"))
    return tuple(attachments)


def _tag(value: Any, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append(FieldError("sendOptions", "must be an object"))
        return None
    tag = value.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > MAX_TAG_CHARS or not _is_unicode(tag)):
        errors.append(FieldError("sendOptions.tag", f"must be a string of at most {MAX_TAG_CHARS} characters"))
        return None
    return tag or None


def _is_unicode(text: str) -> bool:
    """No lone surrogates: JSON's ``\\ud800`` escapes decode to them, and they cannot be stored or sent."""
    return not any("\ud800" <= c <= "\udfff" for c in text)
