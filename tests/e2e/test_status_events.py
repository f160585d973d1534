"""Status-change events end to end: the app, the simulator's ACS and its topic, a real Azurite.

The topic is the simulator's (``POST /eventgrid/api/events`` with ``aeg-sas-key``, the header
azure-eventgrid sends for an ``AzureKeyCredential``: ``_legacy/_constants.py``,
``EVENTGRID_KEY_HEADER``), reached by the real ``EventGridPublisherClient``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from localdev.simulator import TOPIC_KEY, Simulator, SimulatorConfig, connection_string, topic_endpoint
from mms_tracker.runtime import RUNTIME
from tests.support import Azurite, app_environment, poll_async, serve_function_app

pytestmark = pytest.mark.e2e

WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_delivery_report"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def send_request(numbers: list[str], tag: str) -> dict[str, Any]:
    return {
        "recipients": [{"to": n} for n in numbers],
        "message": "status events",
        "attachments": [{"contentType": "image/png", "contentInBase64": PNG}],
        "sendOptions": {"enableDeliveryReport": True, "tag": tag},
    }


@pytest.fixture
async def stack(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Any, Simulator, Any]]:
    sim = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused", report_delay_seconds=0.2))
    server = TestServer(sim.build())
    await server.start_server()
    port = server.port or 0
    env = app_environment(
        azurite.connection_string,
        ACS_CONNECTION_STRING=connection_string(port),
        STATUS_EVENTS_ENDPOINT=topic_endpoint(port),
        STATUS_EVENTS_KEY=TOPIC_KEY,
    )
    client = await serve_function_app(monkeypatch, env)
    sim.config.webhook_url = str(client.make_url(WEBHOOK))
    async with httpx.AsyncClient(base_url=str(server.make_url(""))) as admin:
        yield client, sim, admin
    await client.close()
    await RUNTIME.aclose()
    await server.close()


async def records_final(client: Any, message_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    records = {}
    for message_id in message_ids:
        response = await client.get(f"/api/messages/{message_id}")
        if response.status != 200:
            return None
        record = await response.json()
        if record["completedAt"] is None:
            return None
        records[message_id] = record
    return records


def by_message(published: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in published:
        events[event["data"]["messageId"]].append(event)
    return events


async def test_failed_and_out_of_order_finals_publish_every_change_and_the_highest_revision_is_final(
    stack: tuple[Any, Simulator, Any],
) -> None:
    client, sim, _admin = stack
    response = await client.post("/api/messages", json=send_request(["+18335554040", "+18335553003"], "done-when"))
    assert response.status == 202, await response.text()
    ids = [item["messageId"] for item in (await response.json())["value"]]
    failed, out_of_order = ids
    expected = {failed: "Failed", out_of_order: "Delivered"}

    async def final() -> dict[str, dict[str, Any]] | None:
        records = await records_final(client, ids)
        return records if records and {m: r["status"] for m, r in records.items()} == expected else None

    await poll_async(final, deadline_seconds=30)

    async def settled() -> dict[str, list[dict[str, Any]]] | None:
        events = by_message(sim.topic.published)
        top = {m: max(events.get(m, []), key=lambda e: e["data"]["revision"], default=None) for m in ids}
        done = all(t is not None and t["data"]["status"] == expected[m] for m, t in top.items())
        return events if done else None

    events = await poll_async(settled, deadline_seconds=30)
    assert sorted({(e["data"]["revision"], e["data"]["status"]) for e in events[failed]}) == [
        (1, "Accepted"),
        (2, "Failed"),
    ]
    by_revision = {e["data"]["revision"]: e for e in events[failed]}  # duplicates allowed: any copy will do
    first = by_revision[1]
    assert first["type"] == "MmsTracker.MessageStatusChanged" and first["specversion"] == "1.0"
    assert first["source"] == "/mms-tracker/local" and first["subject"] == f"/messages/{failed}"
    assert first["data"]["previousStatus"] is None and first["data"]["revision"] == 1
    assert by_revision[2]["data"]["previousStatus"] == "Accepted"
    # 3003: Delivered (received later) is sent before Failed (received earlier), which then changes
    # nothing; should the deliveries overtake each other, Failed is a change and Delivered another.
    statuses = {e["data"]["revision"]: e["data"]["status"] for e in events[out_of_order]}
    assert sorted(statuses) == list(range(1, len(statuses) + 1))
    assert [statuses[r] for r in sorted(statuses)] in (
        ["Accepted", "Delivered"],
        ["Accepted", "Failed", "Delivered"],
    )


async def test_publish_unavailable_mid_campaign_loses_no_change_and_leaves_no_gap(
    stack: tuple[Any, Simulator, Any],
) -> None:
    client, sim, admin = stack
    numbers = [f"+1833555{n:04d}" for n in range(1000, 1030)] + ["+18335554040", "+18335553003", "+18335552002"]
    ids: list[str] = []
    for chunk, start in enumerate(range(0, len(numbers), 11)):
        if chunk == 1:  # the topic fails in the middle of the campaign
            (await admin.post("/simulator/faults", json={"publishUnavailable": 5})).raise_for_status()
        response = await client.post("/api/messages", json=send_request(numbers[start : start + 11], "campaign"))
        assert response.status == 202, await response.text()
        ids += [item["messageId"] for item in (await response.json())["value"]]
    records = await poll_async(lambda: records_final(client, ids), deadline_seconds=60)

    async def complete() -> dict[str, list[dict[str, Any]]] | None:
        events = by_message(sim.topic.published)
        for message_id in ids:
            revisions = {e["data"]["revision"] for e in events.get(message_id, [])}
            if not revisions or max(revisions) < 2:
                return None
        return events

    events = await poll_async(complete, deadline_seconds=60)
    assert sim.stats["publishUnavailable"] == 5
    for message_id in ids:
        published = events[message_id]
        revisions = sorted({e["data"]["revision"] for e in published})
        assert revisions == list(range(1, revisions[-1] + 1)), (message_id, revisions)  # duplicates allowed, no gap
        statuses = {e["data"]["revision"]: e["data"]["status"] for e in published}
        assert statuses[revisions[-1]] == records[message_id]["status"]
        assert len({e["id"] for e in published if e["data"]["revision"] == 1}) == 1  # same change, same id
    store = RUNTIME.store()

    async def acknowledged() -> bool:  # the topic took them; the records hear so right after
        records = [await store.get(m) for m in ids]
        return all(r is not None and r.pending == () for r in records)

    assert await poll_async(acknowledged, deadline_seconds=30)
