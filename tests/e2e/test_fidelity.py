"""The app and the simulator agree with the published sources, end to end: the MMS content types
and the event ids of ACS delivery reports (values from Azure/azure-rest-api-specs, named below)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from localdev.simulator import Simulator, SimulatorConfig, connection_string
from mms_tracker.runtime import RUNTIME
from tests.support import SWAGGER_MMS_CONTENT_TYPES, Azurite, app_environment, fixture, poll_async, serve_function_app

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Any, Simulator]]:
    """The app in-process against Azurite, sending to a simulator that reports back to the app."""
    sim = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused", report_delay_seconds=0.05))
    server = TestServer(sim.build())
    await server.start_server()
    client = await serve_function_app(
        monkeypatch, app_environment(azurite.connection_string, ACS_CONNECTION_STRING=connection_string(server.port))
    )
    sim.config.webhook_url = str(client.make_url("/runtime/webhooks/eventgrid?functionName=on_delivery_report"))
    yield client, sim
    await client.close()
    await server.close()
    await RUNTIME.aclose()


def request_with(content_type: str, to: str = "+18335852071") -> dict[str, Any]:
    body = copy.deepcopy(fixture("seed_send_request.json"))
    body["recipients"] = [{"to": to}]
    body["attachments"][0]["contentType"] = content_type
    return body  # type: ignore[no-any-return]


async def test_each_of_the_eleven_content_types_is_sent_in_the_enums_spelling(stack: tuple[Any, Simulator]) -> None:
    client, sim = stack
    for content_type in SWAGGER_MMS_CONTENT_TYPES:
        response = await client.post("/api/messages", json=request_with(content_type.upper()))
        assert response.status == 202, await response.text()
        [item] = (await response.json())["value"]
        assert item["successful"] is True
    assert len(sim.messages) == len(SWAGGER_MMS_CONTENT_TYPES)
    assert sim.stats["requests"] == len(SWAGGER_MMS_CONTENT_TYPES)


async def test_a_pdf_attachment_is_a_400_naming_the_field_and_nothing_is_sent(stack: tuple[Any, Simulator]) -> None:
    client, sim = stack
    response = await client.post("/api/messages", json=request_with("application/pdf"))
    assert response.status == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in (await response.json())["errors"]] == ["attachments[0].contentType"]
    assert sim.stats["requests"] == 0


async def test_a_failed_then_delivered_report_under_one_event_id_are_two_reports(stack: tuple[Any, Simulator]) -> None:
    client, _ = stack
    # The simulator's 3003 rule: Failed, then a later Delivered, both under the event id = messageId
    # as in ACS's samples (specification/eventgrid/data-plane/Microsoft.Communication/.../
    # sms_delivery_report_received.json), delivered newest first.
    response = await client.post("/api/messages", json=request_with("image/png", to="+18335553003"))
    [item] = (await response.json())["value"]

    async def both_recorded() -> dict[str, Any] | None:
        record = await (await client.get(f"/api/messages/{item['messageId']}")).json()
        return record if len(record.get("events", [])) == 2 else None

    record = await poll_async(both_recorded, deadline_seconds=15)
    assert {e["eventId"] for e in record["events"]} == {item["messageId"]}
    assert sorted(e["deliveryStatus"] for e in record["events"]) == ["Delivered", "Failed"]
    assert record["status"] == "Delivered"  # the later receivedTimestamp wins
