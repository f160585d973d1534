"""``POST /api/messages`` bodies: the ACS ``MmsSendMessageRequest``, validated as a whole.

Whole-request problems raise :class:`RequestInvalid` (every failing field named) or
:class:`RequestTooLarge`; a recipient whose number is not E.164 is *not* a whole-request
problem: it is marked invalid and answered in its own item, as ACS does.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from .problems import FieldError
from .settings import E164

MAX_RECIPIENTS = 100
MAX_ATTACHMENTS = 10
MAX_MESSAGE_CHARS = 1000
# The MMS content types of the ACS MMS send reference (api-version 2024-01-14-preview).
CONTENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/bmp",
        "image/tiff",
        "video/3gpp",
        "video/3gpp2",
        "video/mp4",
        "video/mpeg",
        "video/quicktime",
        "video/webm",
        "audio/aac",
        "audio/amr",
        "audio/mp3",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/wav",
        "audio/3gpp",
        "text/plain",
        "text/vcard",
        "text/x-vcard",
        "text/calendar",
        "application/pdf",
    }
)
INVALID_NUMBER = "Invalid phone number format."


class RequestInvalid(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class RequestTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds {limit} bytes.")
        self.limit = limit


@dataclass(frozen=True)
class Recipient:
    to: str
    repeatability_request_id: str | None = None
    repeatability_first_sent: str | None = None

    @property
    def valid(self) -> bool:
        return bool(E164.match(self.to))


@dataclass(frozen=True)
class MmsRequest:
    from_: str
    recipients: tuple[Recipient, ...]
    message: str | None
    attachments: tuple[dict[str, str], ...]
    tag: str | None


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
    except (ValueError, UnicodeDecodeError):
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
    for i, item in enumerate(value):
        where = f"recipients[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("to"), str) or not item["to"]:
            errors.append(FieldError(f"{where}.to", "is required and must be a string"))
            continue
        request_id, first_sent = item.get("repeatabilityRequestId"), item.get("repeatabilityFirstSent")
        if (request_id is None) != (first_sent is None):
            errors.append(FieldError(where, "repeatabilityRequestId and repeatabilityFirstSent go together"))
            continue
        if request_id is not None and (
            not isinstance(request_id, str) or not isinstance(first_sent, str) or not request_id or not first_sent
        ):
            errors.append(FieldError(where, "repeatabilityRequestId and repeatabilityFirstSent must be strings"))
            continue
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
        if not isinstance(content_type, str) or content_type.lower() not in CONTENT_TYPES:
            errors.append(FieldError(f"{where}.contentType", "is not a supported MMS content type"))
        if not isinstance(content, str) or not content:
            errors.append(FieldError(f"{where}.contentInBase64", "is required"))
            continue
        try:
            total += len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"{where}.contentInBase64", "is not valid base64"))
            continue
        attachments.append({"contentType": str(content_type), "contentInBase64": content})
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
    if tag is not None and (not isinstance(tag, str) or len(tag) > 256):
        errors.append(FieldError("sendOptions.tag", "must be a string of at most 256 characters"))
        return None
    return tag or None
