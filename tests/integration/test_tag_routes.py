"""Issue 25: every tag a send accepts is served by every tag route and by the dashboard.

Against the real app (served by the local host) and a real Azurite, ACS behind MockTransport. The
query form (``GET /api/tags/summary?tag=``, ``GET /api/tags/messages.csv?tag=``) carries any tag;
the path form (``/api/tags/{tag}/summary``) carries a tag that is one path segment.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx
import pytest
from hypothesis import strategies as st

from mms_tracker.runtime import RUNTIME
from tests.e2e.test_fuzz import EXAMPLES, draw, hostile_text
from tests.fakes import accept_all
from tests.support import fixture

ODD_TAGS = [
    "spring/2026",
    ".",
    "..",
    "%",
    "%2F",
    "?",
    "#",
    "\\",
    "a/../b",
    "./x",
    "x/..",
    "?tag=other&status=Failed",
    "+ +",
    "夏のキャンペーン",
    "\U0001f600",
    " ",
    "\x00",
    "\u202e",
    "t" * 256,
]


@pytest.fixture
def client(app_client: Any) -> Any:
    """The app served by the local host against Azurite, ACS accepting every recipient."""
    RUNTIME.configure(RUNTIME.settings, acs_transport=httpx.MockTransport(accept_all))
    return app_client


async def send_tagged(client: Any, tag: str) -> str:
    body = fixture("seed_send_request.json")
    body["recipients"] = [{"to": "+18335852071"}]
    body["sendOptions"] = {"enableDeliveryReport": True, "tag": tag}
    response = await client.post("/api/messages", json=body)
    assert response.status == 202, await response.text()
    [item] = (await response.json())["value"]
    return str(item["messageId"])


@pytest.mark.parametrize("tag", ODD_TAGS, ids=ascii)
async def test_a_tag_of_any_characters_has_a_summary_and_an_export_in_the_query_form(client: Any, tag: str) -> None:
    message_id = await send_tagged(client, tag)

    summary = await client.get("/api/tags/summary", params={"tag": tag})
    assert summary.status == 200, await summary.text()
    assert (await summary.json())["tag"] == tag and (await summary.json())["total"] == 1

    export = await client.get("/api/tags/messages.csv", params={"tag": tag})
    assert export.status == 200, await export.text()
    [row] = list(csv.DictReader(io.StringIO(await export.text())))
    assert row["messageId"] == message_id and row["tag"].lstrip("'") == tag


async def test_the_path_form_still_serves_an_ordinary_tag(client: Any) -> None:
    tag = "spring-2026 夏"
    await send_tagged(client, tag)
    summary = await client.get(f"/api/tags/{quote(tag, safe='')}/summary")
    assert summary.status == 200 and (await summary.json())["total"] == 1
    export = await client.get(f"/api/tags/{quote(tag, safe='')}/messages.csv")
    assert export.status == 200 and (await export.text()).count("\r\n") == 2


def browser_query(**params: str) -> str:
    """A query string as the dashboard's script builds it (``URLSearchParams``: form encoding, so a
    space is ``+`` and every byte outside ``*-._`` and letters and digits is percent-encoded)."""
    return urlencode(params, quote_via=quote_plus, safe="*")


def path_safe(tag: str) -> bool:
    """A tag the path form carries (docs/api.md, "Tags in URLs"): one segment, not a dot segment, and no
    newline (the worker's catch-all route, ``/{path:path}``, does not match a path holding one)."""
    return not any(c in tag for c in "/\\%\n") and tag not in (".", "..")


def tag_values() -> st.SearchStrategy[Any]:
    """What a careless client puts in ``sendOptions.tag``: hostile text from every plane (lone
    surrogates go out as JSON ``\\ud800`` escapes), 0 to 100,000 characters and each side of the
    256-character limit, dot segments and separators, and values that are not strings at all."""
    edges = st.sampled_from(["x", "夏", "\U0001f600", "/", ".", "%", "\x00", " "]).flatmap(
        lambda c: st.sampled_from([c * n for n in (1, 2, 255, 256, 257)])
    )
    dotted = st.lists(st.sampled_from([".", "..", "/", "%2e", "%2F", "\\", "a", "夏"]), min_size=1, max_size=6).map(
        "".join
    )
    wrong_types = st.none() | st.integers() | st.booleans() | st.lists(st.text(max_size=3), max_size=2)
    text = hostile_text() | edges | dotted
    return st.one_of(text, text, text, wrong_types)  # mostly text: a wrong type is refused by its type alone


async def test_any_tag_a_send_accepts_has_a_summary_an_export_and_a_dashboard_view(client: Any) -> None:
    sent: Counter[str] = Counter()
    ids: dict[str, list[str]] = {}
    longest = ["\U0001f600" * 256, "\U0010ffff" * 256]  # 256 characters of 4 UTF-8 bytes: the longest URLs
    for value in [*longest, *draw(tag_values(), 2 * EXAMPLES)]:
        body = fixture("seed_send_request.json")
        body["recipients"] = [{"to": "+18335852071"}]
        body["sendOptions"] = {"enableDeliveryReport": True, "tag": value}
        data = json.dumps(body).encode()  # ensure_ascii: a lone surrogate is the escape a client sends
        response = await client.post("/api/messages", data=data, headers={"content-type": "application/json"})
        if response.status != 202:
            problem = await response.json()
            assert response.status == 400, (value, problem)
            assert [e["field"] for e in problem["errors"]] == ["sendOptions.tag"], (ascii(value)[:200], problem)
            continue
        if not value:
            continue  # no tag (absent, null or empty): the message belongs to none
        assert isinstance(value, str), value
        tag = value
        [item] = (await response.json())["value"]
        sent[tag] += 1
        ids.setdefault(tag, []).append(item["messageId"])
        await assert_served(client, tag, sent[tag], ids[tag])


async def assert_served(client: Any, tag: str, total: int, message_ids: list[str]) -> None:
    case = ascii(tag)[:200]
    summary = await client.get("/api/tags/summary?" + browser_query(tag=tag))
    assert summary.status == 200, (case, await summary.text())
    body = await summary.json()
    assert (body["tag"], body["total"]) == (tag, total), case

    export = await client.get("/api/tags/messages.csv?" + browser_query(tag=tag))
    assert export.status == 200, (case, await export.text())
    rows = list(csv.DictReader(io.StringIO(await export.text(), newline="")))
    assert sorted(r["messageId"] for r in rows) == sorted(message_ids), case

    page = await client.get("/api/dashboard?" + browser_query(tag=tag))  # the page, then what its script reads
    assert page.status == 200, (case, await page.text())
    longest = "/api/messages?" + browser_query(tag=tag, status="Failed", pageSize="1000")  # the page's longest read
    # Azure refuses a URL over 4 KB (4,096 bytes): MicrosoftDocs/azure-docs,
    # functions-bindings-http-webhook-trigger.md, "Limits". Leave 200 bytes for the origin and the code.
    assert len(longest.encode()) <= 4096 - 200, (case, len(longest))
    failed = await client.get(longest)
    assert failed.status == 200, (case, await failed.text())
    listed = await client.get("/api/messages?" + browser_query(tag=tag))
    assert sorted(i["messageId"] for i in (await listed.json())["items"]) == sorted(message_ids), case

    if path_safe(tag):  # the path form keeps serving a tag that is one path segment
        segment = quote(tag, safe="")
        by_path = await client.get(f"/api/tags/{segment}/summary")
        assert by_path.status == 200 and await by_path.json() == body, case
        csv_by_path = await client.get(f"/api/tags/{segment}/messages.csv")
        assert csv_by_path.status == 200 and await csv_by_path.text() == await export.text(), case
