"""Issue 16's routes against the real app and a real Azurite: the tags by activity, a tag's CSV,
the poison entries, the summary's delivery statistics, the dashboard page and its policy."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mms_tracker.api.blueprints.dashboard import PAGE
from mms_tracker.domain import DeliveryReport, Send
from mms_tracker.runtime import RUNTIME
from mms_tracker.service import queries
from mms_tracker.service.tracking import record_report, record_sends
from tests.openapi_check import assert_conforms
from tests.support import Azurite, app_environment, serve_function_app

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)
KEEP = dt.timedelta(days=90)
KEY = "dashboard-test-key"


@pytest.fixture
async def client(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    served = await serve_function_app(monkeypatch, app_environment(azurite.connection_string), function_key=KEY)
    yield served
    await served.close()
    await RUNTIME.aclose()


async def get(client: Any, path: str, **params: str) -> Any:
    return await client.get(path, params=params, headers={"x-functions-key": KEY})


async def send(tag: str, n: int, at: dt.datetime, to: str = "+18335852071") -> list[str]:
    ids = [f"{tag}-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    sends = [Send(m, to, "+18004567891", tag, True, at) for m in ids]
    await record_sends(RUNTIME.store(), sends, at, WINDOW, KEEP)
    return ids


async def report(message_id: str, status: str, at: dt.datetime, details: str, tag: str | None) -> None:
    event = DeliveryReport(str(uuid.uuid4()), "t", message_id, status, details, at, tag=tag)
    await record_report(RUNTIME.store(), event, at)


async def test_summary_has_bucket_accurate_latency_and_the_top_failure_reasons(client: Any) -> None:
    tag = "lat-" + uuid.uuid4().hex[:6]
    ids = await send(tag, 6, T0)
    for m, seconds in zip(ids[:4], (0.5, 7, 8, 100), strict=True):  # buckets 1 s, 10 s, 10 s, 120 s
        await report(m, "Delivered", T0 + dt.timedelta(seconds=seconds), "No error.", tag)
    await report(ids[4], "Failed", T0 + dt.timedelta(seconds=3), "Carrier rejected", tag)
    await report(ids[5], "Failed", T0 + dt.timedelta(seconds=3), "Carrier rejected", tag)
    response = await get(client, f"/api/tags/{tag}/summary")
    body = await response.json()
    assert_conforms("/tags/{tag}/summary", "get", 200, response.content_type, body)
    latency = body["latency"]
    assert (latency["count"], latency["p50Seconds"], latency["p90Seconds"], latency["p99Seconds"]) == (4, 10, 120, 120)
    assert {b["upToSeconds"]: b["count"] for b in latency["histogram"] if b["count"]} == {1: 1, 10: 2, 120: 1}
    assert body["failureReasons"] == {"Carrier rejected": 2}


async def test_a_send_recorded_after_its_report_moves_the_latency_to_the_sends_time(client: Any) -> None:
    tag = "late-" + uuid.uuid4().hex[:6]
    message_id = f"{tag}-m"
    await report(message_id, "Delivered", T0 + dt.timedelta(seconds=2), "No error.", tag)
    early = await (await get(client, f"/api/tags/{tag}/summary")).json()
    assert early["latency"]["p50Seconds"] == 1  # created at the report itself: 0 s
    await record_sends(RUNTIME.store(), [Send(message_id, "+1833", "+1800", tag, True, T0)], T0, WINDOW, KEEP)
    moved = await (await get(client, f"/api/tags/{tag}/summary")).json()
    assert moved["latency"] | {"histogram": None} == {
        "p50Seconds": 2,
        "p90Seconds": 2,
        "p99Seconds": 2,
        "count": 1,
        "histogram": None,
    }


async def test_tags_are_listed_newest_activity_first_in_sealed_pages(client: Any) -> None:
    prefix = "act-" + uuid.uuid4().hex[:6]
    for i in range(3):
        await send(f"{prefix}-{i}", i + 1, T0 + dt.timedelta(days=400 + i))  # later than any other test's tags
    first = await get(client, "/api/tags", pageSize="2")
    page = await first.json()
    assert_conforms("/tags", "get", 200, first.content_type, page)
    assert [(t["tag"], t["total"], t["byStatus"]["Accepted"]) for t in page["items"]] == [
        (f"{prefix}-2", 3, 3),
        (f"{prefix}-1", 2, 2),
    ]
    assert page["items"][0]["lastActivityAt"] == "2028-01-03T09:00:00Z"
    second = await (await get(client, "/api/tags", pageSize="2", continuationToken=page["continuationToken"])).json()
    assert second["items"][0]["tag"] == f"{prefix}-0"
    tampered = await get(client, "/api/tags", continuationToken=page["continuationToken"][:-2] + "AA")
    assert tampered.status == 400
    assert [e["field"] for e in (await tampered.json())["errors"]] == ["continuationToken"]


async def test_a_token_of_one_listing_is_refused_by_another(client: Any) -> None:
    tag = "tok-" + uuid.uuid4().hex[:6]
    await send(tag, 3, T0)
    messages = await (await get(client, "/api/messages", tag=tag, pageSize="1")).json()
    refused = await get(client, "/api/tags", continuationToken=messages["continuationToken"])
    assert refused.status == 400
    assert refused.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/tags", {"pageSize": "0"}, "pageSize"),
        ("/api/tags", {"pageSize": "101"}, "pageSize"),
        ("/api/tags/x/messages.csv", {"status": "Sent"}, "status"),
        ("/api/poison", {"since": "2026-02-30"}, "since"),
        ("/api/poison", {"since": "yesterday"}, "since"),
        ("/api/poison", {"pageSize": "x"}, "pageSize"),
        ("/api/dashboard", {"view": "admin"}, "view"),
    ],
)
async def test_a_bad_query_parameter_is_a_problem_naming_it(
    client: Any, path: str, params: dict[str, str], field: str
) -> None:
    response = await get(client, path, **params)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert [e["field"] for e in (await response.json())["errors"]] == [field]


async def test_the_csv_holds_every_message_escaped_as_rfc_4180_with_formulas_defused(client: Any) -> None:
    tag = "csv-" + uuid.uuid4().hex[:6]
    ids = await send(tag, 25, T0)
    hostile = 'A "quoted", comma\r\nand a new line'
    await report(ids[0], "Failed", T0 + dt.timedelta(seconds=5), '=HYPERLINK("http://x","y")', tag)
    await report(ids[1], "Failed", T0 + dt.timedelta(seconds=5), hostile, tag)
    await report(ids[2], "Delivered", T0 + dt.timedelta(seconds=5), "@SUM(1)", tag)
    response = await get(client, f"/api/tags/{tag}/messages.csv")
    assert response.status == 200
    assert response.content_type == "text/csv" and response.charset == "utf-8"
    raw = await response.read()
    assert raw.startswith(b"messageId,to,from,tag,status,statusDetails,createdAt,updatedAt,completedAt\r\n")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert sorted(r["messageId"] for r in rows) == sorted(ids)
    by_id = {r["messageId"]: r for r in rows}
    assert by_id[ids[0]]["statusDetails"] == '\'=HYPERLINK("http://x","y")'
    assert by_id[ids[1]]["statusDetails"] == hostile  # quoted, so the comma and line break stay in the cell
    assert by_id[ids[2]]["statusDetails"] == "'@SUM(1)"
    assert by_id[ids[3]]["to"] == "+18335852071"  # the number in full, not taken for a formula
    assert by_id[ids[2]]["completedAt"] == "2026-11-27T09:00:05Z"
    pages = [len(p) async for p in queries.export_records(RUNTIME.store(), tag, None, page_size=10)]
    assert sum(pages) == 25 and len(pages) >= 3  # page by page, whatever the page size
    failed = await get(client, f"/api/tags/{tag}/messages.csv", status="Failed")
    failed_rows = list(csv.DictReader(io.StringIO((await failed.read()).decode(), newline="")))
    assert sorted(r["messageId"] for r in failed_rows) == sorted(ids[:2])


async def test_poison_entries_are_listed_with_reason_type_and_the_first_2000_characters(client: Any) -> None:
    store = RUNTIME.store()
    now = dt.datetime.now(dt.UTC)
    for i in range(3):
        envelope = {"id": f"bad-{i}", "eventType": "Unknown.Type", "data": {"blob": "x" * 5000}}
        await store.record_poison(envelope, f"unknown event type {i}", now)
    first = await get(client, "/api/poison", pageSize="2")
    page = await first.json()
    assert_conforms("/poison", "get", 200, first.content_type, page)
    rest = await (await get(client, "/api/poison", pageSize="2", continuationToken=page["continuationToken"])).json()
    items = page["items"] + rest["items"]
    assert sorted(i["eventId"] for i in items) == ["bad-0", "bad-1", "bad-2"]
    assert {i["eventType"] for i in items} == {"Unknown.Type"}
    assert items[0]["reason"].startswith("unknown event type")
    assert len(items[0]["payload"]) == 2000 and items[0]["payload"].startswith('{"id": "bad-')
    assert (await (await get(client, "/api/poison", since=(now + dt.timedelta(days=1)).strftime("%Y-%m-%d"))).json())[
        "items"
    ] == []


async def test_the_dashboard_is_one_page_that_may_load_nothing_from_elsewhere(client: Any) -> None:
    response = await client.get("/api/dashboard", params={"code": KEY, "tag": "x"})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert await response.read() == PAGE
    policy = dict(p.strip().split(" ", 1) for p in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    script = re.search(rb"<script>(.*?)</script>", PAGE, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1)).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"  # only our own inline script runs
    assert not re.search(rb"(src|href)=\"(https?:)?//", PAGE)  # nothing refers to another origin
    assert (await client.get("/api/dashboard")).status == 401  # the function key, in a header or ?code=
