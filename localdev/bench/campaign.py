"""``make bench``'s campaign scale (issue 14): reads over one big tag, and storage round trips per operation.

- campaign: one tag with N records (``--campaign N``, 20,000; 0 skips it), seeded through the
  app's own store in-process, then read through the local host over HTTP at a fixed concurrency
  (:data:`READ_CONCURRENCY`): the tag's summary, a message by id (random ids of the tag), and the
  first page of ``status=Accepted`` (100 items); against a raw point read in the same run, on the
  raw scratch table. Only the public API is used for the app's side.
- CSV export: the campaign's ``messages.csv`` (time, bytes, and the local host's RSS growth
  while it answers: its peak, reset just before, less its RSS then).
- round trips: storage requests per operation, counted by an HTTP transport that counts every
  request it sends (retries included), so the figures do not depend on the machine. The store
  is built as the app builds it (``TableStore(service, prefix, timeout, token_key)``) and driven
  through the use cases only: a send of 100 recipients, a new report, the same report again
  (a duplicate), a summary (of a small tag and of the campaign's), a read by id, a first page.
  Then the same send and reports with status-change events on (a store wired as ``runtime``
  wires it, publishing to the simulator's topic): storage requests inside each operation (the
  caller waits for them) and after it (the worker's background publish and acknowledgement),
  and publish requests to the topic.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient

from .stack import (
    BENCH_PREFIX,
    SENDER,
    Stack,
    percentile,
    report_event,
    reset_peak,
    run_concurrently,
    seed_records,
    status_kib,
    summary,
)

READ_CONCURRENCY = 4  # a few dashboards at once; more only measures queueing on Azurite's one thread
SUMMARY_CALLS = 20  # at 20,000 messages a summary takes seconds on Azurite (it scans the tag)
PAGE_CALLS = 50
ID_READS = 500
ROUND_TRIP_MESSAGES = 200  # two sends of 100 recipients, then one report each, then the same again


async def campaign_phase(
    stack: Stack, http: httpx.AsyncClient, raw: Any, messages: int, concurrency: int
) -> dict[str, Any]:
    """The campaign's reads (if ``messages`` > 0), then round trips per operation, on one fresh stack."""
    results: dict[str, Any] = {}
    tag = f"campaign-{uuid.uuid4().hex[:8]}"
    if messages > 0:
        results["campaign"] = await _campaign_reads(stack, http, raw, tag, messages, concurrency)
    results["round_trips"] = await round_trips(stack, tag if messages > 0 else None, messages)
    return results


async def _campaign_reads(
    stack: Stack, http: httpx.AsyncClient, raw: Any, tag: str, messages: int, concurrency: int
) -> dict[str, Any]:
    ids = [f"camp-{uuid.uuid4()}" for _ in range(messages)]
    started = time.perf_counter()
    await seed_records(stack, ids, concurrency, tag=tag)
    seed_seconds = time.perf_counter() - started

    first = (await http.get(f"{stack.host}/api/tags/{tag}/summary")).raise_for_status().json()
    if first["total"] != messages or first["byStatus"]["Accepted"] != messages:
        raise AssertionError(f"the summary does not count the seeded campaign: {first}")
    page_url = f"{stack.host}/api/messages?tag={tag}&status=Accepted&pageSize=100"
    page = (await http.get(page_url)).raise_for_status().json()
    if len(page["items"]) != 100 or not page.get("continuationToken"):
        raise AssertionError(f"the first filtered page is not a full page: {len(page['items'])} items")

    sample = random.sample(ids, min(ID_READS, messages))
    summary_wall, summary_lat = await _gets(http, [f"{stack.host}/api/tags/{tag}/summary"] * SUMMARY_CALLS)
    read_wall, read_lat = await _gets(http, [f"{stack.host}/api/messages/{m}" for m in sample])
    page_wall, page_lat = await _gets(http, [page_url] * PAGE_CALLS)

    await run_concurrently(
        len(sample),
        concurrency,
        lambda i: raw.upsert_entity(
            {"PartitionKey": f"c{i}", "RowKey": "r", "status": "Accepted", "n": i}, mode=UpdateMode.REPLACE
        ),
    )
    raw_wall, raw_lat = await run_concurrently(
        len(sample), READ_CONCURRENCY, lambda i: raw.get_entity(f"c{random.randrange(len(sample))}", "r")
    )
    export = await csv_export(stack, http, tag, messages)
    s, r, p, base = (
        summary(SUMMARY_CALLS, summary_wall, summary_lat) | {"p90_ms": round(percentile(summary_lat, 0.9) * 1000, 2)},
        summary(len(sample), read_wall, read_lat),
        summary(PAGE_CALLS, page_wall, page_lat),
        summary(len(sample), raw_wall, raw_lat),
    )
    return {
        "messages": messages,
        "read_concurrency": READ_CONCURRENCY,
        "seed_seconds": round(seed_seconds, 1),
        "seed_per_second": round(messages / seed_seconds, 1),
        "summary": s,
        "read_by_id": r,
        "first_page": p,
        "raw_point_read": base,
        "csv_export": export,
        "summary_p50_over_read_by_id_p50": round(s["p50_ms"] / max(r["p50_ms"], 0.001), 1),
        "summary_p50_over_raw_point_read_p50": round(s["p50_ms"] / max(base["p50_ms"], 0.001), 1),
        "first_page_p50_over_raw_point_read_p50": round(p["p50_ms"] / max(base["p50_ms"], 0.001), 1),
    }


async def csv_export(stack: Stack, http: httpx.AsyncClient, tag: str, messages: int) -> dict[str, Any]:
    """``GET /api/tags/{tag}/messages.csv`` of the whole campaign: time to the first byte and to the
    last, size, and how much the local host's RSS grew (its peak, reset just before through
    ``/proc/<pid>/clear_refs``, less its RSS then). The client reads the body as a stream, so only
    the host's memory is measured."""
    pid = stack.host_pid()
    if pid is None:
        raise AssertionError("the local host's pid is unknown")
    reset_peak(pid)
    before = status_kib(pid, "VmRSS")
    started = time.perf_counter()
    rows, size, first_byte = -1, 0, None  # the header is not a message
    async with http.stream("GET", f"{stack.host}/api/tags/{tag}/messages.csv") as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            rows += chunk.count(b"\n")  # a CRLF may be split between two reads
    seconds = time.perf_counter() - started
    peak = status_kib(pid, "VmHWM")
    if rows != messages:
        raise AssertionError(f"the CSV holds {rows} rows, not {messages}")
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "first_byte_seconds": round(first_byte or seconds, 3),
        "rows_per_second": round(rows / seconds, 1),
        "host_rss_before_mib": round(before / 1024, 1),
        "host_rss_peak_mib": round(peak / 1024, 1),
        "host_rss_growth_mib": round((peak - before) / 1024, 1),
    }


async def _gets(http: httpx.AsyncClient, urls: list[str]) -> tuple[float, list[float]]:
    async def one(i: int) -> None:
        (await http.get(urls[i])).raise_for_status()

    return await run_concurrently(len(urls), READ_CONCURRENCY, one)


class CountingTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core exports it lazily, untyped
    """azure-core's aiohttp transport, counting every request it sends (each retry is a request)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests = 0
        self.intent_requests = 0  # to the Intents table (a send's intent: written, then removed)
        self.results_requests = 0  # to the Requests table (client ids: read, claimed, answered)

    async def send(self, request: Any, **config: Any) -> Any:
        self.requests += 1
        if f"{BENCH_PREFIX}Intents" in str(request.url):
            self.intent_requests += 1
        if f"{BENCH_PREFIX}Requests" in str(request.url):
            self.results_requests += 1
        return await super().send(request, **config)


class _AcceptEveryone:
    """An ``MmsSender`` that accepts every recipient without a network call (only storage is counted)."""

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "value": [
                {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
                for r in payload["recipients"]
            ]
        }


async def round_trips(stack: Stack, campaign_tag: str | None, campaign_messages: int) -> dict[str, Any]:
    """Storage requests per operation, through the use cases and a store built as the app builds it."""
    from mms_tracker.adapters.tables.store import TableStore
    from mms_tracker.domain import Status
    from mms_tracker.service.queries import get_message, list_messages
    from mms_tracker.service.sending import MmsRequest, Recipient, SendDeps, send_mms
    from mms_tracker.service.tracking import ingest_event

    transport = CountingTransport(use_env_settings=False)
    service = TableServiceClient.from_connection_string(stack.storage, transport=transport, use_env_settings=False)
    store = TableStore(service, BENCH_PREFIX, 30.0, token_key=None)
    await store.ensure_tables()
    tag = f"rt-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC)

    async def per(operations: int, run: Callable[[], Awaitable[object]]) -> float:
        before = transport.requests
        await run()
        return round((transport.requests - before) / operations, 2)

    async def sequentially(calls: Sequence[Callable[[], Awaitable[object]]]) -> None:
        for call in calls:
            await call()

    ids: list[str] = []

    async def send_100(*, intent: bool = True, client_ids: bool = False) -> None:
        first_sent = "Sun, 29 Nov 2026 09:00:00 GMT"
        recipients = tuple(
            Recipient(f"+1833585{n:04d}", str(uuid.uuid4()), first_sent)
            if client_ids
            else Recipient(f"+1833585{n:04d}")
            for n in range(100)
        )
        request = MmsRequest(SENDER, recipients, "bench", (), tag)
        items = await send_mms(
            request,
            SendDeps(_AcceptEveryone(), store, store, dt.timedelta(hours=72), intents=store if intent else None),
            now,
        )
        ids.extend(str(item["messageId"]) for item in items)

    try:
        sends = ROUND_TRIP_MESSAGES // 100
        without_intent = functools.partial(send_100, intent=False)
        intent_before = transport.intent_requests
        figures: dict[str, Any] = {
            "send_of_100_recipients": await per(sends, lambda: sequentially([send_100] * sends)),
            "of_which_to_the_intents_table": (transport.intent_requests - intent_before) / sends,
            # the same send without its intent (issue 19): the difference is what the intent costs
            "send_of_100_recipients_without_intent": await per(sends, lambda: sequentially([without_intent] * sends)),
        }
        # with the client's own repeatabilityRequestIds: each is read, claimed before the call, answered after
        with_ids = functools.partial(send_100, client_ids=True)
        results_before = transport.results_requests
        figures["send_of_100_recipients_with_client_ids"] = await per(sends, lambda: sequentially([with_ids] * sends))
        figures["of_which_to_the_requests_table"] = (transport.results_requests - results_before) / sends
        envelopes = [report_event(m, tag=tag) for m in ids]
        ingest = [functools.partial(ingest_event, store, e, now) for e in envelopes]
        figures["new_report"] = await per(len(ids), lambda: sequentially(ingest))
        figures["duplicate_report"] = await per(len(ids), lambda: sequentially(ingest))
        reads = [functools.partial(get_message, store, m) for m in ids]
        figures["read_by_id"] = await per(len(ids), lambda: sequentially(reads))
        figures[f"summary_of_{len(ids)}_messages"] = await per(1, lambda: store.tag_counts(tag))
        if campaign_tag is not None:
            figures[f"summary_of_{campaign_messages}_messages"] = await per(1, lambda: store.tag_counts(campaign_tag))
            await list_messages(store, campaign_tag, Status.ACCEPTED, 100, None)  # loads the token key once
            figures["first_filtered_page_of_100"] = await per(
                1, lambda: list_messages(store, campaign_tag, Status.ACCEPTED, 100, None)
            )
        figures["with_status_events"] = await _round_trips_with_status_events(stack, now)
        return figures
    finally:
        await store.close()


class _CountingTopic:
    """The app's Event Grid publisher, counting publish requests (one per batch)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests = 0
        self.events = 0

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.requests += 1
        self.events += len(events)
        await self.inner.publish(events)


async def _round_trips_with_status_events(stack: Stack, now: dt.datetime) -> dict[str, Any]:
    """Storage requests per operation with status-change events on, split into what the operation
    itself waits for (``inline``) and what the worker does after it (``background``)."""
    from azure.core.credentials import AzureKeyCredential

    from localdev import simulator
    from mms_tracker.adapters.eventgrid import EventGridStatusPublisher
    from mms_tracker.adapters.tables.store import TableStore
    from mms_tracker.service.sending import MmsRequest, Recipient, SendDeps, send_mms
    from mms_tracker.service.status_events import StatusPublishing, event_source
    from mms_tracker.service.tracking import ingest_event

    transport = CountingTransport(use_env_settings=False)
    service = TableServiceClient.from_connection_string(stack.storage, transport=transport, use_env_settings=False)
    endpoint = simulator.topic_endpoint(stack.ports["ACS_SIMULATOR_PORT"])
    topic = _CountingTopic(EventGridStatusPublisher(endpoint, AzureKeyCredential(simulator.TOPIC_KEY)))
    publishings: list[StatusPublishing] = []  # the listener is given to the store it publishes from
    store = TableStore(
        service,
        BENCH_PREFIX,
        30.0,
        token_key=None,
        status_listener=lambda record: publishings[0].notify(record),
        status_events_enabled=True,
    )
    publishing = StatusPublishing(store, topic, event_source(None))
    publishings.append(publishing)
    await store.ensure_tables()
    tag = f"rt-events-{uuid.uuid4().hex[:8]}"
    ids: list[str] = []

    async def measured(calls: Sequence[Callable[[], Awaitable[object]]], per: int = 1) -> dict[str, float]:
        """Each call alone: what it waits for, then what the worker does after it (drained in between)."""
        inline = background = publishes = 0
        for call in calls:
            before = transport.requests
            await call()
            inline += transport.requests - before
            before, publishes_before = transport.requests, topic.requests
            await publishing.drain()
            background += transport.requests - before
            publishes += topic.requests - publishes_before
        operations = len(calls) * per
        return {
            "inline": round(inline / operations, 2),
            "background": round(background / operations, 2),
            "topic_publishes": round(publishes / operations, 3),
        }

    async def send_100() -> None:
        request = MmsRequest(SENDER, tuple(Recipient(f"+1833586{n:04d}") for n in range(100)), "bench", (), tag)
        items = await send_mms(request, SendDeps(_AcceptEveryone(), store, store, dt.timedelta(hours=72)), now)
        ids.extend(str(item["messageId"]) for item in items)

    async def burst(envelopes: list[dict[str, Any]]) -> dict[str, float]:
        """Every report at once, as a campaign's reports arrive: how the worker batches its publishes."""
        storage_before, publishes_before, events_before = transport.requests, topic.requests, topic.events
        await asyncio.gather(*(ingest_event(store, e, now) for e in envelopes))
        await publishing.drain()
        return {
            "storage_requests_per_report": round((transport.requests - storage_before) / len(envelopes), 2),
            "topic_publishes_per_report": round((topic.requests - publishes_before) / len(envelopes), 3),
            "events_per_publish": round((topic.events - events_before) / max(1, topic.requests - publishes_before), 1),
        }

    try:
        figures = {"per_recipient_of_a_send_of_100": await measured([send_100], per=100)}
        envelopes = [report_event(m, tag=tag) for m in ids]
        ingest = [functools.partial(ingest_event, store, e, now) for e in envelopes]
        figures["new_report"] = await measured(ingest)
        figures["duplicate_report"] = await measured(ingest)
        ids.clear()
        await send_100()
        await publishing.drain()
        figures["burst_of_100_new_reports"] = await burst([report_event(m, tag=tag) for m in ids])
        return figures
    finally:
        await publishing.close()
        await topic.inner.close()
        await store.close()
