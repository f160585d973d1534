"""Spans through the real clients: ACS over HTTP (the simulator) and Table Storage (Azurite).

The in-memory exporter sees what Application Insights or an OTLP receiver would: the send span
parents the instrumented httpx call to ACS and azure-core's table spans, the record in Azurite
keeps the send's traceparent, and the report span read back from it links to the send.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from localdev.simulator import Simulator, SimulatorConfig
from localdev.simulator.config import connection_string
from mms_tracker.api.blueprints.delivery_reports import receive_delivery_reports
from mms_tracker.api.blueprints.messages import send_message
from mms_tracker.runtime import RUNTIME
from mms_tracker.settings import Settings
from tests.otel import Captured
from tests.support import Azurite, app_environment, fixture, http_request


@pytest.fixture
async def acs_simulator(azurite: Azurite) -> AsyncIterator[Simulator]:
    """The ACS simulator on a free port (reports held back for an hour: this test delivers its own)."""
    simulator = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused", report_delay_seconds=3600))
    server = TestServer(simulator.build())
    await server.start_server()
    env = app_environment(azurite.connection_string, ACS_CONNECTION_STRING=connection_string(server.port or 0))
    RUNTIME.configure(Settings.from_environment(env))
    yield simulator
    await RUNTIME.aclose()
    await server.close()


def children(capture: Captured, parent: Any) -> list[Any]:
    return [s for s in capture.spans() if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_send_span_parents_the_acs_call_and_the_table_writes_and_the_report_links_back(
    acs_simulator: Simulator, otel: Captured
) -> None:
    body = json.dumps(fixture("seed_send_request.json")).encode()
    response = await send_message(http_request("POST", "http://localhost/api/messages", body=body))
    assert response.status_code == 202
    message_id = json.loads(response.body)["value"][0]["messageId"]
    send = otel.one("mms.send")
    below = children(otel, send)
    # opentelemetry-instrumentation-httpx names a client span by its method and, by default, still
    # writes the older HTTP conventions (http.method, http.url); the newer ones under opt-in.
    http = [(s, s.attributes or {}) for s in below if s.name == "POST"]
    assert len(http) == 1, [s.name for s in below]  # the one call to ACS, made by the instrumented httpx client
    url = str(http[0][1].get("url.full") or http[0][1].get("http.url"))
    assert url.split("?")[0].endswith("/mms")
    tables = [s for s in below if s.name.startswith("TableClient.")]  # azure-core's spans of the table client
    assert tables, [s.name for s in below]
    record = await RUNTIME.store().get(message_id)
    assert record is not None
    assert record.traceparent is not None and record.traceparent.split("-")[1] == f"{send.context.trace_id:032x}"

    event = fixture("sms_delivery_report.eventgrid.json")[0]
    event["id"] = "e-integration"
    event["data"].update(messageId=message_id, receivedTimestamp=dt.datetime.now(dt.UTC).isoformat())
    req = http_request(
        "POST",
        "http://localhost/api/events/delivery-reports",
        body=json.dumps([event]).encode(),
        headers={"aeg-event-type": "Notification"},
    )
    assert (await receive_delivery_reports(req)).status_code == 200
    report = otel.one("mms.delivery_report")
    assert [(link.context.trace_id, link.context.span_id) for link in report.links] == [
        (send.context.trace_id, send.context.span_id)
    ]
    assert any(s.name.startswith("TableClient.") for s in children(otel, report))
