"""One table of cases, run through Microsoft's runtime and through the local host, which must answer alike.

The judge is ``azure-functions-runtime`` (what Azure loads for Python 3.13+) behind
``localdev/runtime_host`` (tests/runtime/support.py); the local host (``localdev/host/``) serves the
same app, ``tests/runtime/case_app/``, in-process. Each case goes to both as a client sends it.

What is the .NET host's and not the runtime's is carried from the host's source, named where
``localdev/runtime_host/front.py`` does it: routing (``%2F`` stays in a route value), the
invocation id header (the host's replaces a client's), the webhook's status from the
invocations' outcomes (202 when all succeeded, 500 otherwise).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import pytest
from aiohttp.test_utils import TestServer
from azure.storage.queue import QueueMessage
from hypothesis import strategies as st
from yarl import URL

from localdev.host import LocalHost, index_functions
from localdev.host.queues import to_function_message
from tests.e2e.test_fuzz import draw
from tests.runtime.case_app import function_app as case_app
from tests.runtime.support import RuntimeHost, require_runtime
from tests.support import poll

pytestmark = pytest.mark.e2e

CASE_APP_DIR = Path(case_app.__file__).parent
WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_event"
CLIENT_INVOCATION_ID = "client-chosen-id"
CASE_INDEX = index_functions(case_app.app)  # once: the library refuses to index an app twice


@dataclass
class Side:
    """One of the two hosts: where it listens and where its functions record what they saw."""

    url: str
    records: Path

    def record(self, key: str) -> Any:
        path = self.records / f"{key}.json"
        return json.loads(poll(lambda: path.read_text() if path.exists() else None, deadline_seconds=10))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    require_runtime()
    base = tmp_path_factory.mktemp("case-runtime")
    records = base / "records"
    records.mkdir()
    env = {"CASE_RECORD_DIR": str(records), "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    host = RuntimeHost(CASE_APP_DIR, env, base / "runtime.log").start()
    yield Side(host.url, records)
    host.stop()


@pytest.fixture
async def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Side]:
    monkeypatch.setenv("CASE_RECORD_DIR", str(tmp_path))
    host = LocalHost(CASE_INDEX, run_timers=False)
    server = TestServer(host.build(), host="127.0.0.1")
    await server.start_server()
    yield Side(str(server.make_url("")).rstrip("/"), tmp_path)
    await server.close()


def test_every_case_function_is_indexed_and_loaded_by_the_runtime(runtime: Side) -> None:
    indexed = httpx.get(runtime.url + "/runtime-host/functions").json()
    assert set(indexed["functions"]) == {f.name for f in CASE_INDEX.http} | set(CASE_INDEX.triggered)


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    id: str
    method: str
    raw_path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


HTTP_CASES = [
    HttpCase("route-value", "GET", "/api/echo/42?q=1&q=2"),
    HttpCase("route-value-holding-%2F", "GET", "/api/echo/a%2Fb"),
    HttpCase("route-value-holding-%2f-and-%20", "GET", "/api/echo/a%2fb%20c"),
    HttpCase("route-value-of-two-segments", "GET", "/api/echo/a/b"),
    HttpCase("utf8-route-value-and-query", "GET", "/api/echo/%C3%A9t%C3%A9?tag=%C3%A9%F0%9F%98%80"),
    HttpCase("escape-that-is-not-utf8", "GET", "/api/echo/%FF%FE"),
    HttpCase("newline-inside-a-route-value", "GET", "/api/echo/a%0Ab"),  # the worker's catch-all misses it
    HttpCase("newline-ending-a-route-value", "GET", "/api/echo/ab%0A"),
    HttpCase("non-ascii-request-header", "GET", "/api/echo/1", (("x-name", "été ✓ 😀"),)),
    HttpCase("header-twice", "GET", "/api/echo/1", (("x-name", "a"), ("x-name", "b"))),
    HttpCase("post-body-of-any-bytes", "POST", "/api/echo/1", body=b"\x00\xff{}\r\n"),
    HttpCase("post-body-of-100000-bytes", "POST", "/api/echo/1", body=(bytes(range(256)) * 391)[:100_000]),
    HttpCase("a-clients-own-invocation-id", "GET", "/api/echo/1", (("x-ms-invocation-id", CLIENT_INVOCATION_ID),)),
    HttpCase("non-ascii-response-header", "GET", "/api/header"),
    HttpCase("a-function-that-raises", "GET", "/api/boom"),
    HttpCase("a-stream-cut-half-way", "GET", "/api/cut"),
]


async def answer(base: str, case: HttpCase) -> dict[str, Any]:
    """What a client can rely on: status, media type, the test header's bytes, the body, a cut."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            case.method, URL(base + case.raw_path, encoded=True), headers=list(case.headers), data=case.body or None
        ) as response,
    ):
        body, cut = b"", False
        try:
            async for chunk in response.content.iter_any():
                body += chunk
        except aiohttp.ClientPayloadError:
            cut = True
        seen: dict[str, Any] = {
            "status": response.status,
            "content_type": response.headers.get("content-type"),
            "x_word": [v for k, v in response.raw_headers if k.lower() == b"x-word"],
            "cut": cut,
        }
    if response.status == 404 and response.content_type != "application/json":
        return {"status": 404}  # no route: the host's own answer (the front's is a bare 404), not the runtime's
    if response.content_type == "application/json" and response.status == 200 and not cut:
        echoed = json.loads(body)
        ids = echoed.pop("invocation_ids")  # one id, the host's own: never the client's
        echoed["invocation_ids"] = [_is_uuid(i) for i in ids]
        seen["body"] = echoed
    else:
        seen["body"] = body
    return seen


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.id for c in HTTP_CASES])
async def test_http_case_answers_as_the_runtime_does(case: HttpCase, runtime: Side, local: Side) -> None:
    judged = await answer(runtime.url, case)
    assert await answer(local.url, case) == judged


async def test_the_runtime_judges_the_cases_as_documented(runtime: Side) -> None:
    """What the runtime answers, pinned, so a change of the judge shows here and not as a silent agreement."""
    by_id = {c.id: c for c in HTTP_CASES}
    slash = await answer(runtime.url, by_id["route-value-holding-%2F"])
    assert slash["body"]["path_params"] == {"name": "a%2Fb"}
    raised = await answer(runtime.url, by_id["a-function-that-raises"])
    assert (raised["status"], raised["content_type"], raised["body"]) == (
        500,
        "text/plain; charset=utf-8",
        b"Internal Server Error",
    )
    cut = await answer(runtime.url, by_id["a-stream-cut-half-way"])
    assert (cut["status"], cut["body"], cut["cut"]) == (200, b"first,", True)
    newline = await answer(runtime.url, by_id["newline-inside-a-route-value"])
    assert (newline["status"], newline["body"]) == (404, b'{"detail":"Not Found"}')
    word = await answer(runtime.url, by_id["non-ascii-response-header"])
    assert word["x_word"] == ["été".encode()]
    own = await answer(runtime.url, by_id["a-clients-own-invocation-id"])
    assert own["body"]["invocation_ids"] == [True]
    header = await answer(runtime.url, by_id["non-ascii-request-header"])
    assert header["body"]["raw_x_name"] == ["été ✓ 😀".encode().decode("latin-1")]


def _segment(pieces: list[tuple[str, str]]) -> str:
    """A route value as a client escapes it: text percent-encoded as UTF-8 (``/`` as ``%2F``, or
    ``%2f``), or raw escapes of bytes that need not be UTF-8."""
    out = ""
    for kind, value in pieces:
        if kind == "text":
            out += quote(value.encode("utf-8", "surrogatepass"), safe="")
        elif kind == "lower-slash":
            out += "%2f"
        else:
            out += "".join(f"%{b:02X}" for b in value.encode("latin-1"))
    return out


_PIECES = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.text(max_size=40)),  # every plane, controls, ' / \ # ? included
        st.tuples(st.just("lower-slash"), st.just("")),
        st.tuples(st.just("bytes"), st.text(st.characters(max_codepoint=255), min_size=1, max_size=6)),
    ),
    max_size=8,
)
_HEADER = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=60).map(str.strip)
HOSTILE = draw(st.tuples(_PIECES, _PIECES, _HEADER), examples=int(os.environ.get("FUZZ_EXAMPLES", "60")))


async def test_hostile_route_values_queries_and_headers_answer_as_the_runtime_does(runtime: Side, local: Side) -> None:
    for route, query, header in HOSTILE:
        case = HttpCase("hostile", "GET", f"/api/echo/{_segment(route)}?q={_segment(query)}", (("x-name", header),))
        judged = await answer(runtime.url, case)
        assert await answer(local.url, case) == judged, case


async def test_concurrent_requests_each_get_their_own_answer(runtime: Side, local: Side) -> None:
    """Each forwarded request meets its own invocation (the id ties them), however they interleave."""
    for side in (runtime, local):
        cases = [HttpCase(f"c{i}", "GET", f"/api/echo/{i}?n={i}") for i in range(24)]
        answers = await asyncio.gather(*(answer(side.url, case) for case in cases))
        assert [a["body"]["path_params"]["name"] for a in answers] == [str(i) for i in range(24)]


# --- Event Grid ----------------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"in": value}
    return value


def grid_event(event_id: str, **fields: Any) -> dict[str, Any]:
    event = {
        "id": event_id,
        "eventType": "Case.Happened",
        "subject": "/cases/1",
        "dataVersion": "1.0",
        "eventTime": "2024-05-01T10:00:00.1234567Z",
        "data": {"n": 1, "text": "été ✓"},
    }
    return event | fields


def cloud_event(event_id: str, **fields: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "type": "Case.Happened",
        "source": "/cases",
        "subject": "/cases/1",
        "time": "2024-05-01T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"n": 2},
    }
    return event | fields


EVENT_CASES = {
    "event-grid-schema": grid_event("eg-1"),
    "cloudevents-schema": cloud_event("ce-1"),
    "event-time-missing": grid_event("eg-2", eventTime=None),
    "data-a-string": grid_event("eg-3", data="just text"),
    "subject-from-every-plane": grid_event("eg-6", subject="/\u00e9\u4e2d\U0001f600\U000e0001\x00'/\\#?"),
    "data-nested-50-deep": grid_event("eg-7", data=_nested(50)),
    "a-large-event": grid_event("eg-8", data={"text": "\u00e9" * 100_000}),
    "the-function-raises": grid_event("eg-4", data={"raise": True}),
    "event-time-unparsable": grid_event("eg-5", eventTime="yesterday"),
    "cloud-time-unparsable": cloud_event("ce-2", time="yesterday"),
}
# An unparsable event time fails the invocation in the runtime's conversion, before the function
# runs (azure_functions_runtime/handle_event.py): the delivery is a 500, which Event Grid retries.
UNCONVERTIBLE = {"event-time-unparsable", "cloud-time-unparsable"}


async def deliver(side: Side, event: dict[str, Any]) -> tuple[int, Any]:
    """Event Grid's delivery of one event: the webhook's status, and what the function saw."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            side.url + WEBHOOK, content=json.dumps([event]), headers={"aeg-event-type": "Notification"}, timeout=60
        )
    path = side.records / f"event-{event['id']}.json"
    return response.status_code, json.loads(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("name", list(EVENT_CASES))
async def test_event_grid_case_answers_as_the_runtime_does(name: str, runtime: Side, local: Side) -> None:
    event = EVENT_CASES[name]
    judged = await deliver(runtime, event)
    assert judged[0] == (500 if name in ("the-function-raises", *UNCONVERTIBLE) else 202), judged
    assert await deliver(local, event) == judged


# --- queue and timer -----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "dequeue_count"), [("plain", 1), ("été ✓", 5), ("raise-now", 2)])
async def test_queue_case_runs_as_in_the_runtime(body: str, dequeue_count: int, runtime: Side, local: Side) -> None:
    key = f"{body}-{uuid.uuid4().hex[:8]}"
    message_id = str(uuid.uuid4())
    async with httpx.AsyncClient() as client:
        response = await client.post(
            runtime.url + "/runtime-host/queue/on_queue",
            json={"id": message_id, "body": key, "dequeueCount": dequeue_count},
            timeout=60,
        )
    judged = response.json()["status"]
    message = QueueMessage(content=key)
    message.id, message.pop_receipt, message.dequeue_count = message_id, "receipt", dequeue_count
    now = dt.datetime.now(dt.UTC)
    message.inserted_on, message.expires_on, message.next_visible_on = now, now + dt.timedelta(days=7), now
    function = CASE_INDEX.triggered["on_queue"]
    try:
        await function.call(**{function.arg_name: to_function_message(message, key.encode())})
        ours = "Success"
    except RuntimeError:
        ours = "Failure"
    assert ours == judged == ("Failure" if body.startswith("raise") else "Success")
    assert local.record(f"queue-{key}") == runtime.record(f"queue-{key}")


async def test_timer_case_runs_as_in_the_runtime(runtime: Side, local: Side) -> None:
    async with httpx.AsyncClient() as client:
        judged = (await client.post(runtime.url + "/runtime-host/timer/on_timer", json={}, timeout=60)).json()
        assert judged["status"] == "Success", judged
        response = await client.post(local.url + "/admin/functions/on_timer", json={"input": ""})
        assert response.status_code == 202
    assert local.record("timer") == runtime.record("timer") == {"past_due": False}
