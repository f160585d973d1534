"""A stand-in for an ACS resource and its Event Grid system topic, for local runs and tests.

- ``POST /mms?api-version=2024-01-14-preview``: HMAC-SHA256 access-key auth verified as ACS
  does (string to sign ``VERB\\npath?query\\nx-ms-date;host;x-ms-content-sha256``, content hash
  checked against the body, clock-skew window), per-recipient results as in the ACS sample,
  repeatability by ``repeatabilityRequestId``.
- After each accepted recipient, ``SMSDeliveryReportReceived`` events (Event Grid schema) go to
  the webhook with Event Grid's semantics: a validation handshake first, ``aeg-event-type:
  Notification``, redelivery with backoff on non-2xx and timeouts, dead-lettering on 400/413 or
  when attempts run out, optional batching.
- Outcomes are steered by the recipient number's last four digits (see ``RULES``), and send-side
  faults are switched at runtime through ``POST /simulator/faults``.
- Inspection: ``GET /simulator/messages``, ``/simulator/deliveries``, ``/simulator/dead-letters``,
  ``/simulator/stats``; ``POST /simulator/reset``.

Run it with ``python -m localdev.simulator``; settings are environment variables (README).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import email.utils
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_log = logging.getLogger("localdev.simulator")

API_VERSION = "2024-01-14-preview"
ACCESS_KEY_B64 = "bW1zLXRyYWNrZXItc2ltdWxhdG9yLWtleS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA="
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "microsoft.communication/communicationservices/mms-tracker-simulator"
)
REPORT_EVENT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"
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
# Event Grid's retry schedule (seconds), scaled by ``SimulatorConfig.retry_scale``.
EVENT_GRID_BACKOFF = (10, 30, 60, 300, 600, 1800, 3600)

RULES = {
    "4040": "Failed: the report says Failed with a reason",
    "4044": "no report at all",
    "2002": "duplicated: the report is delivered twice under one event id and once more under another",
    "3003": "out of order: Failed (received first) and Delivered (received later) arrive newest first",
    "8008": "slow: the report comes after slow_report_seconds instead of report_delay_seconds",
}


def connection_string(port: int, host: str = "127.0.0.1") -> str:
    """The simulator's fixed, documented connection string (like Azurite's well-known key)."""
    return f"endpoint=http://{host}:{port}/;accesskey={ACCESS_KEY_B64}"


@dataclass
class SimulatorConfig:
    webhook_url: str = "http://127.0.0.1:7071/runtime/webhooks/eventgrid?functionName=on_delivery_report"
    access_key: bytes = base64.b64decode(ACCESS_KEY_B64)
    report_delay_seconds: float = 1.0
    slow_report_seconds: float = 10.0
    retry_scale: float = 0.01
    max_delivery_attempts: int = 30
    delivery_timeout_seconds: float = 30.0
    batch_size: int = 1
    max_concurrent_deliveries: int = 16
    clock_skew_seconds: float = 15 * 60

    @classmethod
    def from_environment(cls) -> SimulatorConfig:
        config = cls()
        env = os.environ
        host_port = env.get("LOCAL_HOST_PORT", "7071")
        config.webhook_url = env.get(
            "SIM_WEBHOOK_URL",
            f"http://127.0.0.1:{host_port}/runtime/webhooks/eventgrid?functionName=on_delivery_report",
        )
        for name, attr, kind in (
            ("SIM_REPORT_DELAY_SECONDS", "report_delay_seconds", float),
            ("SIM_SLOW_REPORT_SECONDS", "slow_report_seconds", float),
            ("SIM_RETRY_SCALE", "retry_scale", float),
            ("SIM_MAX_DELIVERY_ATTEMPTS", "max_delivery_attempts", int),
            ("SIM_DELIVERY_TIMEOUT_SECONDS", "delivery_timeout_seconds", float),
            ("SIM_BATCH_SIZE", "batch_size", int),
        ):
            if env.get(name):
                setattr(config, attr, kind(env[name]))
        return config


@dataclass
class Faults:
    """Send-side faults for the next N requests, switched at runtime."""

    throttle: int = 0
    retry_after: int = 1
    unavailable: int = 0
    lose_response: int = 0


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    event: dict[str, Any] = field(compare=False)
    attempts: int = field(default=0, compare=False)


@dataclass
class Delivery:
    event_id: str
    message_id: str
    delivery_status: str
    attempts: int
    outcome: str  # "delivered" | "dead-lettered"
    last_status: int | None
    reason: str | None = None


class Simulator:
    """The simulator's state and its aiohttp application."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.faults = Faults()
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self.messages: dict[str, dict[str, Any]] = {}
        self.by_request_id: dict[str, dict[str, Any]] = {}
        self.deliveries: list[Delivery] = []
        self.dead_letters: list[Delivery] = []
        self.stats: dict[str, int] = {
            "requests": 0,
            "unauthorized": 0,
            "sent": 0,
            "repeats": 0,
            "throttled": 0,
            "unavailable": 0,
            "lost_responses": 0,
            "delivery_attempts": 0,
            "handshakes": 0,
        }
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._validated = False
        self._handshake_lock = asyncio.Lock()
        self._scheduler: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/mms", self._send)
        app.router.add_get("/simulator/messages", self._list_messages)
        app.router.add_get("/simulator/deliveries", self._list_deliveries)
        app.router.add_get("/simulator/dead-letters", self._list_dead_letters)
        app.router.add_get("/simulator/stats", self._stats)
        app.router.add_get("/simulator/rules", self._rules)
        app.router.add_post("/simulator/faults", self._set_faults)
        app.router.add_post("/simulator/reset", self._reset)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    # --- the MMS API -------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        body = await request.read()
        problem = self.verify_signature(request.method, request.raw_path, request.headers, body)
        if problem:
            self.stats["unauthorized"] += 1
            return _acs_error(401, "Denied", problem)
        if request.query.get("api-version") != API_VERSION:
            return _acs_error(400, "BadRequest", f"Unsupported api-version; use {API_VERSION}.")
        if self.faults.throttle > 0:
            self.faults.throttle -= 1
            self.stats["throttled"] += 1
            return _acs_error(
                429, "TooManyRequests", "Rate limit exceeded.", headers={"Retry-After": str(self.faults.retry_after)}
            )
        if self.faults.unavailable > 0:
            self.faults.unavailable -= 1
            self.stats["unavailable"] += 1
            return _acs_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        try:
            payload = json.loads(body)
            items = self._accept(payload)
        except (ValueError, KeyError, TypeError) as exc:
            return _acs_error(400, "BadRequest", f"The request body is malformed: {exc}")
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

    def _accept(self, payload: Any) -> list[dict[str, Any]]:
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
        tag = (payload.get("sendOptions") or {}).get("tag")
        wants_reports = bool((payload.get("sendOptions") or {}).get("enableDeliveryReport"))
        items = []
        for recipient in recipients:
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
                }
                if wants_reports:
                    self._schedule_reports(message_id, payload["from"], to, tag)
            if request_id:
                item = item | {"repeatabilityResult": "accepted"}
                self.by_request_id[request_id] = {k: v for k, v in item.items() if k != "repeatabilityResult"}
            items.append(item)
        return items

    # --- reports -----------------------------------------------------------------------------

    def _schedule_reports(self, message_id: str, sender: str, to: str, tag: str | None) -> None:
        rule = to[-4:]
        now = self._clock()
        delay = self.config.slow_report_seconds if rule == "8008" else self.config.report_delay_seconds
        received = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        if rule == "4044":
            return
        if rule == "3003":
            failed = _report_event(
                message_id, sender, to, tag, "Failed", "Carrier reported a temporary failure.", received
            )
            delivered = _report_event(
                message_id, sender, to, tag, "Delivered", "No error.", received + dt.timedelta(seconds=1)
            )
            self._enqueue(delivered, now + delay)
            self._enqueue(failed, now + delay + max(0.2, delay / 2))
            return
        status, details = ("Failed", "Recipient unreachable.") if rule == "4040" else ("Delivered", "No error.")
        event = _report_event(message_id, sender, to, tag, status, details, received)
        self._enqueue(event, now + delay)
        if rule == "2002":
            self._enqueue(event, now + delay + 0.1)
            self._enqueue(event | {"id": str(uuid.uuid4())}, now + delay + 0.2)

    def _enqueue(self, event: dict[str, Any], due: float, attempts: int = 0) -> None:
        heapq.heappush(self._queue, _Pending(due, next(self._seq), event, attempts))
        self._wakeup.set()

    async def _run_scheduler(self) -> None:
        limit = asyncio.Semaphore(self.config.max_concurrent_deliveries)
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = self._queue[0].due - self._clock()
            if wait > 0:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
                continue
            batch = [heapq.heappop(self._queue)]
            while self._queue and len(batch) < self.config.batch_size and self._queue[0].due <= self._clock():
                batch.append(heapq.heappop(self._queue))
            await limit.acquire()
            task = asyncio.create_task(self._deliver(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(lambda _: limit.release())

    async def _deliver(self, batch: list[_Pending]) -> None:
        if not await self._ensure_validated():
            for item in batch:
                self._retry(item, None, "subscription validation failed")
            return
        attempt = max(item.attempts for item in batch) + 1
        self.stats["delivery_attempts"] += 1
        status: int | None = None
        try:
            assert self._session is not None
            async with self._session.post(
                self.config.webhook_url,
                json=[item.event for item in batch],
                headers={
                    "aeg-event-type": "Notification",
                    "aeg-delivery-count": str(attempt - 1),
                    "aeg-subscription-name": "MMS-TRACKER-LOCAL",
                    "aeg-data-version": "1.0",
                    "aeg-metadata-version": "1",
                },
                timeout=aiohttp.ClientTimeout(total=self.config.delivery_timeout_seconds),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = type(exc).__name__
        else:
            reason = f"HTTP {status}"
        for item in batch:
            item.attempts = attempt
            if status is not None and 200 <= status < 300:
                self.deliveries.append(_delivery(item, "delivered", status))
            elif status in (400, 413):
                self.dead_letters.append(_delivery(item, "dead-lettered", status, reason))
            else:
                self._retry(item, status, reason)

    def _retry(self, item: _Pending, status: int | None, reason: str) -> None:
        item.attempts = max(item.attempts, 1)
        if item.attempts >= self.config.max_delivery_attempts:
            self.dead_letters.append(_delivery(item, "dead-lettered", status, f"attempts exhausted: {reason}"))
            return
        backoff = EVENT_GRID_BACKOFF[min(item.attempts - 1, len(EVENT_GRID_BACKOFF) - 1)] * self.config.retry_scale
        self._enqueue(item.event, self._clock() + backoff, item.attempts)

    async def _ensure_validated(self) -> bool:
        async with self._handshake_lock:
            return self._validated or await self._handshake()

    async def _handshake(self) -> bool:
        self.stats["handshakes"] += 1
        code = str(uuid.uuid4())
        event = {
            "id": str(uuid.uuid4()),
            "topic": TOPIC,
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": _now_iso(),
            "metadataVersion": "1",
            "dataVersion": "1",
            "data": {"validationCode": code, "validationUrl": ""},
        }
        try:
            assert self._session is not None
            async with self._session.post(
                self.config.webhook_url,
                json=[event],
                headers={"aeg-event-type": "SubscriptionValidation"},
                timeout=aiohttp.ClientTimeout(total=self.config.delivery_timeout_seconds),
            ) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False
        self._validated = isinstance(answer, dict) and answer.get("validationResponse") == code
        return self._validated

    # --- inspection ------------------------------------------------------------------------------

    async def _list_messages(self, request: web.Request) -> web.Response:
        return web.json_response({"items": list(self.messages.values())})

    async def _list_deliveries(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "items": [dataclasses.asdict(d) for d in self.deliveries],
                "pending": len(self._queue) + len(self._in_flight),
            }
        )

    async def _list_dead_letters(self, request: web.Request) -> web.Response:
        return web.json_response({"items": [dataclasses.asdict(d) for d in self.dead_letters]})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.stats
            | {
                "pending": len(self._queue) + len(self._in_flight),
                "delivered": len(self.deliveries),
                "deadLettered": len(self.dead_letters),
                "validated": self._validated,
                "faults": dataclasses.asdict(self.faults),
            }
        )

    async def _rules(self, request: web.Request) -> web.Response:
        return web.json_response({"byLastFourDigits": RULES, "default": "Delivered after report_delay_seconds"})

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.faults = Faults(
                throttle=int(body.get("throttle", 0)),
                retry_after=int(body.get("retryAfter", 1)),
                unavailable=int(body.get("unavailable", 0)),
                lose_response=int(body.get("loseResponse", 0)),
            )
        except (ValueError, TypeError, AttributeError):
            return _acs_error(
                400, "BadRequest", 'Expected {"throttle": N, "retryAfter": S, "unavailable": N, "loseResponse": N}.'
            )
        return web.json_response(dataclasses.asdict(self.faults))

    async def _reset(self, request: web.Request) -> web.Response:
        self.messages.clear()
        self.by_request_id.clear()
        self.deliveries.clear()
        self.dead_letters.clear()
        self._queue.clear()
        self.faults = Faults()
        self._validated = False
        self.stats = dict.fromkeys(self.stats, 0)
        return web.Response(status=204)

    # --- lifecycle ---------------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession()
        self._scheduler = asyncio.create_task(self._run_scheduler())

    async def _stop(self, app: web.Application) -> None:
        tasks = [t for t in (self._scheduler, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def _is_rfc1123(value: Any) -> bool:
    if not isinstance(value, str) or not RFC1123_FORMAT.fullmatch(value):
        return False
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def _report_event(
    message_id: str, sender: str, to: str, tag: str | None, status: str, details: str, received: dt.datetime
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "messageId": message_id,
        "from": sender,
        "to": to,
        "deliveryStatus": status,
        "deliveryStatusDetails": details,
        "receivedTimestamp": _iso(received),
        "deliveryAttempts": [
            {
                "timestamp": _iso(received - dt.timedelta(milliseconds=500)),
                "segmentsSucceeded": 1 if status == "Delivered" else 0,
                "segmentsFailed": 0 if status == "Delivered" else 1,
            }
        ],
    }
    if tag is not None:
        data["tag"] = tag
    return {
        # As in ACS's own samples, the event id is the message id: every report of a message shares it.
        "id": message_id,
        "topic": TOPIC,
        "subject": f"/phonenumber/{to.lstrip('+')}",
        "data": data,
        "eventType": REPORT_EVENT_TYPE,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": _iso(received),
    }


def _delivery(item: _Pending, outcome: str, status: int | None, reason: str | None = None) -> Delivery:
    data = item.event["data"]
    return Delivery(item.event["id"], data["messageId"], data["deliveryStatus"], item.attempts, outcome, status, reason)


def _acs_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _now_iso() -> str:
    return _iso(dt.datetime.now(dt.UTC))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    port = int(os.environ.get("ACS_SIMULATOR_PORT", "7072"))
    simulator = Simulator(SimulatorConfig.from_environment())
    print(f"ACS simulator on http://127.0.0.1:{port} delivering reports to {simulator.config.webhook_url}", flush=True)
    web.run_app(simulator.build(), host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
