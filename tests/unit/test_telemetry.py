"""Spans, metrics and log attributes of the app's own work, read from in-memory exporters.

The routes and triggers run against the hand-written store and ACS behind ``httpx.MockTransport``;
tests/integration/test_telemetry.py adds the real table client and a real HTTP ACS (child spans).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.trace import SpanKind, StatusCode

from mms_tracker import telemetry
from mms_tracker.api.blueprints.delivery_reports import expire_stale_messages, receive_delivery_reports, reconcile_sends
from mms_tracker.api.blueprints.messages import send_message
from mms_tracker.domain import Send, Status, TrackingRecord, apply_send
from mms_tracker.logs import log_event
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.ports import PendingEntry, PublishFailed
from mms_tracker.service.status_events import BATCH_EVENTS, StatusPublishing, retry_pending
from mms_tracker.settings import Settings
from mms_tracker.telemetry import wiring
from tests.fakes import InMemoryStore, RecordsDown, accept_all
from tests.otel import Captured
from tests.support import ROOT, app_environment, fixture, http_request

TIMER = TimerRequestConverter.decode(meta.Datum(json.dumps({"IsPastDue": False}), "json"), trigger_metadata={})
NUMBERS = ("+18335852071", "+11234567890", "+18004567891")  # the seed request's recipients and sender


@pytest.fixture
def store() -> Iterator[InMemoryStore]:
    fake = InMemoryStore()
    settings = Settings.from_environment(app_environment("UseDevelopmentStorage=true"))
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(accept_all), store=fake)
    yield fake
    RUNTIME.configure(settings)


async def send_seed() -> list[dict[str, Any]]:
    body = json.dumps(fixture("seed_send_request.json")).encode()
    response = await send_message(http_request("POST", "http://localhost/api/messages", body=body))
    assert response.status_code == 202
    return json.loads(response.body)["value"]  # type: ignore[no-any-return]


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
    req = http_request(
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
    response = await send_message(http_request("POST", "http://localhost/api/messages", body=body))
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
    await expire_stale_messages(TIMER)
    assert (otel.one("mms.expire").attributes or {})["mms.expired"] == 2


class Topic:
    """An Event Grid topic that fails the first ``failures`` publishes and holds each one until ``open``."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.open = asyncio.Event()
        self.open.set()
        self.events: list[Mapping[str, Any]] = []

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        await self.open.wait()
        if self.failures:
            self.failures -= 1
            raise PublishFailed("HttpResponseError 503")
        self.events += events


class Outbox:
    """Records with pending events, indexed as the retry timer finds them."""

    def __init__(self, records: list[TrackingRecord]) -> None:
        self.records = {r.message_id: r for r in records}

    async def get(self, message_id: str) -> TrackingRecord | None:
        return self.records.get(message_id)

    async def pending_status_events(self, now: dt.datetime, limit: int) -> list[PendingEntry]:
        return [PendingEntry(m, c.revision, c.at, 0) for m, r in self.records.items() for c in r.pending][:limit]

    async def postpone_status_event(self, entry: PendingEntry, next_at: dt.datetime) -> None:
        pass

    async def acknowledge_status_events(self, accepted: Sequence[tuple[TrackingRecord, list[int]]]) -> None:
        for record, _ in accepted:
            self.records.pop(record.message_id, None)

    async def drop_status_entry(self, message_id: str, revision: int) -> None:
        pass


def created(message_id: str) -> TrackingRecord:
    send = Send(message_id, NUMBERS[0], NUMBERS[2], "camp", True, dt.datetime.now(dt.UTC))
    return apply_send(None, send, dt.datetime.now(dt.UTC)).after


def pending_gauge(otel: Captured, source: str) -> float | None:
    return otel.points().get(("mms.outbox.pending", frozenset({("mms.source", source)})))


async def test_each_publish_request_is_a_producer_span_named_by_the_conventions(otel: Captured) -> None:
    topic = Topic(failures=1)
    publishing = StatusPublishing(Outbox([]), topic, "/mms-tracker/local", retry_base_seconds=0.001)
    with telemetry.span("mms.delivery_report"):  # the write that woke the worker's publisher
        for n in range(BATCH_EVENTS + 1):
            publishing.notify(created(f"m{n}"))
    await asyncio.wait_for(publishing.drain(), timeout=10)
    failed, *published = otel.spans("mms.publish")
    assert {s.parent for s in (failed, *published)} == {None}  # the publisher's own traces, not the write's
    assert failed.kind is SpanKind.PRODUCER and failed.status.status_code is StatusCode.ERROR
    # opentelemetry-semantic-conventions 0.66b1, messaging_attributes.py: MESSAGING_SYSTEM
    # (MessagingSystemValues.EVENTGRID), MESSAGING_OPERATION_TYPE ("send"), MESSAGING_OPERATION_NAME,
    # MESSAGING_BATCH_MESSAGE_COUNT; error_attributes.py ERROR_TYPE.
    assert dict(failed.attributes or {}) == {
        "messaging.system": "eventgrid",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.batch.message_count": BATCH_EVENTS,
        "mms.outcome": "failed",
        "error.type": "PublishFailed",
    }
    assert [(s.attributes or {})["messaging.batch.message_count"] for s in published] == [BATCH_EVENTS, 1]
    assert {(s.attributes or {})["mms.outcome"] for s in published} == {"published"}
    single = dict(published[-1].attributes or {})
    assert single["messaging.message.id"] == topic.events[-1]["id"]  # the CloudEvent's id, one event only
    assert "messaging.message.id" not in (published[0].attributes or {})
    assert not any(number in value for value in every_attribute_value(otel) for number in NUMBERS)


async def test_outbox_pending_counts_what_the_worker_holds_and_what_the_timer_left(otel: Captured) -> None:
    topic = Topic()
    topic.open.clear()  # the topic holds the publish: the events wait in the worker's queue
    publishing = StatusPublishing(Outbox([]), topic, "/mms-tracker/local")
    for n in range(3):
        publishing.notify(created(f"w{n}"))
    assert pending_gauge(otel, "worker") == 3
    topic.open.set()
    await asyncio.wait_for(publishing.drain(), timeout=10)
    assert pending_gauge(otel, "worker") == 0

    failing = Outbox([created(f"t{n}") for n in range(4)])
    now = dt.datetime.now(dt.UTC)
    run = await retry_pending(failing, Topic(failures=1), "/mms-tracker/local", now, dt.timedelta(hours=1))
    assert (run.failed, run.remaining) == (4, 4)
    assert pending_gauge(otel, "timer") == 4
    run = await retry_pending(failing, Topic(), "/mms-tracker/local", now, dt.timedelta(hours=1))
    assert (run.published, run.remaining) == (4, 0)
    assert pending_gauge(otel, "timer") == 0


async def test_the_reconciler_is_a_span_with_its_counts_and_its_records_keep_the_sends_traceparent(
    otel: Captured,
) -> None:
    down = RecordsDown()
    settings = Settings.from_environment(app_environment("UseDevelopmentStorage=true"))
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(accept_all), store=down)
    try:
        await send_seed()  # ACS accepted; the records were not written; the intent stays
        assert not down.records
        send = otel.one("mms.send").get_span_context()
        [intent] = down.intents.values()
        traceparent = f"00-{send.trace_id:032x}-{send.span_id:016x}-{send.trace_flags:02x}"  # W3C Trace Context
        assert intent.traceparent == traceparent
        past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # older than SEND_RECONCILE_AFTER_SECONDS, unheld
        down.intents[intent.intent_id] = replace(intent, created_at=past, claimed_until=None)
        down.fail = False
        otel.exporter.clear()
        await reconcile_sends(TIMER)
        span = otel.one("mms.reconcile")
        assert span.parent is None  # a run of its own, not part of the send's trace
        assert dict(span.attributes or {}) == {
            "mms.recorded": 1,
            "mms.refused": 0,
            "mms.abandoned": 0,
            "mms.unknown": 0,
            "mms.pending": 0,
        }
        assert otel.metric("mms.reconciled", **{"mms.outcome": "recorded"}) == 1
        assert otel.metric("mms.reconciled", **{"mms.outcome": "pending"}) == 0
        assert {r.traceparent for r in down.records.values()} == {traceparent}
        accepted = next(r.message_id for r in down.records.values() if r.status is Status.ACCEPTED)
        await deliver(report(accepted))
        [link] = otel.one("mms.delivery_report").links
        assert (link.context.trace_id, link.context.span_id) == (send.trace_id, send.span_id)
    finally:
        RUNTIME.configure(settings)


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
    """A fresh interpreter imports function_app (as the worker does) and no telemetry SDK, exporter
    or distro. (FastAPI, which HTTP streams bring, imports the OpenTelemetry *API* by itself: its
    ``fastapi.telemetry`` module; the API alone records nothing.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    code = (
        "import sys, function_app\n"
        "from mms_tracker import telemetry\n"
        "names = ('opentelemetry.sdk', 'opentelemetry.exporter', 'opentelemetry.instrumentation', 'azure.monitor')\n"
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
