"""Spans, metrics and log attributes of the app's own work, read from in-memory exporters.

The routes and triggers run against the hand-written store and ACS behind ``httpx.MockTransport``;
tests/integration/test_telemetry.py adds the real table client and a real HTTP ACS (child spans).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.trace import SpanKind, StatusCode

from mms_tracker import telemetry
from mms_tracker.api.blueprints.delivery_reports import expire_stale_messages, receive_delivery_reports
from mms_tracker.api.blueprints.messages import send_message
from mms_tracker.domain import Status
from mms_tracker.logs import log_event
from mms_tracker.runtime import RUNTIME
from mms_tracker.settings import Settings
from mms_tracker.telemetry import wiring
from tests.fakes import InMemoryStore
from tests.otel import Captured
from tests.support import ROOT, app_environment, fixture

NUMBERS = ("+18335852071", "+11234567890", "+18004567891")  # the seed request's recipients and sender


def accept_all(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    value = [
        {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
        for r in body["recipients"]
    ]
    return httpx.Response(202, json={"value": value})


@pytest.fixture
def store() -> Iterator[InMemoryStore]:
    fake = InMemoryStore()
    settings = Settings.from_environment(app_environment("UseDevelopmentStorage=true"))
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(accept_all), store=fake)
    yield fake
    RUNTIME.configure(settings)


async def send_seed() -> list[dict[str, Any]]:
    body = json.dumps(fixture("seed_send_request.json")).encode()
    response = await send_message(func.HttpRequest("POST", "http://localhost/api/messages", body=body))
    assert response.status_code == 202
    return json.loads(response.get_body())["value"]  # type: ignore[no-any-return]


def report(message_id: str, status: str = "Delivered", event_id: str = "e-1", received: str | None = None) -> Any:
    event = fixture("sms_delivery_report.eventgrid.json")[0]
    event["id"] = event_id
    event["data"].update(
        messageId=message_id,
        to="+18335852071",
        deliveryStatus=status,
        receivedTimestamp=received or dt.datetime.now(dt.UTC).isoformat(),
    )
    return event


async def deliver(*events: Any) -> None:
    req = func.HttpRequest(
        "POST",
        "http://localhost/api/events/delivery-reports",
        body=json.dumps(list(events)).encode(),
        headers={"aeg-event-type": "Notification"},
    )
    assert (await receive_delivery_reports(req)).status_code == 200


def every_attribute_value(capture: Captured) -> list[str]:
    values = []
    for span in capture.spans():
        values += [str(v) for v in (span.attributes or {}).values()]
        for link in span.links:
            values += [str(v) for v in (link.attributes or {}).values()]
    return values


async def test_send_span_counts_recipients_and_each_record_keeps_its_traceparent(
    store: InMemoryStore, otel: Captured
) -> None:
    items = await send_seed()
    span = otel.one("mms.send")
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes or {}) == {
        "mms.tag": "CustomerId",
        "mms.recipients": 3,
        "mms.accepted": 2,
        "mms.rejected": 1,
    }
    assert otel.metric("mms.sends", **{"mms.result": "accepted"}) == 2
    assert otel.metric("mms.sends", **{"mms.result": "rejected"}) == 1
    context = span.get_span_context()
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"  # W3C Trace Context
    assert {store.records[i["messageId"]].traceparent for i in items[:2]} == {expected}
    rejected = [r for r in store.records.values() if r.status is Status.REJECTED]
    assert [r.traceparent for r in rejected] == [expected]


async def test_a_send_that_fails_is_an_error_span_and_counts_its_recipients_as_error(
    store: InMemoryStore, otel: Captured
) -> None:
    settings = RUNTIME.settings
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(lambda r: httpx.Response(401)), store=store)
    body = json.dumps(fixture("seed_send_request.json")).encode()
    response = await send_message(func.HttpRequest("POST", "http://localhost/api/messages", body=body))
    assert response.status_code == 502
    span = otel.one("mms.send")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "AcsAuthFailed"
    assert otel.metric("mms.sends", **{"mms.result": "error", "error.type": "AcsAuthFailed"}) == 3


async def test_report_span_carries_the_conventions_and_links_to_the_send(store: InMemoryStore, otel: Captured) -> None:
    items = await send_seed()
    message_id = items[0]["messageId"]
    received = dt.datetime.now(dt.UTC).isoformat()
    await deliver(report(message_id, received=received))
    await deliver(report(message_id, received=received))  # Event Grid redelivers the same event
    send = otel.one("mms.send").get_span_context()
    first, second = otel.spans("mms.delivery_report")
    assert first.kind is SpanKind.CONSUMER
    attributes = dict(first.attributes or {})
    assert attributes == {
        # OpenTelemetry semantic conventions, messaging registry (opentelemetry-semantic-conventions
        # 0.66b1, messaging_attributes.py): messaging.system "eventgrid", messaging.operation.type "process"
        "messaging.system": "eventgrid",
        "messaging.operation.type": "process",
        "messaging.message.id": message_id,
        "mms.delivery_status": "Delivered",
        "mms.delivery_status_details": "No error.",
        "mms.outcome": "applied",
        "mms.status": "Delivered",
        "mms.to": "+1******2071",
        "mms.tag": "CustomerId",
    }
    assert [(link.context.trace_id, link.context.span_id) for link in first.links] == [(send.trace_id, send.span_id)]
    assert first.context.trace_id != send.trace_id  # its own trace, found from the send through the link
    assert (second.attributes or {})["mms.outcome"] == "duplicate"
    assert otel.metric("mms.reports", **{"mms.outcome": "applied", "mms.delivery_status": "Delivered"}) == 1
    assert otel.metric("mms.reports", **{"mms.outcome": "duplicate", "mms.delivery_status": "Delivered"}) == 1


async def test_latency_is_recorded_once_per_message_send_to_first_final_and_lag_per_report(
    store: InMemoryStore, otel: Captured
) -> None:
    items = await send_seed()
    sent_at = store.records[items[0]["messageId"]].created_at
    received = (sent_at + dt.timedelta(seconds=30)).isoformat()
    before = {tuple(sorted(a.items())): (s, c) for a, s, c in otel.histogram("mms.delivery.latency")}
    lags_before = sum(c for _, _, c in otel.histogram("mms.ingest.lag"))
    await deliver(report(items[0]["messageId"], "Delivered", "e-1", received))
    later = (sent_at + dt.timedelta(seconds=90)).isoformat()
    await deliver(report(items[0]["messageId"], "Failed", "e-2", later))  # a later final: not a second latency
    after = {tuple(sorted(a.items())): (s, c) for a, s, c in otel.histogram("mms.delivery.latency")}
    key = (("mms.status", "Delivered"),)
    total, count = after[key]
    old_total, old_count = before.get(key, (0.0, 0))
    assert count - old_count == 1
    assert total - old_total == pytest.approx(30.0, abs=0.01)
    assert after.get((("mms.status", "Failed"),), (0, 0)) == before.get((("mms.status", "Failed"),), (0, 0))
    assert sum(c for _, _, c in otel.histogram("mms.ingest.lag")) - lags_before == 2


async def test_a_report_before_its_send_has_no_link_and_no_latency(store: InMemoryStore, otel: Captured) -> None:
    latencies = sum(c for _, _, c in otel.histogram("mms.delivery.latency"))
    await deliver(report("m-early"))
    span = otel.one("mms.delivery_report")
    assert span.links == () or list(span.links) == []
    assert (span.attributes or {})["mms.outcome"] == "applied"
    assert sum(c for _, _, c in otel.histogram("mms.delivery.latency")) == latencies


async def test_poison_is_a_span_outcome_and_counted_by_its_reason_without_detail(
    store: InMemoryStore, otel: Captured
) -> None:
    await deliver(report("m-1") | {"eventType": "Some.Other.Type"})
    span = otel.one("mms.delivery_report")
    assert (span.attributes or {})["mms.outcome"] == "poison"
    assert (span.attributes or {})["mms.reason"] == "unknown event type"
    assert otel.metric("mms.poison", **{"mms.reason": "unknown event type"}) == 1
    assert store.poison and store.poison[0][1] == "unknown event type 'Some.Other.Type'"


async def test_no_span_attribute_holds_a_phone_number(store: InMemoryStore, otel: Captured) -> None:
    items = await send_seed()
    await deliver(report(items[0]["messageId"]), report("m-x") | {"eventType": "Bad"})
    values = every_attribute_value(otel)
    assert values
    assert [v for v in values if any(n in v or n[1:] in v for n in NUMBERS)] == []


async def test_expiry_run_is_a_span_with_the_count(store: InMemoryStore, otel: Captured) -> None:
    await send_seed()
    for message_id in list(store.due_entries):
        store.due_entries[message_id] = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    timer = TimerRequestConverter.decode(meta.Datum(json.dumps({"IsPastDue": False}), "json"), trigger_metadata={})
    await expire_stale_messages(timer)
    assert (otel.one("mms.expire").attributes or {})["mms.expired"] == 2


def test_publish_span_is_a_producer_span_named_by_the_conventions(otel: Captured) -> None:
    with telemetry.publish_span("m-1", 3):
        pass
    span = otel.one("mms.publish")
    assert span.kind is SpanKind.PRODUCER
    assert dict(span.attributes or {}) == {
        "messaging.system": "eventgrid",
        "messaging.operation.type": "send",
        "messaging.message.id": "m-1",
        "mms.revision": 3,
    }


async def test_telemetry_off_records_nothing_and_stamps_no_traceparent(store: InMemoryStore) -> None:
    assert not telemetry.enabled()
    items = await send_seed()
    assert store.records[items[0]["messageId"]].traceparent is None
    with telemetry.span("anything") as span:
        span.set("k", "v")
        span.link("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert telemetry.current_traceparent() is None


def test_log_event_fields_become_log_record_attributes() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(wiring._fields_processor())
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("mms_tracker.test_telemetry")
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        log_event(logger, logging.WARNING, "delivery_report", message_id="m-1", outcome="applied", to="+1******2071")
        log_event(logger, logging.WARNING, "expiry_run", expired=3, past_due=False, missing=None)
    finally:
        logger.removeHandler(handler)
    first, second = (r.log_record for r in exporter.get_finished_logs())
    assert first.body == "delivery_report message_id=m-1 outcome=applied to=+1******2071"  # the text line as it was
    attributes = dict(first.attributes or {})
    assert attributes["event"] == "delivery_report"
    assert (attributes["message_id"], attributes["outcome"], attributes["to"]) == ("m-1", "applied", "+1******2071")
    assert "fields" not in attributes
    assert {k: v for k, v in (second.attributes or {}).items() if k in ("expired", "past_due", "missing")} == {
        "expired": 3,
        "past_due": False,
    }


def test_wiring_with_neither_setting_configures_and_imports_nothing() -> None:
    """A fresh interpreter imports function_app (as the worker does) and no telemetry package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    code = (
        "import sys, function_app\n"
        "from mms_tracker import telemetry\n"
        "names = ('opentelemetry', 'azure.monitor')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(names))\n"
        "print(loaded, telemetry.enabled())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[] False"


def test_entra_id_authentication_uses_the_identity_the_authentication_string_names() -> None:
    # infra/app/function-app.bicep sets APPLICATIONINSIGHTS_AUTHENTICATION_STRING to
    # "ClientId=<client id>;Authorization=AAD", the format the Functions host documents for Entra ID.
    credential = wiring._credential({"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=abc;Authorization=AAD"})
    assert type(credential).__name__ == "ManagedIdentityCredential"
    assert wiring._credential({}) is None
    assert wiring._credential({"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=none"}) is None


def test_poison_kind_drops_the_detail() -> None:
    assert telemetry.poison_kind("unknown event type 'X'") == "unknown event type"
    assert telemetry.poison_kind("storage refused the record: PropertyValueTooLarge") == "storage refused the record"
    assert telemetry.poison_kind("no messageId; the poison record itself was refused: X") == "no messageId"
    assert telemetry.poison_kind("") == "unknown"


def test_a_connection_string_the_distro_refuses_leaves_telemetry_off_and_the_app_loading() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "InstrumentationKey=not-a-uuid"
    code = (
        "import function_app\n"
        "from mms_tracker import telemetry\n"
        "print(telemetry.enabled(), len(function_app.app.get_functions()) > 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False True"
    assert "telemetry_not_configured reason=ValueError" in result.stderr
    assert "not-a-uuid" not in result.stderr
