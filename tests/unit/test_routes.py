"""Every route and trigger against hand-written fakes: the store in a dict, ACS behind MockTransport.

These are the fast tests of the entry points' translation (request in, service call, response
out); the same routes run against a real Azurite in tests/integration and tests/e2e.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mms_tracker.api.blueprints.campaigns import create_campaign
from mms_tracker.api.blueprints.delivery_reports import on_delivery_report, receive_delivery_reports
from mms_tracker.api.blueprints.errors import answers_problems
from mms_tracker.api.blueprints.health import health
from mms_tracker.api.blueprints.messages import get_message_status, list_messages, send_message
from mms_tracker.api.blueprints.openapi import openapi
from mms_tracker.api.blueprints.tags import (
    export_tag_messages,
    export_tag_messages_by_query,
    tag_summary,
    tag_summary_by_query,
)
from mms_tracker.api.export import CSV_HEADER
from mms_tracker.api.http import header
from mms_tracker.api.models import MAX_TAG_CHARS
from mms_tracker.domain import Send, Status, apply_send
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.ports import StorageUnavailable
from mms_tracker.settings import Settings
from tests.fakes import InMemoryStore
from tests.openapi_check import assert_conforms
from tests.support import app_environment, body_bytes, content_type, fixture, http_request

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def accept_all(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    value = [
        {"to": r["to"], "messageId": f"m-{r['to']}", "httpStatusCode": 202, "successful": True}
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


def request(method: str, path: str, body: Any = None, **route_params: str) -> Request:
    url, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else (body or b"")
    return http_request(method, url, body=data, params=params, route_params=route_params)


def body_of(response: Response) -> Any:
    return json.loads(response.body)


def seed(store: InMemoryStore, message_id: str, tag: str = "t", accepted: bool = True) -> None:
    send = Send(message_id, "+18335852071", "+18004567891", tag, accepted, T0)
    store.records[message_id] = apply_send(None, send, T0).after


async def test_send_answers_acs_items_and_records_each_recipient(store: InMemoryStore) -> None:
    response = await send_message(request("POST", "/api/messages", fixture("seed_send_request.json")))
    assert response.status_code == 202
    assert_conforms("/messages", "post", 202, content_type(response), body_of(response))
    items = body_of(response)["value"]
    assert [i["successful"] for i in items] == [True, True, False]
    assert {items[0]["messageId"], items[1]["messageId"]} <= set(store.records)


async def test_send_with_a_bad_body_is_a_400_problem(store: InMemoryStore) -> None:
    response = await send_message(request("POST", "/api/messages", {"recipients": []}))
    assert response.status_code == 400
    assert_conforms("/messages", "post", 400, content_type(response), body_of(response))
    assert store.records == {}


async def test_get_answers_the_record_or_a_404_problem(store: InMemoryStore) -> None:
    seed(store, "m-1")
    found = await get_message_status(request("GET", "/api/messages/m-1", messageId="m-1"))
    assert found.status_code == 200
    assert_conforms("/messages/{messageId}", "get", 200, content_type(found), body_of(found))
    assert body_of(found)["status"] == "Accepted"
    missing = await get_message_status(request("GET", "/api/messages/nope", messageId="nope"))
    assert missing.status_code == 404
    assert_conforms("/messages/{messageId}", "get", 404, content_type(missing), body_of(missing))


async def test_list_pages_through_the_service_and_names_a_bad_parameter(store: InMemoryStore) -> None:
    for i in range(3):
        seed(store, f"m-{i}", accepted=i != 1)
    page = await list_messages(request("GET", "/api/messages?tag=t&pageSize=2"))
    assert page.status_code == 200
    assert_conforms("/messages", "get", 200, content_type(page), body_of(page))
    assert [i["messageId"] for i in body_of(page)["items"]] == ["m-0", "m-1"]
    rejected = await list_messages(request("GET", "/api/messages?tag=t&status=Rejected"))
    assert [i["messageId"] for i in body_of(rejected)["items"]] == ["m-1"]
    bad = await list_messages(request("GET", "/api/messages?tag=t&pageSize=1001"))
    assert bad.status_code == 400
    assert [e["field"] for e in body_of(bad)["errors"]] == ["pageSize"]


async def test_a_query_sent_as_raw_utf_8_bytes_is_read_as_utf_8(store: InMemoryStore) -> None:
    # curl sends `?tag=été` as raw UTF-8 bytes, and an ASGI server passes them on unchanged
    # (``query_string``); Starlette's QueryParams decodes them as latin-1 (``Ã©tÃ©``), where aiohttp,
    # which served func.HttpRequest locally before HTTP streams, read UTF-8. Percent-encoded, the
    # same tag must read the same.
    seed(store, "m-accent", tag="\u00e9t\u00e9")
    raw = await list_messages(http_request("GET", "/api/messages?tag=\u00e9t\u00e9&pageSize=5"))
    assert [i["messageId"] for i in body_of(raw)["items"]] == ["m-accent"]
    encoded = await list_messages(http_request("GET", "/api/messages?tag=%C3%A9t%C3%A9&pageSize=5"))
    assert body_of(encoded) == body_of(raw)
    last = await list_messages(http_request("GET", "/api/messages?tag=nope&tag=\u00e9t\u00e9"))
    assert [i["messageId"] for i in body_of(last)["items"]] == ["m-accent"]  # the last one given wins


async def test_summary_counts_every_status_zeros_included(store: InMemoryStore) -> None:
    seed(store, "m-a")
    seed(store, "m-b", accepted=False)
    seed(store, "m-c", tag="other")
    response = await tag_summary(request("GET", "/api/tags/t/summary", tag="t"))
    assert_conforms("/tags/{tag}/summary", "get", 200, content_type(response), body_of(response))
    body = body_of(response)
    assert {k: body[k] for k in ("tag", "total", "byStatus")} == {
        "tag": "t",
        "total": 2,
        "byStatus": {"Accepted": 1, "Delivered": 0, "Failed": 0, "Rejected": 1, "Expired": 0},
    }
    assert body["latency"]["count"] == 0 and body["latency"]["p50Seconds"] is None
    assert body["failureReasons"] == {}


async def test_the_csv_export_streams_a_page_per_chunk_and_is_cut_when_a_later_page_fails(
    store: InMemoryStore,
) -> None:
    for i in range(2500):  # three pages of EXPORT_PAGE_SIZE (1,000)
        seed(store, f"m-{i:04d}", tag="big")
    response = await export_tag_messages(request("GET", "/api/tags/big/messages.csv", tag="big"))
    assert isinstance(response, StreamingResponse) and response.status_code == 200
    assert content_type(response) == "text/csv"
    assert store.pages_read == 1  # the first page is read before the answer starts, the rest on demand
    chunks = aiter(response.body_iterator)
    first = await anext(chunks)
    assert isinstance(first, bytes) and first.count(b"\r\n") == 1 + 1000 and store.pages_read == 1
    second = await anext(chunks)
    assert isinstance(second, bytes) and second.count(b"\r\n") == 1000 and store.pages_read == 2
    store.down = True  # storage goes away after rows went out: the stream fails, it does not end
    with pytest.raises(StorageUnavailable):
        await anext(chunks)


async def test_the_csv_export_of_storage_that_is_down_is_a_503_problem_before_any_row(store: InMemoryStore) -> None:
    seed(store, "m-1", tag="t")
    store.down = True
    response = await export_tag_messages(request("GET", "/api/tags/t/messages.csv", tag="t"))
    assert response.status_code == 503 and content_type(response) == "application/problem+json"


async def test_the_csv_export_of_an_empty_tag_is_the_header_alone(store: InMemoryStore) -> None:
    response = await export_tag_messages(request("GET", "/api/tags/none/messages.csv", tag="none"))
    assert await body_bytes(response) == CSV_HEADER


async def test_a_utf_8_idempotency_key_is_read_as_utf_8_not_as_latin_1(store: InMemoryStore) -> None:
    # An ASGI server hands header values over as bytes and Starlette decodes them as latin-1
    # (starlette/datastructures.py, Headers); Kestrel, in front of the worker, accepts UTF-8 header
    # values by default (dotnet/aspnetcore#32448, a maintainer: "Kestrel accepts UTF-8 headers by
    # default"). 150 characters are 300 UTF-8 bytes: within the 200-character limit, and the key
    # (hence the campaign id derived from it) must be the one the client wrote.
    key = "\u00e9" * 150
    req = http_request("POST", "/api/campaigns", b"{}", headers={"Idempotency-Key": key})
    assert header(req, "idempotency-key") == key
    response = await create_campaign(req)
    assert response.status_code == 400
    assert "Idempotency-Key" not in body_of(response)["detail"]  # the body is what is wrong, not the key
    latin = http_request("GET", "/api/x")
    latin.scope["headers"] = [(b"x-k", b"caf\xe9")]  # not UTF-8: kept as the latin-1 text it reads as
    assert header(Request(latin.scope), "x-k") == "caf\u00e9"
    # A header sent twice is one value joined by ", " (RFC 9110, 5.3), as func.HttpRequest had it
    # from the host: not the first line alone, which would silently drop what the client also sent.
    twice = http_request("GET", "/api/x")
    twice.scope["headers"] = [(b"idempotency-key", b"a"), (b"idempotency-key", b"\xc3\xa9")]
    assert header(Request(twice.scope), "idempotency-key") == "a, \u00e9"


async def test_an_unexpected_failure_is_a_500_problem_not_the_workers_plain_text(
    store: InMemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    # In HTTP-streams mode the worker re-raises a function's exception inside its FastAPI route
    # (azure_functions_worker/http_v2.py, catch_all: ``if isinstance(http_resp, Exception): raise``),
    # so the client gets Starlette's ServerErrorMiddleware answer, a text/plain "Internal Server
    # Error"; CONTRACT.md: every error is application/problem+json. The local host hid this by
    # answering its own problem.
    @answers_problems
    async def broken(req: Request) -> Response:
        raise RuntimeError("internals +18335852071")

    caplog.set_level(logging.ERROR, logger="mms_tracker.http")
    response = await broken(http_request("GET", "/api/x"))
    assert response.status_code == 500 and content_type(response) == "application/problem+json"
    assert "internals" not in bytes(response.body).decode() and "1833585" not in bytes(response.body).decode()
    [logged] = [r for r in caplog.records if getattr(r, "event", None) == "route_failed"]
    assert "RuntimeError" in logged.getMessage() and "1833585" not in logged.getMessage()


async def test_an_oversized_send_body_is_refused_without_reading_it_all(store: InMemoryStore) -> None:
    # In HTTP-streams mode the body reaches the function as a stream (the worker's uvicorn); the
    # send route must stop at MAX_REQUEST_BYTES (2 MiB by default) rather than hold it all first.
    chunk, chunks = b"x" * 65536, 200  # 12.5 MiB on offer
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    scope = http_request("POST", "/api/messages").scope
    response = await send_message(Request(scope, receive))
    assert response.status_code == 413 and content_type(response) == "application/problem+json"
    assert pulled <= RUNTIME.settings.max_request_bytes // len(chunk) + 2, pulled


@pytest.mark.parametrize("route", [tag_summary, export_tag_messages])
async def test_a_tag_over_its_limit_in_the_path_is_a_400_naming_it(store: InMemoryStore, route: Any) -> None:
    tag = "t" * (MAX_TAG_CHARS + 1)  # what GET /api/messages?tag= refuses: the same rule on every tag route
    response = await route(request("GET", f"/api/tags/{tag}/x", tag=tag))
    assert response.status_code == 400 and [e["field"] for e in body_of(response)["errors"]] == ["tag"]
    ok = await route(request("GET", f"/api/tags/{tag[:-1]}/x", tag=tag[:-1]))
    assert ok.status_code == 200


@pytest.mark.parametrize("route", [tag_summary_by_query, export_tag_messages_by_query])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "is required"),
        ("tag=", "is required"),
        ("tag=" + "t" * (MAX_TAG_CHARS + 1), f"must be at most {MAX_TAG_CHARS} characters"),
    ],
    ids=["absent", "empty", "over-the-limit"],
)
async def test_the_query_form_refuses_a_tag_no_send_accepts_with_a_400_naming_it(
    store: InMemoryStore, route: Any, query: str, message: str
) -> None:
    response = await route(http_request("GET", "/api/tags/x?" + query))
    assert response.status_code == 400 and content_type(response) == "application/problem+json"
    assert [(e["field"], e["message"]) for e in body_of(response)["errors"]] == [("tag", message)]


async def test_the_query_form_answers_what_the_path_form_answers(store: InMemoryStore) -> None:
    seed(store, "m-a", tag="spring 2026")
    seed(store, "m-b", tag="spring 2026", accepted=False)
    path = await tag_summary(request("GET", "/api/tags/x/summary", tag="spring 2026"))
    query = await tag_summary_by_query(http_request("GET", "/api/tags/summary?tag=spring+2026"))
    assert_conforms("/tags/summary", "get", 200, content_type(query), body_of(query))
    assert body_of(query) == body_of(path) and body_of(query)["total"] == 2
    csv_path = await export_tag_messages(request("GET", "/api/tags/x/messages.csv?status=Rejected", tag="spring 2026"))
    csv_query = await export_tag_messages_by_query(
        http_request("GET", "/api/tags/messages.csv?status=Rejected&tag=spring%202026")
    )
    rows = await body_bytes(csv_path)
    assert await body_bytes(csv_query) == rows and rows.count(b"\r\n") == 2


async def test_health_is_ok_or_a_503_problem(store: InMemoryStore) -> None:
    assert (await health(request("GET", "/api/health"))).status_code == 200
    store.down = True
    down = await health(request("GET", "/api/health"))
    assert down.status_code == 503
    assert_conforms("/health", "get", 503, content_type(down), body_of(down))


async def test_openapi_route_serves_the_document(store: InMemoryStore) -> None:
    response = await openapi(request("GET", "/api/openapi.json"))
    assert body_of(response)["openapi"] == "3.1.0"


def grid_event(message_id: str, status: str = "Delivered") -> dict[str, Any]:
    [event] = copy.deepcopy(fixture("sms_delivery_report.eventgrid.json"))
    event["id"] = str(uuid.uuid4())
    event["data"] |= {"messageId": message_id, "deliveryStatus": status}
    return event  # type: ignore[no-any-return]


async def test_the_event_grid_trigger_applies_a_report(store: InMemoryStore) -> None:
    seed(store, "m-r")
    event = func.EventGridEvent(
        id="e-1",
        data=grid_event("m-r")["data"],
        topic="t",
        subject="s",
        event_type="Microsoft.Communication.SMSDeliveryReportReceived",
        event_time=T0,
        data_version="1.0",
    )
    await on_delivery_report(event)
    assert store.records["m-r"].status is Status.DELIVERED


async def test_the_batched_endpoint_records_reports_and_keeps_poison(store: InMemoryStore) -> None:
    seed(store, "m-b1")
    poison = grid_event("x") | {"eventType": "Unknown.Type"}
    req = http_request(
        "POST",
        "/api/events/delivery-reports",
        body=json.dumps([grid_event("m-b1"), poison]).encode(),
        headers={"aeg-event-type": "Notification"},
    )
    response = await receive_delivery_reports(req)
    assert response.status_code == 200
    assert store.records["m-b1"].status is Status.DELIVERED
    assert [reason for _, reason in store.poison] == ["unknown event type 'Unknown.Type'"]
