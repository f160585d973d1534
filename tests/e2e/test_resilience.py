"""Storms and faults: nothing lost, nothing regressed, nothing sent twice.

Bounded and seeded: each test runs in well under a minute on this machine.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from localdev.simulator import Simulator, SimulatorConfig, connection_string
from mms_tracker.domain import DeliveryReport, Send, apply_report, apply_send
from mms_tracker.domain.reports import parse_envelope
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.tracking import record_sends
from tests.support import Azurite, app_environment, fixture, nonzero, serve_function_app

pytestmark = pytest.mark.e2e

WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_delivery_report"
T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
STATUSES = ["Delivered", "Failed", "Sent", "Queued"]


def storm_events(rng: random.Random, messages: list[str], per_message: int) -> list[dict[str, Any]]:
    events = []
    for message_id in messages:
        for n in range(per_message):
            received = T0 + dt.timedelta(seconds=rng.randint(0, 600), microseconds=rng.randint(0, 999_999))
            events.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
                    "eventTime": received.isoformat(),
                    "dataVersion": "1.0",
                    "subject": "/phonenumber/18335852071",
                    "data": {
                        "messageId": message_id,
                        "from": "18004567891",
                        "to": "+18335852071",
                        "deliveryStatus": rng.choice(STATUSES),
                        "deliveryStatusDetails": f"detail {n}",
                        "receivedTimestamp": received.strftime("%Y-%m-%dT%H:%M:%S.%f") + "1Z",
                        "tag": "storm",
                    },
                }
            )
    return events


class EventGridSender:
    """Delivers one event per request and redelivers on any failure, with backoff, as Event Grid does."""

    def __init__(self, client: Any, deadline: float) -> None:
        self.client = client
        self.deadline = deadline
        self.attempts = 0
        self.failures = 0

    async def deliver(self, event: dict[str, Any]) -> None:
        delay = 0.05
        while True:
            self.attempts += 1
            try:
                response = await self.client.post(WEBHOOK, json=[event], headers={"aeg-event-type": "Notification"})
                if 200 <= response.status < 300:
                    return
            except (TimeoutError, OSError):
                pass
            self.failures += 1
            if time.monotonic() > self.deadline:
                raise AssertionError("an event was never accepted before the deadline")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def test_storm_with_a_storage_outage_loses_nothing_and_keeps_each_report_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261127)
    azurite = Azurite(location=tmp_path / "azurite").start()
    client = None
    try:
        env = app_environment(azurite.connection_string, TRACKING_STORAGE_TIMEOUT_SECONDS="2")
        client = await serve_function_app(monkeypatch, env)
        store = RUNTIME.store()
        messages = [f"storm-{i:03d}" for i in range(500)]
        sends = [Send(m, "+18335852071", "+18004567891", "storm", True, T0) for m in messages]
        await record_sends(store, sends, T0, dt.timedelta(hours=72))

        events = storm_events(rng, messages, per_message=4)
        deliveries = events + [copy.deepcopy(e) for e in rng.sample(events, len(events) // 10)]
        rng.shuffle(deliveries)
        sender = EventGridSender(client, deadline=time.monotonic() + 120)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in deliveries:
            queue.put_nowait(event)
        posted = 0

        async def worker() -> None:
            nonlocal posted
            while not queue.empty():
                await sender.deliver(queue.get_nowait())
                posted += 1

        async def outage() -> None:
            while posted < len(deliveries) // 3:
                await asyncio.sleep(0.01)
            azurite.stop()
            await asyncio.sleep(8)  # longer than the storage client's own retries (3, backoff from 0.8 s)
            azurite.start()

        await asyncio.gather(outage(), *(worker() for _ in range(16)))
        assert sender.failures > 0, "the outage should have failed some deliveries"

        by_message: dict[str, list[DeliveryReport]] = defaultdict(list)
        for event in events:
            report = parse_envelope(event)
            by_message[report.message_id].append(report)
        expected_counts: Counter[str] = Counter()
        # The app recorded every report days after T0, so none is ahead of its recording time
        # (REPORT_MAX_FUTURE_SKEW_SECONDS); the model must be replayed at a time as late.
        recorded = dt.datetime.now(dt.UTC)
        for message_id in messages:
            expected = apply_send(None, sends[int(message_id[-3:])], T0).after
            for report in by_message[message_id]:
                expected = apply_report(expected, report, recorded).after
            actual = await store.get(message_id)
            assert actual is not None
            assert (actual.status, actual.status_details, actual.completed_at) == (
                expected.status,
                expected.status_details,
                expected.completed_at,
            ), message_id
            assert sorted(e.event_id for e in actual.events) == sorted(e.event_id for e in expected.events)
            expected_counts[expected.status.value] += 1
        assert nonzero(await store.tag_counts("storm")) == expected_counts
    finally:
        if client is not None:
            await client.close()
        await RUNTIME.aclose()
        azurite.stop()


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[Simulator, TestServer]]:
    sim = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused", report_delay_seconds=3600))
    server = TestServer(sim.build())
    await server.start_server()
    yield sim, server
    await server.close()


async def test_throttling_then_unavailable_then_a_lost_response_send_each_message_once(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, simulator: tuple[Simulator, TestServer]
) -> None:
    sim, server = simulator
    env = app_environment(
        azurite.connection_string,
        ACS_CONNECTION_STRING=connection_string(server.port or 0),
        ACS_MAX_ATTEMPTS="6",
        ACS_RETRY_MAX_SECONDS="20",
    )
    client = await serve_function_app(monkeypatch, env)
    try:
        async with httpx.AsyncClient() as admin:
            faults = {"throttle": 1, "retryAfter": 1, "unavailable": 1, "loseResponse": 1}
            (await admin.post(str(server.make_url("/simulator/faults")), json=faults)).raise_for_status()
        response = await client.post("/api/messages", json=fixture("seed_send_request.json"))
        assert response.status == 202, await response.text()
        items = (await response.json())["value"]
        assert [i["successful"] for i in items] == [True, True, False]
        assert (sim.stats["throttled"], sim.stats["unavailable"], sim.stats["lost_responses"]) == (1, 1, 1)
        assert sorted(m["to"] for m in sim.messages.values()) == ["+11234567890", "+18335852071"]
        assert {i["messageId"] for i in items[:2]} == set(sim.messages)
        for item in items[:2]:
            record = await RUNTIME.store().get(item["messageId"])
            assert record is not None and record.status.value == "Accepted"
    finally:
        await client.close()
        await RUNTIME.aclose()
