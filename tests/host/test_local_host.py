"""The local Functions host against the behaviours of the real one (docs/development.md, "The local Functions host")."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from yarl import URL

from localdev.host import LocalHost, UnsupportedFunction, escape_control, index_functions
from tests.support import fixture, poll_async

KEY = "local-test-key"


class Recorder:
    def __init__(self) -> None:
        self.events: list[func.EventGridEvent | func.CloudEvent] = []
        self.ticks: list[func.TimerRequest] = []
        self.gate = asyncio.Event()  # the streamed route's second chunk waits for it
        self.chunks_made = 0
        self.stream_closed = False  # the streamed route's body generator ran its ``finally``


def build_app(recorder: Recorder) -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="items/{itemId}", methods=["GET", "DELETE"])
    async def get_item(req: Request) -> Response:
        return Response(
            json.dumps(
                {
                    "route": dict(req.path_params),
                    "query": dict(req.query_params),
                    "header": req.headers.get("x-custom"),
                    "method": req.method,
                    "path": req.url.path,
                    "invocation_ids": req.headers.getlist("x-ms-invocation-id"),
                }
            ),
            media_type="application/json",
            headers={"x-echo": req.headers.get("x-custom") or ""},  # latin-1 text of the bytes, as sent back
        )

    @app.route(route="items/special", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    async def special(req: Request) -> Response:
        return Response("literal wins", status_code=200)

    @app.route(route="items", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    async def create_item(req: Request) -> Response:
        body = await req.json()
        return Response(
            json.dumps({"got": body}),
            status_code=201,
            media_type="application/json",
            headers={"Location": "/api/items/1"},
        )

    @app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
    async def boom(req: Request) -> Response:
        raise RuntimeError("secret internals")

    @app.route(route="stream", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    async def stream(req: Request) -> Response:
        fail = req.query_params.get("fail")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                recorder.chunks_made += 1
                yield b"first,"
                await recorder.gate.wait()  # the client must have the first chunk before the second exists
                if fail == "late":
                    raise RuntimeError("storage went away")
                recorder.chunks_made += 1
                yield b"second"
                await recorder.gate.wait()
                yield b",third" * (1 << 16)  # large enough to meet a closed socket, not a kernel buffer
            finally:
                recorder.stream_closed = True

        if fail == "early":
            raise RuntimeError("before any byte")
        return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8")

    @app.route(route="admin-op", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
    async def admin_op(req: Request) -> Response:
        return Response("ok")

    @app.event_grid_trigger(arg_name="event")
    async def on_event(event: func.EventGridEvent) -> None:
        data = event.get_json()
        if isinstance(data, dict) and data.get("fail"):
            raise RuntimeError("transient")
        recorder.events.append(event)

    @app.timer_trigger(schedule="* * * * * *", arg_name="timer", run_on_startup=False)
    async def tick(timer: func.TimerRequest) -> None:
        recorder.ticks.append(timer)

    return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def make_client(recorder: Recorder, **options: Any) -> TestClient[Any, Any]:
    host = LocalHost(index_functions(build_app(recorder)), **options)
    client: TestClient[Any, Any] = TestClient(TestServer(host.build()))
    await client.start_server()
    return client


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[TestClient[Any, Any]]:
    c = await make_client(recorder, run_timers=False)
    yield c
    await c.close()


@pytest.fixture
async def keyed_client(recorder: Recorder) -> AsyncIterator[TestClient[Any, Any]]:
    c = await make_client(recorder, run_timers=False, function_key=KEY, max_body_bytes=1024)
    yield c
    await c.close()


WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_event"


def notification(body: Any, **headers: str) -> dict[str, Any]:
    return {"json": body, "headers": {"aeg-event-type": "Notification", **headers}}


def cloud_event(event_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/subscriptions/x/resourceGroups/rg/providers/microsoft.communication/communicationservices/acs",
        "type": "Microsoft.Communication.SMSDeliveryReportReceived",
        "subject": "/phonenumber/15555555555",
        "time": "2020-09-18T00:22:20.2855749Z",
        "datacontenttype": "application/json",
        "data": data,
    }


# --- HTTP triggers -------------------------------------------------------------------------------


async def test_route_parameters_query_and_headers_reach_the_function(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/items/abc-123?x=1", headers={"x-custom": "hello"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = await response.json()
    assert [uuid.UUID(i).version for i in body.pop("invocation_ids")] == [4]
    assert body == {
        "route": {"itemId": "abc-123"},
        "query": {"x": "1"},
        "header": "hello",
        "method": "GET",
        "path": "/api/items/abc-123",
    }


async def test_a_streamed_response_reaches_the_client_chunk_by_chunk(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    # The worker serves FastAPI responses through its ASGI server (HTTP streams); so does this host:
    # the first chunk arrives while the second does not exist yet (a buffering host would hang here).
    response = await client.get("/api/stream")
    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.headers
    async with asyncio.timeout(10):
        first = await response.content.readexactly(len(b"first,"))
    assert first == b"first," and recorder.chunks_made == 1
    recorder.gate.set()
    assert await response.read() == b"second" + b",third" * (1 << 16)


async def test_a_stream_that_fails_half_way_is_cut_not_finished(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    recorder.gate.set()
    response = await client.get("/api/stream?fail=late")
    assert response.status == 200  # the headers went out before the failure
    with pytest.raises(aiohttp.ClientPayloadError):  # no last chunk: the client knows the body is incomplete
        await response.read()


async def test_a_client_that_leaves_mid_stream_closes_the_body_and_is_no_error(
    client: TestClient[Any, Any], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # A download the operator cancels is not a failure: uvicorn, the worker's ASGI server, runs
    # Starlette at ASGI spec 2.3 (uvicorn/protocols/http/h11_impl.py, httptools_impl.py), where
    # StreamingResponse listens for ``http.disconnect`` and cancels the body (starlette/responses.py),
    # and uvicorn logs nothing for a response the client left (``run_asgi``: only when not disconnected).
    caplog.set_level(logging.INFO)
    response = await client.get("/api/stream")
    async with asyncio.timeout(10):
        assert await response.content.readexactly(len(b"first,")) == b"first,"
    response.connection.transport.abort()  # type: ignore[union-attr]  # the client goes away
    response.close()
    recorder.gate.set()
    await poll_async(lambda: _true(recorder.stream_closed))  # the body generator is closed, not left pending
    await poll_async(lambda: _true(any(getattr(r, "event", None) == "http_request" for r in caplog.records)))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.name, r.getMessage()) for r in errors]


async def _true(value: bool) -> bool:
    return value


async def test_a_function_failing_before_its_stream_starts_is_the_workers_plain_500(
    client: TestClient[Any, Any],
) -> None:
    # What Microsoft's runtime answers (its uvicorn's own 500), held in tests/runtime/test_case_table.py.
    response = await client.get("/api/stream?fail=early")
    assert (response.status, response.headers["content-type"]) == (500, "text/plain; charset=utf-8")
    assert await response.text() == "Internal Server Error"


@pytest.mark.parametrize(
    ("raw", "route", "path"),
    [
        ("/api/items/a%2Fb", "a%2Fb", "/api/items/a/b"),  # Kestrel keeps %2F; uvicorn's path decodes it
        ("/api/items/a%2fb%20c", "a%2fb c", "/api/items/a/b c"),
        ("/api/items/%C3%A9t%C3%A9", "\u00e9t\u00e9", "/api/items/\u00e9t\u00e9"),
        ("/api/items/%FF", "%FF", "/api/items/\ufffd"),  # not UTF-8: kept in the route value, U+FFFD in the path
    ],
)
async def test_a_route_value_is_what_the_hosts_routing_found(
    client: TestClient[Any, Any], raw: str, route: str, path: str
) -> None:
    response = await client.get(URL(raw, encoded=True))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["route"], body["path"]) == ({"itemId": route}, path)


async def test_a_path_holding_a_newline_before_its_end_is_the_workers_404(client: TestClient[Any, Any]) -> None:
    # The worker's one route, "/{path:path}", does not match it (tests/runtime/test_case_table.py).
    response = await client.get(URL("/api/items/a%0Ab", encoded=True))
    assert (response.status, await response.json()) == (404, {"detail": "Not Found"})
    assert (await client.get(URL("/api/items/ab%0A", encoded=True))).status == 200


async def test_a_clients_own_invocation_id_is_replaced_by_the_hosts(client: TestClient[Any, Any]) -> None:
    first = await (await client.get("/api/items/1", headers={"x-ms-invocation-id": "mine"})).json()
    second = await (await client.get("/api/items/1")).json()
    ids = first["invocation_ids"] + second["invocation_ids"]
    assert len(ids) == 2 and "mine" not in ids and ids[0] != ids[1]
    assert all(uuid.UUID(i) for i in ids)


async def test_header_bytes_and_the_raw_query_reach_the_function_as_an_asgi_server_gives_them(
    client: TestClient[Any, Any],
) -> None:
    # Starlette decodes header values as latin-1 (its Headers class); the bytes are passed unchanged.
    response = await client.get("/api/items/a%20b?x=%E2%82%AC&x=2&y=%20", headers={"x-custom": "\u20ac"})
    body = await response.json()
    assert body["route"] == {"itemId": "a b"}
    assert body["query"] == {"x": "2", "y": " "}
    assert body["header"] == "\u20ac".encode().decode("latin-1")


async def test_header_bytes_a_function_echoes_go_back_unchanged(client: TestClient[Any, Any]) -> None:
    # Starlette encodes response header values as latin-1 (Response.init_headers) and uvicorn writes
    # those bytes as they are; echoing a header (the webhook's WebHook-Allowed-Origin does) must not
    # encode its UTF-8 bytes a second time.
    response = await client.get("/api/items/x", headers={"x-custom": "\u00e9\u20ac"})
    assert dict(response.raw_headers)[b"x-echo"] == "\u00e9\u20ac".encode()


async def test_literal_route_is_preferred_over_a_parameter(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/items/special")
    assert await response.text() == "literal wins"


async def test_function_gets_body_and_response_headers_come_back(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/items", json={"a": 1})
    assert response.status == 201
    assert response.headers["Location"] == "/api/items/1"
    assert await response.json() == {"got": {"a": 1}}


async def test_undeclared_method_is_405_with_allow(client: TestClient[Any, Any]) -> None:
    response = await client.put("/api/items/abc")
    assert response.status == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "DELETE"}
    assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_unknown_route_is_404_problem(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/nothing/here")
    assert response.status == 404
    assert (await response.json())["status"] == 404


async def test_failing_function_is_500_without_internals(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/boom")
    assert (response.status, await response.text()) == (500, "Internal Server Error")


async def test_no_key_needed_when_local_function_key_is_unset(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/api/items/1")).status == 200
    assert (await client.post("/api/admin-op")).status == 200


@pytest.mark.parametrize("path", ["/api/items/1", "/api/items/1?code=wrong"])
async def test_function_route_without_the_key_is_401(keyed_client: TestClient[Any, Any], path: str) -> None:
    response = await keyed_client.get(path)
    assert response.status == 401


async def test_function_key_accepted_as_header_or_code(keyed_client: TestClient[Any, Any]) -> None:
    assert (await keyed_client.get("/api/items/1", headers={"x-functions-key": KEY})).status == 200
    assert (await keyed_client.get(f"/api/items/1?code={KEY}")).status == 200
    assert (await keyed_client.post("/api/admin-op", headers={"x-functions-key": KEY})).status == 200
    assert (await keyed_client.post("/api/admin-op")).status == 401


async def test_anonymous_route_never_asks_for_a_key(keyed_client: TestClient[Any, Any]) -> None:
    assert (await keyed_client.get("/api/items/special")).status == 200


async def test_body_over_the_limit_is_413(keyed_client: TestClient[Any, Any]) -> None:
    response = await keyed_client.post("/api/items", data=b"x" * 2048)
    assert response.status == 413
    assert response.headers["Content-Type"].startswith("application/problem+json")


# --- Event Grid webhook --------------------------------------------------------------------------


async def test_subscription_validation_answers_the_code(client: TestClient[Any, Any], recorder: Recorder) -> None:
    response = await client.post(
        WEBHOOK,
        json=fixture("subscription_validation.eventgrid.json"),
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert response.status == 200
    assert await response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert recorder.events == []


async def test_notification_converts_the_event_grid_fixture(client: TestClient[Any, Any], recorder: Recorder) -> None:
    response = await client.post(WEBHOOK, **notification(fixture("sms_delivery_report.eventgrid.json")))
    assert response.status == 202
    [event] = recorder.events
    assert isinstance(event, func.EventGridEvent)
    assert event.id == "Outgoing_202009180022138813a09b-0cbf-4304-9b03-1546683bb910"
    assert event.event_type == "Microsoft.Communication.SMSDeliveryReportReceived"
    assert event.event_time == dt.datetime(2020, 9, 18, 0, 22, 20, tzinfo=dt.UTC)
    assert event.get_json()["deliveryStatus"] == "Delivered"


async def test_notification_invokes_once_per_event(client: TestClient[Any, Any], recorder: Recorder) -> None:
    [template] = fixture("sms_delivery_report.eventgrid.json")
    batch = []
    for i in range(5):
        event = copy.deepcopy(template)
        event["id"] = f"event-{i}"
        batch.append(event)
    response = await client.post(WEBHOOK, **notification(batch))
    assert response.status == 202
    assert sorted(e.id for e in recorder.events) == [f"event-{i}" for i in range(5)]


async def test_cloudevents_single_and_batch_become_cloud_events(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    single = await client.post(WEBHOOK, **notification(cloud_event("ce-1", {"MessageId": "m1"})))
    batch = await client.post(WEBHOOK, **notification([cloud_event("ce-2", {}), cloud_event("ce-3", {})]))
    assert (single.status, batch.status) == (202, 202)
    assert sorted(e.id for e in recorder.events) == ["ce-1", "ce-2", "ce-3"]
    first = next(e for e in recorder.events if e.id == "ce-1")
    assert isinstance(first, func.CloudEvent)
    assert first.type == "Microsoft.Communication.SMSDeliveryReportReceived"
    assert first.get_json() == {"MessageId": "m1"}


async def test_a_failing_event_makes_the_delivery_500(client: TestClient[Any, Any], recorder: Recorder) -> None:
    [good] = fixture("sms_delivery_report.eventgrid.json")
    bad = {**good, "id": "bad", "data": {"fail": True}}
    response = await client.post(WEBHOOK, **notification([good, bad]))
    assert response.status == 500
    assert [e.id for e in recorder.events] == [good["id"]]


async def test_events_of_a_delivery_run_concurrently(recorder: Recorder) -> None:
    app = func.FunctionApp()
    running: list[int] = []
    peak: list[int] = [0]

    @app.event_grid_trigger(arg_name="event")
    async def slow(event: func.EventGridEvent) -> None:
        running.append(1)
        peak[0] = max(peak[0], len(running))
        await asyncio.sleep(0.05)
        running.pop()

    client: TestClient[Any, Any] = TestClient(TestServer(LocalHost(index_functions(app), run_timers=False).build()))
    await client.start_server()
    try:
        events = [{"id": str(i), "eventType": "t", "data": {}, "eventTime": "2020-01-01T00:00:00Z"} for i in range(4)]
        response = await client.post("/runtime/webhooks/eventgrid?functionName=slow", **notification(events))
        assert response.status == 202
        assert peak[0] == 4
    finally:
        await client.close()


async def test_unsubscribe_is_accepted(client: TestClient[Any, Any], recorder: Recorder) -> None:
    response = await client.post(WEBHOOK, json=[], headers={"aeg-event-type": "Unsubscribe"})
    assert response.status == 202
    assert recorder.events == []


@pytest.mark.parametrize("headers", [{}, {"aeg-event-type": "Bogus"}])
async def test_missing_or_unknown_event_type_header_is_400(
    client: TestClient[Any, Any], recorder: Recorder, headers: dict[str, str]
) -> None:
    response = await client.post(WEBHOOK, json=fixture("sms_delivery_report.eventgrid.json"), headers=headers)
    assert response.status == 400
    assert recorder.events == []


async def test_unknown_function_name_is_404(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/runtime/webhooks/eventgrid?functionName=nope", **notification(fixture("sms_delivery_report.eventgrid.json"))
    )
    assert response.status == 404
    http_function = await client.post("/runtime/webhooks/eventgrid?functionName=get_item", **notification([]))
    assert http_function.status == 404


async def test_webhook_path_is_case_insensitive_and_code_is_optional(
    keyed_client: TestClient[Any, Any], recorder: Recorder
) -> None:
    response = await keyed_client.post(
        "/Runtime/Webhooks/EventGrid?functionName=on_event&code=anything",
        **notification(fixture("sms_delivery_report.eventgrid.json")),
    )
    assert response.status == 202
    assert len(recorder.events) == 1


async def test_cloudevents_options_handshake(client: TestClient[Any, Any]) -> None:
    response = await client.options(WEBHOOK, headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert response.status == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


async def test_malformed_notification_body_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post(WEBHOOK, data=b"{not json", headers={"aeg-event-type": "Notification"})
    assert response.status == 400


# --- timers and admin invocation -----------------------------------------------------------------


async def test_timer_fires_on_its_schedule(recorder: Recorder) -> None:
    client = await make_client(recorder, run_timers=True)
    try:
        deadline = time.monotonic() + 5
        while not recorder.ticks and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert recorder.ticks, "the every-second timer never fired"
        assert isinstance(recorder.ticks[0], func.TimerRequest)
        assert recorder.ticks[0].past_due is False
    finally:
        await client.close()


async def test_admin_endpoint_invokes_a_timer_on_demand(client: TestClient[Any, Any], recorder: Recorder) -> None:
    response = await client.post("/admin/functions/tick", json={"input": ""})
    assert response.status == 202
    deadline = time.monotonic() + 5
    while not recorder.ticks and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert len(recorder.ticks) == 1


async def test_admin_endpoint_needs_the_key_when_set(keyed_client: TestClient[Any, Any]) -> None:
    assert (await keyed_client.post("/admin/functions/tick", json={"input": ""})).status == 401
    ok = await keyed_client.post("/admin/functions/tick", json={"input": ""}, headers={"x-functions-key": KEY})
    assert ok.status == 202


async def test_admin_endpoint_unknown_function_is_404(client: TestClient[Any, Any]) -> None:
    assert (await client.post("/admin/functions/nope", json={"input": ""})).status == 404
    assert (await client.post("/admin/functions/on_event", json={"input": "{}"})).status == 404  # timers only


# --- indexing ------------------------------------------------------------------------------------


def test_unsupported_binding_is_refused_at_start_up() -> None:
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="container/{name}", connection="AzureWebJobsStorage")
    def on_blob(blob: func.InputStream) -> None:
        pass

    with pytest.raises(UnsupportedFunction, match="blobTrigger"):
        index_functions(app)


def sync_function(app: func.FunctionApp) -> None:
    @app.route(route="sync", methods=["GET"])
    def sync(req: Request) -> Response:
        return Response("")


def route_template(template: str) -> Any:
    def declare(app: func.FunctionApp) -> None:
        @app.route(route=template, methods=["GET"])
        async def templated(req: Request) -> Response:
            return Response("")

    return declare


def classic_http_types(app: func.FunctionApp) -> None:
    @app.route(route="classic", methods=["GET"])
    async def classic(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")


def classic_return_type(app: func.FunctionApp) -> None:
    @app.route(route="half", methods=["GET"])
    async def half(req: Request) -> func.HttpResponse:
        return func.HttpResponse("")


def timer_on_startup(app: func.FunctionApp) -> None:
    @app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=True)
    async def early(timer: func.TimerRequest) -> None:
        pass


def timer_schedule(schedule: str) -> Any:
    def declare(app: func.FunctionApp) -> None:
        @app.timer_trigger(schedule=schedule, arg_name="timer")
        async def scheduled(timer: func.TimerRequest) -> None:
            pass

    return declare


@pytest.mark.parametrize(
    ("declare", "match"),
    [
        (sync_function, "only async functions"),
        (route_template("items/{id:int}"), "id:int"),
        (route_template("items/{id?}"), "id?"),
        (route_template("files/{*rest}"), "rest"),
        (timer_on_startup, "runOnStartup"),
        # In HTTP-streams mode the worker refuses to load an HTTP function whose trigger parameter or
        # return type the extension does not take (azure_functions_worker/bindings/meta.py,
        # _check_http_input_type_annotation and _check_http_output_type_annotation; functions.py
        # raises FunctionLoadError), so such a route would never be served in Azure.
        (classic_http_types, "HttpRequest"),
        (classic_return_type, "HttpResponse"),
        (timer_schedule("%EXPIRY_SCHEDULE%"), "%EXPIRY_SCHEDULE%"),
    ],
)
def test_features_the_app_does_not_use_are_refused_at_start_up(declare: Any, match: str) -> None:
    app = func.FunctionApp()
    declare(app)
    with pytest.raises(UnsupportedFunction, match=re.escape(match)):
        index_functions(app)


# --- hostile input -------------------------------------------------------------------------------


async def test_non_object_in_a_batch_is_skipped_and_the_rest_applied(
    client: TestClient[Any, Any], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="localdev.host")
    [good] = fixture("sms_delivery_report.eventgrid.json")
    response = await client.post(WEBHOOK, **notification([good, 42, "x\nforged", None]))
    assert response.status == 202
    assert [e.id for e in recorder.events] == [good["id"]]
    skipped = [r for r in caplog.records if getattr(r, "event", None) == "event_not_an_object"]
    assert [r.fields["index"] for r in skipped] == [1, 2, 3]  # type: ignore[attr-defined]
    assert all("\n" not in r.getMessage() for r in skipped)
    assert "x\\nforged" in skipped[1].getMessage()


async def test_a_batch_of_only_non_objects_is_acknowledged_without_invoking(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    response = await client.post(WEBHOOK, **notification([1, [2], "three"]))
    assert response.status == 202
    assert recorder.events == []


# Values the library's converter (azure-functions, ``eventgrid.py``: ``_parse_datetime``) cannot read; the
# same converter is what Microsoft's worker and the 3.13 runtime run before the function, inside the
# invocation (azure_functions_runtime, ``handle_event.invocation_request``: ``from_incoming_proto`` in the
# ``try`` that answers ``StatusResult.Failure``). So the invocation fails and Event Grid redelivers.
UNREADABLE_TIMES = ["yesterday", 12345, "0001-01-01T00:00:00+14:00", {"a": 1}, "2020-09-18"]


@pytest.mark.parametrize("event_time", UNREADABLE_TIMES)
async def test_an_unparseable_event_time_fails_the_invocation_before_the_function_runs(
    client: TestClient[Any, Any], recorder: Recorder, caplog: pytest.LogCaptureFixture, event_time: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="localdev.host")
    [event] = fixture("sms_delivery_report.eventgrid.json")
    response = await client.post(WEBHOOK, **notification([{**event, "eventTime": event_time}]))
    assert response.status == 500  # not acknowledged: Event Grid retries, then dead-letters
    assert recorder.events == []
    [failed] = [r for r in caplog.records if getattr(r, "event", None) == "event_conversion_failed"]
    assert failed.fields == {"function": "on_event", "field": "eventTime"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("time_value", UNREADABLE_TIMES)
async def test_an_unparseable_cloud_event_time_fails_the_invocation_before_the_function_runs(
    client: TestClient[Any, Any], recorder: Recorder, time_value: Any
) -> None:
    response = await client.post(
        WEBHOOK, **notification({**cloud_event("ce-t", {"MessageId": "m"}), "time": time_value})
    )
    assert response.status == 500
    assert recorder.events == []


async def test_an_unparseable_event_time_fails_only_its_own_invocation_in_a_batch(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    odd = {**event, "id": "odd", "eventTime": "yesterday"}
    response = await client.post(WEBHOOK, **notification([odd, event]))
    assert response.status == 500  # the delivery failed: Event Grid redelivers the whole batch
    assert [e.id for e in recorder.events] == [event["id"]]  # the others still ran (recording is idempotent)


@pytest.mark.parametrize("empty", [None, ""])
async def test_an_absent_or_empty_event_time_is_no_time_not_a_failure(
    client: TestClient[Any, Any], recorder: Recorder, empty: Any
) -> None:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    response = await client.post(WEBHOOK, **notification([{**event, "eventTime": empty}]))
    assert response.status == 202
    [received] = recorder.events
    assert (received.id, received.event_time) == (event["id"], None)


async def test_deeply_nested_notification_is_400_problem(client: TestClient[Any, Any], recorder: Recorder) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(WEBHOOK, data=body, headers={"aeg-event-type": "Notification"})
    assert response.status == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert recorder.events == []


async def test_nesting_beyond_the_host_limit_is_400_even_when_python_could_parse_it(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    deep: Any = {}
    for _ in range(200):
        deep = {"d": deep}
    response = await client.post(WEBHOOK, **notification([{**event, "data": deep}]))
    assert response.status == 400
    assert recorder.events == []


async def test_deeply_nested_body_on_http_and_admin_routes_is_not_a_host_failure(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    passed_through = await client.post("/api/admin-op", data=body)
    assert (passed_through.status, await passed_through.text()) == (200, "ok")
    admin = await client.post("/admin/functions/tick", data=body)
    assert admin.status == 400
    assert admin.headers["Content-Type"].startswith("application/problem+json")
    assert recorder.ticks == []


async def test_a_stalled_body_is_answered_408_within_the_read_timeout(recorder: Recorder) -> None:
    answer = await send_raw(
        recorder,
        b'POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":',
    )
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b"application/problem+json" in rest
    assert recorder.events == []


async def test_a_connection_that_never_finishes_its_headers_is_closed(recorder: Recorder) -> None:
    assert await send_raw(recorder, b"POST /api/items HTTP/1.1\r\nHost: x\r\n") == b""


async def send_raw(recorder: Recorder, data: bytes) -> bytes:
    """Send ``data`` to a host with a 0.3 s read timeout, then stall; all it answers until it closes (5 s at most)."""
    host = LocalHost(index_functions(build_app(recorder)), run_timers=False, read_timeout_seconds=0.3)
    server = TestServer(host.build())
    await server.start_server(**host.server_options())
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), timeout=5)  # read() returns once the host closes
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        await server.close()


async def test_request_log_line_escapes_control_characters_in_the_path(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="localdev.host")
    await client.get("/api/nothing%0Aforged status=200%1B[31m%E2%80%A8")
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "http_request"]
    message = line.getMessage()
    assert "\n" not in message and "\x1b" not in message and "\u2028" not in message
    assert "/api/nothing\\nforged status=200\\x1b[31m\\u2028" in message
    assert line.fields["path"] == "/api/nothing\nforged status=200\x1b[31m\u2028"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x1b[31m\x00\x7f", "\\x1b[31m\\x00\\x7f"),
        ("\u2028\u2029\u200b\ufeff", "\\u2028\\u2029\\u200b\\ufeff"),
        ("héllo ✓ 日本", "héllo ✓ 日本"),
        ("\\n stays", "\\n stays"),
    ],
)
def test_escape_control_renders_control_and_format_characters(raw: str, escaped: str) -> None:
    assert escape_control(raw) == escaped
