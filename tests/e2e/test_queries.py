"""The query routes over the local host against Azurite, checked against the OpenAPI document."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from mms_tracker.api.openapi import openapi_document
from mms_tracker.domain import DeliveryReport, Send, Status
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.tracking import record_report, record_sends
from tests.openapi_check import DOCUMENT, assert_conforms
from tests.support import Azurite, app_environment, fixture, serve_function_app

pytestmark = pytest.mark.e2e

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)


def fake_acs(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        202,
        json={
            "value": [
                {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
                for r in body["recipients"]
            ]
        },
    )


@pytest.fixture
async def api(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    client = await serve_function_app(monkeypatch, app_environment(azurite.connection_string))
    RUNTIME.configure(RUNTIME.settings, acs_transport=httpx.MockTransport(fake_acs))
    yield client
    await client.close()
    await RUNTIME.aclose()


async def checked(client: Any, method: str, url: str, template: str, **kwargs: Any) -> tuple[int, Any]:
    response = await client.request(method, url, **kwargs)
    body = await response.json()
    assert_conforms(template, method.lower(), response.status, response.headers["Content-Type"], body)
    return response.status, body


async def seed_tag(tag: str, count: int, status_of: Any = None) -> list[str]:
    store = RUNTIME.store()
    ids = [f"{tag}-{i:04d}" for i in range(count)]
    sends = [Send(m, "+18335852071", "+18004567891", tag, True, T0) for m in ids]
    for start in range(0, count, 50):
        await record_sends(store, sends[start : start + 50], T0, WINDOW)
    return ids


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi_document())


async def test_paging_returns_each_id_exactly_once(api: Any) -> None:
    ids = await seed_tag("paged", 230)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        url = "/api/messages?tag=paged&pageSize=17" + (f"&continuationToken={token}" if token else "")
        status, body = await checked(api, "GET", url, "/messages")
        assert status == 200
        seen += [i["messageId"] for i in body["items"]]
        assert all("events" not in i for i in body["items"])
        pages += 1
        token = body["continuationToken"]
        if token is None:
            break
    assert sorted(seen) == ids
    assert pages == 14


async def test_status_filter(api: Any) -> None:
    ids = await seed_tag("filtered", 12)
    store = RUNTIME.store()
    for m in ids[:5]:
        await record_report(
            store,
            DeliveryReport(
                f"e-{m}", "Microsoft.Communication.SMSDeliveryReportReceived", m, "Delivered", "No error.", T0
            ),
            T0,
        )
    status, body = await checked(api, "GET", "/api/messages?tag=filtered&status=Delivered", "/messages")
    assert status == 200 and sorted(i["messageId"] for i in body["items"]) == ids[:5]
    _, accepted = await checked(api, "GET", "/api/messages?tag=filtered&status=Accepted&pageSize=1000", "/messages")
    assert len(accepted["items"]) == 7


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "tag"),
        ("?status=Delivered", "tag"),
        ("?tag=x&status=Lost", "status"),
        ("?tag=x&pageSize=0", "pageSize"),
        ("?tag=x&pageSize=1001", "pageSize"),
        ("?tag=x&pageSize=ten", "pageSize"),
        ("?tag=x&continuationToken=garbled!!", "continuationToken"),
        (
            "?tag=x&continuationToken=" + base64.urlsafe_b64encode(b"0" * 16 + b'{"p":{},"t":"x","s":null}').decode(),
            "continuationToken",
        ),
    ],
)
async def test_bad_list_queries_are_400_naming_the_field(api: Any, query: str, field: str) -> None:
    status, body = await checked(api, "GET", f"/api/messages{query}", "/messages")
    assert status == 400
    assert field in [e["field"] for e in body["errors"]]


@pytest.mark.parametrize(
    ("query", "field"), [("?tag=x&pageSize=0", "pageSize"), ("", "tag"), ("?tag=x&status=Lost", "status")]
)
async def test_a_bad_query_parameter_is_described_as_a_query_problem(api: Any, query: str, field: str) -> None:
    status, body = await checked(api, "GET", f"/api/messages{query}", "/messages")
    assert status == 400
    assert (body["title"], body["detail"]) == ("Invalid query", "The query string is not valid.")
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_token_for_another_tag_is_refused(api: Any) -> None:
    await seed_tag("tok", 5)
    _, first = await checked(api, "GET", "/api/messages?tag=tok&pageSize=2", "/messages")
    status, _ = await checked(
        api, "GET", f"/api/messages?tag=other&continuationToken={first['continuationToken']}", "/messages"
    )
    assert status == 400


async def test_summary_equals_a_count_over_the_records_after_a_burst_of_concurrent_reports(api: Any) -> None:
    ids = await seed_tag("burst", 40)
    rng = random.Random(7)
    reports = [
        DeliveryReport(
            f"ev-{n}",
            "Microsoft.Communication.SMSDeliveryReportReceived",
            rng.choice(ids),
            rng.choice(["Delivered", "Failed", "Sent"]),
            None,
            T0 + dt.timedelta(seconds=rng.randint(0, 99)),
        )
        for n in range(160)
    ]
    store = RUNTIME.store()
    await asyncio.gather(*(record_report(store, r, T0) for r in reports))
    status, summary = await checked(api, "GET", "/api/tags/burst/summary", "/tags/{tag}/summary")
    assert status == 200
    records = [await store.get(m) for m in ids]
    expected = Counter(r.status.value for r in records if r is not None)
    assert summary["total"] == 40
    assert summary["byStatus"] == {s.value: expected.get(s.value, 0) for s in Status}


async def test_summary_of_an_unknown_tag_is_all_zeros(api: Any) -> None:
    _, summary = await checked(api, "GET", "/api/tags/nobody/summary", "/tags/{tag}/summary")
    assert {k: summary[k] for k in ("tag", "total", "byStatus")} == {
        "tag": "nobody",
        "total": 0,
        "byStatus": {s.value: 0 for s in Status},
    }
    latency = summary["latency"]
    assert (latency["p50Seconds"], latency["p90Seconds"], latency["p99Seconds"], latency["count"]) == (
        None,
        None,
        None,
        0,
    )
    assert {b["count"] for b in latency["histogram"]} == {0} and summary["failureReasons"] == {}


async def test_send_and_get_responses_conform_to_the_document(api: Any) -> None:
    status, sent = await checked(api, "POST", "/api/messages", "/messages", json=fixture("seed_send_request.json"))
    assert status == 202
    status, _ = await checked(api, "GET", f"/api/messages/{sent['value'][0]['messageId']}", "/messages/{messageId}")
    assert status == 200
    status, _ = await checked(api, "GET", "/api/messages/unknown", "/messages/{messageId}")
    assert status == 404
    status, _ = await checked(api, "POST", "/api/messages", "/messages", data=b"[]")
    assert status == 400
    status, _ = await checked(api, "GET", "/api/health", "/health")
    assert status == 200
    status, document = await checked(api, "GET", "/api/openapi.json", "/openapi.json")
    assert status == 200 and document == DOCUMENT


# --- bounded fuzz of every route against the document ------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
SEED = fixture("seed_send_request.json")
SEND_FIELDS = sorted(DOCUMENT["components"]["schemas"]["MmsSendMessageRequest"]["properties"])


def mutated_seed() -> st.SearchStrategy[bytes]:
    """The seed request with some of its documented fields dropped or replaced by arbitrary JSON."""
    changes = st.dictionaries(st.sampled_from(SEND_FIELDS), st.none() | JSON_VALUES, max_size=3)
    return changes.map(lambda c: json.dumps({k: v for k, v in (SEED | c).items() if v is not None}).encode())


PATH_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), min_size=1, max_size=30)


def requests() -> st.SearchStrategy[tuple[str, str, dict[str, str], bytes | None]]:
    list_query = st.fixed_dictionaries(
        {},
        optional={
            "tag": st.text(max_size=40),
            "status": st.sampled_from([s.value for s in Status]) | st.text(max_size=8),
            "pageSize": st.integers(-5, 2000).map(str) | st.text(max_size=5),
            "continuationToken": st.text(max_size=40),
        },
    )
    bodies = mutated_seed() | JSON_VALUES.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)
    return st.one_of(
        st.tuples(st.just("GET"), st.just("/api/messages"), list_query, st.none()),
        st.tuples(st.just("POST"), st.just("/api/messages"), st.just({}), bodies),
        st.tuples(st.just("GET"), PATH_TEXT.map(lambda t: f"/api/messages/{t}"), st.just({}), st.none()),
        st.tuples(st.just("GET"), PATH_TEXT.map(lambda t: f"/api/tags/{t}/summary"), st.just({}), st.none()),
    )


async def test_fuzzed_requests_never_5xx_and_every_error_is_problem_json(api: Any) -> None:
    cases: list[tuple[str, str, dict[str, str], bytes | None]] = []

    @settings(max_examples=120, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(requests())
    def collect(case: tuple[str, str, dict[str, str], bytes | None]) -> None:
        cases.append(case)

    collect()
    for method, path, params, body in cases:
        response = await api.request(method, path, params=params, data=body)
        text = await response.text()
        assert response.status < 500, (method, path, params, body, response.status, text)
        if response.status >= 400:
            assert response.headers["Content-Type"].startswith("application/problem+json"), (path, text)
            problem = json.loads(text)
            assert {"title", "status", "detail"} <= set(problem)
