"""The ACS MMS API: ``POST /mms``, its HMAC auth, request validation, per-recipient answers,
repeatability and the send-side faults switched at runtime."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .config import SimulatorConfig

API_VERSION = "2024-01-14-preview"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# The simulator's own copy of what the ACS MMS API accepts, from Azure/azure-rest-api-specs,
# specification/communication/data-plane/Sms/preview/2024-01-14-preview/communicationservicessms.json:
# the ``MmsContentType`` enum (``MmsSendRequestAttachment.contentType``), and the formats that
# ``MmsRecipient`` describes for the repeatability pair (a UUID; an RFC 1123 date).
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
UUID_FORMAT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RFC1123_FORMAT = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")

# Called for each accepted recipient that asked for delivery reports: (message_id, from, to, tag).
ReportScheduler = Callable[[str, str, str, str | None], None]


@dataclass
class Faults:
    """Send-side faults for the next N requests, switched at runtime."""

    throttle: int = 0
    retry_after: int = 1
    unavailable: int = 0
    lose_response: int = 0


class MmsApi:
    """``POST /mms``: what was sent, by message id and by repeatability id, and the faults to inject."""

    def __init__(self, config: SimulatorConfig, stats: dict[str, int], schedule_reports: ReportScheduler) -> None:
        self.config = config
        self.stats = stats
        self.schedule_reports = schedule_reports
        self.faults = Faults()
        self.messages: dict[str, dict[str, Any]] = {}
        self.by_request_id: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        self.messages.clear()
        self.by_request_id.clear()
        self.faults = Faults()

    async def send(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        body = await request.read()
        problem = self.verify_signature(request.method, request.raw_path, request.headers, body)
        if problem:
            self.stats["unauthorized"] += 1
            return acs_error(401, "Denied", problem)
        if request.query.get("api-version") != API_VERSION:
            return acs_error(400, "BadRequest", f"Unsupported api-version; use {API_VERSION}.")
        if self.faults.throttle > 0:
            self.faults.throttle -= 1
            self.stats["throttled"] += 1
            return acs_error(
                429, "TooManyRequests", "Rate limit exceeded.", headers={"Retry-After": str(self.faults.retry_after)}
            )
        if self.faults.unavailable > 0:
            self.faults.unavailable -= 1
            self.stats["unavailable"] += 1
            return acs_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        try:
            payload = json.loads(body)
            validate_request(payload)
            items = self._answer(payload)
        except (ValueError, KeyError, TypeError) as exc:
            return acs_error(400, "BadRequest", f"The request body is malformed: {exc}")
        if self.faults.lose_response > 0:
            self.faults.lose_response -= 1
            self.stats["lost_responses"] += 1
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("response lost on purpose")
        return web.json_response({"value": items}, status=202)

    def verify_signature(self, method: str, path_and_query: str, headers: Any, body: bytes) -> str | None:
        """None when the request is signed as ACS requires, else why not."""
        date, content_hash, authorization = (
            headers.get("x-ms-date"),
            headers.get("x-ms-content-sha256"),
            headers.get("Authorization", ""),
        )
        host = headers.get("Host", "")
        if not date or not content_hash or not authorization.startswith("HMAC-SHA256 "):
            return "Missing HMAC-SHA256 authentication headers."
        if content_hash != base64.b64encode(hashlib.sha256(body).digest()).decode():
            return "The content hash does not match the body."
        try:
            sent_at = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return "x-ms-date is not an RFC 1123 date."
        if abs((dt.datetime.now(dt.UTC) - sent_at).total_seconds()) > self.config.clock_skew_seconds:
            return "x-ms-date is outside the allowed clock skew."
        params = dict(part.split("=", 1) for part in authorization[len("HMAC-SHA256 ") :].split("&") if "=" in part)
        if params.get("SignedHeaders", "").lower() != "x-ms-date;host;x-ms-content-sha256":
            return "SignedHeaders must be x-ms-date;host;x-ms-content-sha256."
        string_to_sign = f"{method.upper()}\n{path_and_query}\n{date};{host};{content_hash}"
        expected = base64.b64encode(
            hmac.new(self.config.access_key, string_to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(expected, params.get("Signature", "")):
            return "The signature does not match."
        return None

    def _answer(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """One answer per recipient; a repeated ``repeatabilityRequestId`` gets the first answer again."""
        tag = (payload.get("sendOptions") or {}).get("tag")
        wants_reports = bool((payload.get("sendOptions") or {}).get("enableDeliveryReport"))
        attachments = [
            {
                "contentType": a["contentType"],
                "sha256": hashlib.sha256(str(a.get("contentInBase64")).encode()).hexdigest(),  # of the text sent
            }
            for a in payload["attachments"]
        ]
        items = []
        for recipient in payload["recipients"]:
            to = recipient["to"]
            request_id = recipient.get("repeatabilityRequestId")
            if request_id and request_id in self.by_request_id:
                self.stats["repeats"] += 1
                items.append(self.by_request_id[request_id] | {"repeatabilityResult": "rejected"})
                continue
            if not isinstance(to, str) or not E164.fullmatch(to):
                item: dict[str, Any] = {
                    "to": to,
                    "httpStatusCode": 400,
                    "errorMessage": "Invalid phone number format.",
                    "successful": False,
                }
            else:
                message_id = str(uuid.uuid4())
                item = {"to": to, "messageId": message_id, "httpStatusCode": 202, "successful": True}
                self.stats["sent"] += 1
                self.messages[message_id] = {
                    "messageId": message_id,
                    "to": to,
                    "from": payload["from"],
                    "tag": tag,
                    "repeatabilityRequestId": request_id,
                    "deliveryReport": wants_reports,
                    "message": payload.get("message"),
                    "attachments": attachments,
                }
                if wants_reports:
                    self.schedule_reports(message_id, payload["from"], to, tag)
            if request_id:
                item = item | {"repeatabilityResult": "accepted"}
                self.by_request_id[request_id] = {k: v for k, v in item.items() if k != "repeatabilityResult"}
            items.append(item)
        return items


def validate_request(payload: Any) -> None:
    """Raise ``ValueError`` (or ``KeyError``/``TypeError``) for a body ACS would refuse as a whole."""
    if not isinstance(payload, dict) or not isinstance(payload.get("from"), str):
        raise ValueError("from is required")
    recipients = payload["recipients"]
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= 100:
        raise ValueError("recipients must hold 1 to 100 items")
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not 1 <= len(attachments) <= 10:
        raise ValueError("attachments must hold 1 to 10 items")
    allowed = {t.lower() for t in MMS_CONTENT_TYPES}
    for attachment in attachments:
        content_type = attachment.get("contentType") if isinstance(attachment, dict) else None
        if not isinstance(content_type, str) or content_type.lower() not in allowed:
            raise ValueError(f"contentType {content_type!r} is not a supported MmsContentType")
    for recipient in recipients:
        request_id, first_sent = recipient.get("repeatabilityRequestId"), recipient.get("repeatabilityFirstSent")
        if request_id is not None and not (isinstance(request_id, str) and UUID_FORMAT.fullmatch(request_id)):
            raise ValueError("repeatabilityRequestId must be a UUID")
        if first_sent is not None and not _is_rfc1123(first_sent):
            raise ValueError("repeatabilityFirstSent must be an RFC 1123 date")


def _is_rfc1123(value: Any) -> bool:
    if not isinstance(value, str) or not RFC1123_FORMAT.fullmatch(value):
        return False
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def acs_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
