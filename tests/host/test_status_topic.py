"""The simulator's Event Grid topic, reached by the app's publisher (the real ``EventGridPublisherClient``).

What the simulator checks is what Event Grid and the Azure SDK do: the key travels in the
``aeg-sas-key`` header (azure-eventgrid, ``_legacy/_constants.py``, ``EVENTGRID_KEY_HEADER``, set
by ``AzureKeyCredentialPolicy`` for an ``AzureKeyCredential``), CloudEvents go as one batch with
``content-type: application/cloudevents-batch+json; charset=utf-8`` (azure-eventgrid,
``_legacy/aio/_publisher_client_async.py``, ``send``), and only 200 counts as accepted there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from azure.core.credentials import AzureKeyCredential

from localdev.simulator import TOPIC_KEY, TOPIC_PATH, Simulator, SimulatorConfig, topic_endpoint
from mms_tracker.adapters.eventgrid import EventGridStatusPublisher
from mms_tracker.domain import Send, apply_send
from mms_tracker.service.ports import PublishFailed
from mms_tracker.service.status_events import StatusPublishing, status_event
from tests.otel import Captured


@pytest.fixture
async def topic() -> AsyncIterator[tuple[Simulator, TestServer]]:
    sim = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused"))
    server = TestServer(sim.build())
    await server.start_server()
    yield sim, server
    await server.close()


def events(n: int) -> list[dict[str, Any]]:
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    found = []
    for i in range(n):
        record = apply_send(None, Send(f"m{i}", "+18335852071", "+18004567891", "t", True, at), at).after
        found.append(status_event(record, record.outbox[0], "/mms-tracker/local"))
    return found


async def test_the_publisher_delivers_a_batch_that_the_topic_keeps_in_order(
    topic: tuple[Simulator, TestServer],
) -> None:
    sim, server = topic
    publisher = EventGridStatusPublisher(topic_endpoint(server.port or 0), AzureKeyCredential(TOPIC_KEY))
    try:
        sent = events(3)
        await publisher.publish(sent)
    finally:
        await publisher.close()
    published = sim.topic.published
    assert [e["id"] for e in published] == [e["id"] for e in sent]
    assert published[0]["data"] == sent[0]["data"]
    for key in ("specversion", "type", "source", "subject", "datacontenttype"):
        assert published[0][key] == sent[0][key]
    assert published[0]["time"] == "2026-11-27T09:00:00.000Z"  # the SDK renders milliseconds
    async with httpx.AsyncClient(base_url=str(server.make_url(""))) as client:
        assert (await client.get("/simulator/published")).json() == {"value": published}


async def test_a_wrong_key_is_401_and_the_publisher_reports_a_failure(topic: tuple[Simulator, TestServer]) -> None:
    sim, server = topic
    publisher = EventGridStatusPublisher(topic_endpoint(server.port or 0), AzureKeyCredential("bm90LXRoZS1rZXk="))
    try:
        with pytest.raises(PublishFailed, match="401"):
            await publisher.publish(events(1))
    finally:
        await publisher.close()
    assert sim.topic.published == []


async def test_publish_unavailable_answers_503_to_the_next_n_publishes(topic: tuple[Simulator, TestServer]) -> None:
    sim, server = topic
    async with httpx.AsyncClient(base_url=str(server.make_url(""))) as client:
        faults = (await client.post("/simulator/faults", json={"publishUnavailable": 2})).json()
        assert faults["publishUnavailable"] == 2
    publisher = EventGridStatusPublisher(topic_endpoint(server.port or 0), AzureKeyCredential(TOPIC_KEY))
    try:
        for _ in range(2):
            with pytest.raises(PublishFailed, match="503"):
                await publisher.publish(events(1))
        await publisher.publish(events(1))  # the third goes through: the client itself never retried
    finally:
        await publisher.close()
    assert len(sim.topic.published) == 1 and sim.stats["publishUnavailable"] == 2


async def test_the_topic_refuses_what_is_not_a_cloudevents_batch(topic: tuple[Simulator, TestServer]) -> None:
    _, server = topic
    headers = {"aeg-sas-key": TOPIC_KEY, "content-type": "application/cloudevents-batch+json; charset=utf-8"}
    async with httpx.AsyncClient(base_url=str(server.make_url(""))) as client:
        assert (await client.post(TOPIC_PATH, content=b"{", headers=headers)).status_code == 400
        assert (await client.post(TOPIC_PATH, json=[{"id": "x"}], headers=headers)).status_code == 400
        plain = headers | {"content-type": "application/json"}
        assert (await client.post(TOPIC_PATH, json=events(1), headers=plain)).status_code == 400
        assert (await client.post(TOPIC_PATH, json=events(1), headers={"aeg-sas-key": ""})).status_code == 401
        await client.post("/simulator/reset")
        assert (await client.get("/simulator/published")).json() == {"value": []}


async def test_a_publish_is_an_mms_publish_span_parenting_the_topic_call(
    topic: tuple[Simulator, TestServer], otel: Captured
) -> None:
    sim, server = topic
    publisher = EventGridStatusPublisher(topic_endpoint(server.port or 0), AzureKeyCredential(TOPIC_KEY))
    publishing = StatusPublishing(_Outbox(), publisher, "/mms-tracker/local")
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    try:
        for i in range(3):
            publishing.notify(apply_send(None, Send(f"m{i}", "+18335852071", "+18004567891", "t", True, at), at).after)
        await publishing.drain()
    finally:
        await publisher.close()
    assert len(sim.topic.published) == 3
    span = otel.one("mms.publish")
    assert (span.attributes or {})["messaging.batch.message_count"] == 3
    assert (span.attributes or {})["mms.outcome"] == "published"
    children = [s for s in otel.spans() if s.parent is not None and s.parent.span_id == span.context.span_id]
    assert children, [s.name for s in otel.spans()]  # the SDK's call (azure-core tracing), inside the span
    values = [str(v) for s in otel.spans() for v in (s.attributes or {}).values()]
    assert not any("8335852071" in v or "8004567891" in v for v in values)  # no number from the events' data


class _Outbox:
    async def acknowledge_status_events(self, accepted: Any) -> None:
        pass
