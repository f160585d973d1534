"""Hostile input on every route and on every field of a delivery report (issue 12's fuzz suite).

After each case: no 5xx; every 4xx is problem+json; every recipient a send accepted is readable
by id; every report is acknowledged and either recorded (readable by id) or kept as poison.

Bounded for ``make test`` (``FUZZ_EXAMPLES``, default 60 per route, derandomised); ``make fuzz``
runs many more, with a random seed. Cases are drawn first and then replayed against one app, so
a failure names the case rather than a shrunk one.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mms_tracker.runtime import RUNTIME
from tests.fakes import accept_all
from tests.support import Azurite, app_environment, fixture, poison_rows, serve_function_app

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_delivery_report"
BATCH = "/api/events/delivery-reports"
NOTIFY = {"aeg-event-type": "Notification"}

SPECIALS = [
    "", " ", "'", '"', "/", "\\", "#", "?", "%", "%2F", "..", "&", "=", "+",
    "\n", "\r\n", "\t", "\x00", "\x1b[31m", "\x7f", "\u0085", "\u2028", "\u202e", "\ufeff", "\ufffd",
    "\ud800", "\udfff", "\U0001f600", "\U0010ffff", "\U000e0001", "夏", "ش", "\U0001d518",
]  # fmt: skip
LENGTHS = [1, 63, 64, 65, 255, 256, 257, 400, 511, 512, 513, 1000, 1001, 1024, 1025, 40_000, 100_000]


def hostile_text() -> st.SearchStrategy[str]:
    """Unicode from every plane (lone surrogates included), control characters, ``' / \\ # ?``,
    and lengths on each side of every limit, up to 100,000 characters."""
    return st.one_of(
        st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40),
        st.sampled_from(SPECIALS),
        st.lists(st.sampled_from(SPECIALS), max_size=8).map("".join),
        st.tuples(st.sampled_from(["x", "字", "\U0001f600", "\x00", "%", "+1"]), st.sampled_from(LENGTHS)).map(
            lambda t: t[0] * t[1]
        ),
    )


def hostile_json() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text(), inner, max_size=4),
        max_leaves=8,
    )


def _set(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


SEND_PATHS: list[tuple[str | int, ...]] = [
    ("from",),
    ("message",),
    ("recipients",),
    ("recipients", 0),
    ("recipients", 0, "to"),
    ("recipients", 0, "repeatabilityRequestId"),
    ("recipients", 0, "repeatabilityFirstSent"),
    ("attachments",),
    ("attachments", 0),
    ("attachments", 0, "contentType"),
    ("attachments", 0, "contentInBase64"),
    ("sendOptions",),
    ("sendOptions", "tag"),
    ("sendOptions", "enableDeliveryReport"),
]
REPORT_PATHS: list[tuple[str | int, ...]] = [
    ("id",),
    ("eventType",),
    ("subject",),
    ("dataVersion",),
    ("data",),
    ("data", "messageId"),
    ("data", "deliveryStatus"),
    ("data", "deliveryStatusDetails"),
    ("data", "receivedTimestamp"),
    ("data", "tag"),
    ("data", "to"),
    ("data", "from"),
    ("data", "deliveryAttempts"),
    ("data", "deliveryAttempts", 0),
    ("data", "deliveryAttempts", 0, "timestamp"),
    ("data", "deliveryAttempts", 0, "segmentsSucceeded"),
]


def send_cases() -> st.SearchStrategy[bytes]:
    seed = fixture("seed_send_request.json") | {"sendOptions": {"enableDeliveryReport": True, "tag": "fuzz"}}
    mutated = st.tuples(st.sampled_from(SEND_PATHS), hostile_json() | hostile_text()).map(
        lambda c: json.dumps(_set(seed, c[0], c[1])).encode()
    )
    nested = st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth)
    return mutated | nested | st.binary(max_size=64)


def report_cases() -> st.SearchStrategy[dict[str, Any]]:
    [event] = fixture("sms_delivery_report.eventgrid.json")

    def build(case: tuple[tuple[str | int, ...], Any]) -> dict[str, Any]:
        unique = f"fuzz-{uuid.uuid4()}"  # poison is keyed by event id: each case its own
        fresh = _set(_set(event, ("data", "messageId"), unique), ("id",), unique)
        return _set(fresh, case[0], case[1])  # type: ignore[no-any-return]

    return st.tuples(st.sampled_from(REPORT_PATHS), hostile_json() | hostile_text()).map(build)


# The request line itself is bounded by the HTTP server (aiohttp: 8,190 bytes; Azure's front end
# has its own limit, answered before the app runs), so read cases keep their URL under that.
MAX_URL_TEXT = 6_000


def read_cases() -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    path_text = (
        hostile_text()
        .filter(bool)
        .map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe=""))
        .filter(lambda t: len(t) <= MAX_URL_TEXT)
    )
    query = st.fixed_dictionaries(
        {},
        optional={
            "tag": hostile_text(),
            "status": st.sampled_from(["Accepted", "Delivered", "delivered"]) | hostile_text(),
            "pageSize": st.sampled_from(["0", "1", "1000", "1001", "-1", "1e3", "٣"]) | hostile_text(),
            "continuationToken": hostile_text(),
        },
    )
    listing = st.fixed_dictionaries(
        {},
        optional={
            "pageSize": st.sampled_from(["0", "1", "100", "101", "-1"]) | hostile_text(),
            "continuationToken": hostile_text(),
            "since": st.sampled_from(["2026-11-27", "2026-02-30", "2026-1-1"]) | hostile_text(),
            "tag": hostile_text(),
            "view": st.sampled_from(["tags", "poison"]) | hostile_text(),
        },
    )
    return st.one_of(
        st.tuples(path_text.map(lambda t: f"/api/messages/{t}"), st.just({})),
        st.tuples(path_text.map(lambda t: f"/api/tags/{t}/summary"), st.just({})),
        st.tuples(path_text.map(lambda t: f"/api/tags/{t}/messages.csv"), query.map(_url_safe).filter(_short_enough)),
        st.tuples(
            st.sampled_from(["/api/tags", "/api/poison", "/api/dashboard"]),
            listing.map(_url_safe).filter(_short_enough),
        ),
        st.tuples(
            st.sampled_from(["/api/messages", "/api/tags/summary", "/api/tags/messages.csv"]),
            query.map(_url_safe).filter(_short_enough),
        ),
    )


def _url_safe(query: dict[str, str]) -> dict[str, str]:
    return {k: v.encode("utf-8", "replace").decode() for k, v in query.items()}


def _short_enough(query: dict[str, str]) -> bool:
    return sum(len(quote(v.encode(), safe="")) for v in query.values()) <= MAX_URL_TEXT


def draw(strategy: st.SearchStrategy[Any], examples: int = EXAMPLES) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


@pytest.fixture
async def api(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    client = await serve_function_app(monkeypatch, app_environment(azurite.connection_string))
    RUNTIME.configure(RUNTIME.settings, acs_transport=httpx.MockTransport(accept_all))
    yield client
    await client.close()
    await RUNTIME.aclose()


async def assert_no_5xx_and_problems(response: Any, case: Any) -> str:
    text = await response.text()
    assert response.status < 500, (case, response.status, text[:2000])
    if "\n" in unquote(response.url.raw_path)[:-1]:
        # The worker's own server answers a path holding a newline before its last character, before
        # any function runs: its catch-all route does not match it (tests/runtime/test_case_table.py).
        assert (response.status, text) == (404, '{"detail":"Not Found"}'), (case, text[:2000])
        return text  # type: ignore[no-any-return]
    if response.status >= 400:
        assert response.headers["Content-Type"].startswith("application/problem+json"), (case, text[:2000])
        assert {"title", "status", "detail"} <= set(json.loads(text))
    return text  # type: ignore[no-any-return]


async def readable(client: Any, message_id: str) -> bool:
    response = await client.get(f"/api/messages/{quote(message_id.encode('utf-8', 'surrogatepass'), safe='')}")
    return bool(response.status == 200)


async def poison_count() -> int:
    return len(await poison_rows(RUNTIME.store(), dt.datetime.now(dt.UTC)))


async def test_hostile_sends_never_5xx_and_every_accepted_recipient_is_readable(api: Any) -> None:
    for body in draw(send_cases()):
        response = await api.post("/api/messages", data=io.BytesIO(body), headers={"content-type": "application/json"})
        text = await assert_no_5xx_and_problems(response, body[:300])
        if response.status == 202:
            for item in json.loads(text)["value"]:
                if item["successful"]:
                    assert await readable(api, item["messageId"]), (body[:300], item)


@pytest.mark.parametrize("path", [WEBHOOK, BATCH])
async def test_hostile_reports_are_acknowledged_and_recorded_or_kept_as_poison(api: Any, path: str) -> None:
    for event in draw(report_cases()):
        before = await poison_count()
        response = await api.post(path, data=io.BytesIO(json.dumps([event]).encode()), headers=NOTIFY)
        await assert_no_5xx_and_problems(response, event)
        assert response.status in (200, 202), event
        message_id = event.get("data", {}).get("messageId") if isinstance(event.get("data"), dict) else None
        recorded = isinstance(message_id, str) and await readable(api, message_id)
        assert recorded or await poison_count() == before + 1, event


def event_time_cases() -> st.SearchStrategy[Any]:
    """Event times as a hostile sender might write them, valid ones (7 fractional digits too) among them."""
    valid = st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.isoformat().replace("+00:00", "Z"))
    return hostile_json() | hostile_text() | valid | st.sampled_from(["2020-09-18T00:22:20.2855749Z", "2020-09-18"])


async def test_hostile_event_times_fail_the_trigger_cleanly_or_are_recorded(api: Any) -> None:
    """The trigger converts the event as the worker does: a time the library cannot read fails the
    delivery (500, nothing written, not even poison: Event Grid redelivers, then dead-letters); any
    other is recorded. The batched webhook reads no event time: it records every one."""
    [event] = fixture("sms_delivery_report.eventgrid.json")
    for event_time in draw(event_time_cases()):
        unique = f"fuzz-{uuid.uuid4()}"
        report = _set(_set(_set(event, ("data", "messageId"), unique), ("id",), unique), ("eventTime",), event_time)
        before = await poison_count()
        response = await api.post(WEBHOOK, data=io.BytesIO(json.dumps([report]).encode()), headers=NOTIFY)
        assert response.status in (202, 500), event_time
        assert await readable(api, unique) is (response.status == 202), event_time
        assert await poison_count() == before, event_time
        batched = await api.post(BATCH, data=io.BytesIO(json.dumps([report]).encode()), headers=NOTIFY)
        assert batched.status == 200, event_time
        assert await readable(api, unique), event_time


async def test_hostile_reads_never_5xx(api: Any) -> None:
    for path, params in draw(read_cases()):
        response = await api.get(path, params=params)
        await assert_no_5xx_and_problems(response, (path, params))
