"""The Event Grid side: the report events, the steering rules by the number's last four digits,
and delivery to the webhook with Event Grid's semantics (validation handshake, ``Notification``,
retry schedule, dead-lettering, batching)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .config import SimulatorConfig

TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "microsoft.communication/communicationservices/mms-tracker-simulator"
)
REPORT_EVENT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"
# Replies: AcsSmsReceivedEventData in Azure/azure-rest-api-specs,
# specification/eventgrid/data-plane/Microsoft.Communication/ (messageId, from, to, message, receivedTimestamp).
INBOUND_EVENT_TYPE = "Microsoft.Communication.SMSReceived"
STOP_REPLIER = "7867"  # S-T-O-P on a phone keypad: this recipient replies STOP to every MMS
# Event Grid's retry schedule (seconds), scaled by ``SimulatorConfig.retry_scale``.
EVENT_GRID_BACKOFF = (10, 30, 60, 300, 600, 1800, 3600)

RULES = {
    "4040": "Failed: the report says Failed with a reason",
    "4044": "no report at all",
    "2002": "duplicated: the report is delivered twice under one event id and once more under another",
    "3003": "out of order: Failed (received first) and Delivered (received later) arrive newest first",
    "8008": "slow: the report comes after slow_report_seconds instead of report_delay_seconds",
    STOP_REPLIER: "replies STOP: an SMSReceived event from the recipient to the sender follows its report",
}


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


class DeliveryEngine:
    """Queues report events and delivers them to ``config.webhook_url`` as Event Grid would."""

    def __init__(self, config: SimulatorConfig, stats: dict[str, int], clock: Callable[[], float]) -> None:
        self.config = config
        self.stats = stats
        self._clock = clock
        self.deliveries: list[Delivery] = []
        self.dead_letters: list[Delivery] = []
        self.validated = False
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._handshake_lock = asyncio.Lock()
        self._scheduler: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    @property
    def pending(self) -> int:
        """Events queued or being delivered."""
        return len(self._queue) + len(self._in_flight)

    def reset(self) -> None:
        self.deliveries.clear()
        self.dead_letters.clear()
        self._queue.clear()
        self.validated = False

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._scheduler = asyncio.create_task(self._run_scheduler())

    async def stop(self) -> None:
        tasks = [t for t in (self._scheduler, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # --- reports, steered by the recipient number's last four digits (RULES) --------------------

    def schedule_reports(self, message_id: str, sender: str, to: str, tag: str | None) -> None:
        rule = to[-4:]
        now = self._clock()
        delay = self.config.slow_report_seconds if rule == "8008" else self.config.report_delay_seconds
        received = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        if rule == STOP_REPLIER:
            self.schedule_inbound(to, sender, "STOP", delay + 0.1)
        if rule == "4044":
            return
        if rule == "3003":
            failed = report_event(
                message_id, sender, to, tag, "Failed", "Carrier reported a temporary failure.", received
            )
            delivered = report_event(
                message_id, sender, to, tag, "Delivered", "No error.", received + dt.timedelta(seconds=1)
            )
            self._enqueue(delivered, now + delay)
            self._enqueue(failed, now + delay + max(0.2, delay / 2))
            return
        status, details = ("Failed", "Recipient unreachable.") if rule == "4040" else ("Delivered", "No error.")
        event = report_event(message_id, sender, to, tag, status, details, received)
        self._enqueue(event, now + delay)
        if rule == "2002":
            self._enqueue(event, now + delay + 0.1)
            self._enqueue(event | {"id": str(uuid.uuid4())}, now + delay + 0.2)

    def schedule_inbound(self, from_: str, to: str, message: str, delay: float = 0.0) -> dict[str, Any]:
        """Queue an ``SMSReceived`` event: ``from_`` (a recipient) replied ``message`` to our number ``to``."""
        event = inbound_event(from_, to, message, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay))
        self._enqueue(event, self._clock() + delay)
        return event

    # --- delivery ---------------------------------------------------------------------------------

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
            return self.validated or await self._handshake()

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
        self.validated = isinstance(answer, dict) and answer.get("validationResponse") == code
        return self.validated


def report_event(
    message_id: str, sender: str, to: str, tag: str | None, status: str, details: str, received: dt.datetime
) -> dict[str, Any]:
    """A ``SMSDeliveryReportReceived`` event in Event Grid schema."""
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


def inbound_event(from_: str, to: str, message: str, received: dt.datetime) -> dict[str, Any]:
    """A ``SMSReceived`` event in Event Grid schema, shaped as ACS publishes it."""
    message_id = f"Incoming_{received.strftime('%Y%m%d%H%M%S%f')}{uuid.uuid4()}"
    return {
        "id": str(uuid.uuid4()),
        "topic": TOPIC,
        "subject": f"/phonenumber/{from_.lstrip('+')}",
        "data": {
            "messageId": message_id,
            "from": from_,
            "to": to,
            "message": message,
            "receivedTimestamp": _iso(received),
        },
        "eventType": INBOUND_EVENT_TYPE,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": _iso(received),
    }


def _delivery(item: _Pending, outcome: str, status: int | None, reason: str | None = None) -> Delivery:
    data = item.event["data"]
    status_name = data.get("deliveryStatus", item.event["eventType"])  # a reply has no delivery status
    return Delivery(item.event["id"], data["messageId"], status_name, item.attempts, outcome, status, reason)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _now_iso() -> str:
    return _iso(dt.datetime.now(dt.UTC))
