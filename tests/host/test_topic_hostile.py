"""The simulator's Event Grid topic and its fault switch attacked by a careless or hostile client, and
the app's publisher held to the topic's size limit.

Never a 5xx; a refused publish keeps nothing, a refused fault setting changes no fault. The limits
are Event Grid's own (MicrosoftDocs/azure-docs, articles/event-grid/post-to-custom-topic.md):
"the array can have a total size of up to 1 MB", and "Array or event exceeds size limits | 413
Payload Too Large"; 400 for event data in an incorrect format, 401 for an invalid access key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from azure.core.credentials import AzureKeyCredential
from hypothesis import strategies as st

from localdev.simulator import TOPIC_KEY, TOPIC_PATH, Simulator, SimulatorConfig, topic_endpoint
from mms_tracker.adapters.eventgrid import EventGridStatusPublisher
from mms_tracker.domain import Send, apply_send
from mms_tracker.service.status_events import StatusPublishing, status_event
from tests.e2e.test_fuzz import draw, hostile_json, hostile_text

BATCH = "application/cloudevents-batch+json; charset=utf-8"
MAX_BATCH_BYTES = 1024 * 1024  # "1 MB", read as Event Grid's other limits are: MiB


@pytest.fixture
async def topic() -> AsyncIterator[tuple[Simulator, httpx.AsyncClient, TestServer]]:
    sim = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused"))
    server = TestServer(sim.build())
    await server.start_server()
    async with httpx.AsyncClient(base_url=str(server.make_url(""))) as client:
        yield sim, client, server
    await server.close()


def cloud_event(n: int, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "source": "/t", "type": "T", "data": data}


def hostile_bodies() -> st.SearchStrategy[bytes]:
    def dumped(value: Any) -> bytes:
        return json.dumps(value).encode("utf-8", "surrogatepass")

    events = st.lists(
        st.fixed_dictionaries(
            {"specversion": st.just("1.0") | hostile_json(), "id": hostile_text(), "source": st.just("/t")},
            optional={"type": hostile_json(), "data": hostile_json(), "time": hostile_text()},
        ),
        max_size=3,
    ).map(dumped)
    return st.one_of(
        events,
        hostile_json().map(dumped),
        st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.sampled_from(
            [b"[NaN]", b'[{"specversion": "1.0", "id": "x", "source": "s", "type": "t", "data": Infinity}]']
        ),
        st.binary(max_size=64),
    )


def hostile_headers() -> st.SearchStrategy[dict[str, str]]:
    header_text = (
        hostile_text()
        .map(lambda t: "".join(c for c in t if c == "\t" or (" " <= c <= "\xff" and c != "\x7f")).strip(" \t"))
        .filter(lambda t: len(t) <= 8000)
    )  # what a client can send: latin-1 without control characters, no space around it, under aiohttp's 8,190 bytes
    return st.fixed_dictionaries(
        {
            "aeg-sas-key": st.just(TOPIC_KEY) | header_text,
            "content-type": st.sampled_from([BATCH, "APPLICATION/CLOUDEVENTS-BATCH+JSON", "application/json"])
            | header_text,
        }
    )


async def test_hostile_publishes_never_5xx_and_a_refused_one_keeps_nothing(
    topic: tuple[Simulator, httpx.AsyncClient, TestServer],
) -> None:
    sim, client, _ = topic
    for body, headers in draw(st.tuples(hostile_bodies(), hostile_headers())):
        before = list(sim.topic.published)
        raw_headers = {k: v.encode("latin-1") for k, v in headers.items()}  # as sent: latin-1 bytes
        response = await client.post(TOPIC_PATH, content=body, headers=raw_headers)
        assert response.status_code in (200, 400, 401, 413), (body[:300], headers, response.text)
        if response.status_code != 200:
            assert sim.topic.published == before, (body[:300], headers)
            assert response.json()["error"]["code"], response.text
        published = await client.get("/simulator/published")
        assert published.status_code == 200 and published.json()["value"] == json.loads(json.dumps(sim.topic.published))


async def test_a_key_or_body_of_bytes_that_are_not_utf8_is_refused_not_a_500(
    topic: tuple[Simulator, httpx.AsyncClient, TestServer],
) -> None:
    sim, _, server = topic
    body = json.dumps([cloud_event(1)]).encode()
    for key, payload in ((b"\xff\xfe\xc3(", body), (TOPIC_KEY.encode(), b'[{"id": "\xff"}]')):
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            b"POST " + TOPIC_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/cloudevents-batch+json\r\naeg-sas-key: " + key + b"\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        status = int((await reader.read()).split()[1])
        writer.close()
        assert status in (400, 401), (key, payload, status)
    assert sim.topic.published == []


async def test_a_batch_over_1_mb_is_413_and_one_at_the_limit_is_kept(
    topic: tuple[Simulator, httpx.AsyncClient, TestServer],
) -> None:
    sim, client, _ = topic
    headers = {"aeg-sas-key": TOPIC_KEY, "content-type": BATCH}
    envelope = len(json.dumps([cloud_event(1, pad="")]).encode())
    at_limit = json.dumps([cloud_event(1, pad="x" * (MAX_BATCH_BYTES - envelope))]).encode()
    assert len(at_limit) == MAX_BATCH_BYTES
    over = json.dumps([cloud_event(2, pad="x" * (MAX_BATCH_BYTES - envelope + 1))]).encode()
    refused = await client.post(TOPIC_PATH, content=over, headers=headers)
    assert refused.status_code == 413 and refused.json()["error"]["code"]
    assert sim.topic.published == []
    assert (await client.post(TOPIC_PATH, content=at_limit, headers=headers)).status_code == 200
    assert [e["id"] for e in sim.topic.published] == ["e1"]


async def test_the_app_publishes_status_events_of_hostile_records_in_batches_the_topic_takes(
    topic: tuple[Simulator, httpx.AsyncClient, TestServer],
) -> None:
    """Ids, numbers and tags of astral characters, at their limits, weigh 12 bytes a character in the
    batch's JSON: 100 such events are over 1 MB, and the publisher must split them."""
    sim, _, server = topic
    publisher = EventGridStatusPublisher(topic_endpoint(server.port or 0), AzureKeyCredential(TOPIC_KEY))
    publishing = StatusPublishing(_Outbox(), publisher, "/mms-tracker/local", retry_base_seconds=0.01)
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    emoji = "\U0001f600"
    records = [
        apply_send(None, Send(emoji * 250 + f"{i:06d}", emoji * 64, emoji * 64, emoji * 256, True, at), at).after
        for i in range(100)
    ]
    assert sum(len(json.dumps(status_event(r, r.outbox[0], "/mms-tracker/local"))) for r in records) > MAX_BATCH_BYTES
    try:
        for record in records:
            publishing.notify(record)
        await asyncio.wait_for(publishing.drain(), timeout=15)
    finally:
        await publishing.close()
        await publisher.close()
    assert sorted(e["data"]["messageId"] for e in sim.topic.published) == sorted(r.message_id for r in records)
    assert publishing.failures == 0 and sim.stats["publishes"] >= 2


class _Outbox:
    async def acknowledge_status_events(self, accepted: Any) -> None:
        pass


FAULT_NAMES = ("throttle", "retryAfter", "unavailable", "loseResponse", "publishUnavailable")


def fault_bodies() -> st.SearchStrategy[bytes]:
    values = st.integers(-2, 5) | st.sampled_from([1.5, 1e400, -1e400, True, None, "3", "x", [], {}]) | hostile_json()
    documents = st.dictionaries(st.sampled_from(FAULT_NAMES) | hostile_text(), values, max_size=4)
    return st.one_of(
        documents.map(lambda d: json.dumps(d).encode("utf-8", "surrogatepass")),
        hostile_json().map(lambda d: json.dumps(d).encode("utf-8", "surrogatepass")),
        st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.sampled_from([b'{"throttle": 1e400}', b'{"publishUnavailable": NaN}', b'{"throttle": 2, "retryAfter": -5}']),
        st.binary(max_size=64),
    )


async def faults_now(client: httpx.AsyncClient) -> dict[str, Any]:
    stats = (await client.get("/simulator/stats")).json()
    return stats["faults"]  # type: ignore[no-any-return]


async def test_hostile_fault_settings_are_refused_changing_nothing_or_set_as_given(
    topic: tuple[Simulator, httpx.AsyncClient, TestServer],
) -> None:
    _, client, _ = topic
    known = {"throttle": 1, "retryAfter": 7, "unavailable": 2, "loseResponse": 3, "publishUnavailable": 4}
    for body in draw(fault_bodies()):
        assert (await client.post("/simulator/faults", json=known)).status_code == 200
        before = await faults_now(client)
        response = await client.post("/simulator/faults", content=body, headers={"content-type": "application/json"})
        assert response.status_code in (200, 400), (body[:300], response.text)
        if response.status_code == 400:
            assert await faults_now(client) == before, body[:300]
            continue
        given = json.loads(body)
        assert all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in given.values()), body
        assert set(given) <= set(FAULT_NAMES), body
        assert response.json()["publishUnavailable"] == given.get("publishUnavailable", 0)
