"""``make bench``'s campaign scale (issue 14): reads over one big tag, and storage round trips per operation.

- campaign: one tag with N records (``--campaign N``, 20,000; 0 skips it), seeded through the
  app's own store in-process, then read through the local host over HTTP at a fixed concurrency
  (:data:`READ_CONCURRENCY`): the tag's summary, a message by id (random ids of the tag), and the
  first page of ``status=Accepted`` (100 items); against a raw point read in the same run, on the
  raw scratch table. Only the public API is used for the app's side.
- round trips: storage requests per operation, counted by an HTTP transport that counts every
  request it sends (retries included), so the figures do not depend on the machine. The store
  is built as the app builds it (``TableStore(service, prefix, timeout, token_key)``) and driven
  through the use cases only: a send of 100 recipients, a new report, the same report again
  (a duplicate), a summary (of a small tag and of the campaign's), a read by id, a first page.
"""

from __future__ import annotations

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

from .bench_stack import BENCH_PREFIX, SENDER, Stack, percentile, report_event, run_concurrently, seed_records, summary

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
        "summary_p50_over_read_by_id_p50": round(s["p50_ms"] / max(r["p50_ms"], 0.001), 1),
        "summary_p50_over_raw_point_read_p50": round(s["p50_ms"] / max(base["p50_ms"], 0.001), 1),
        "first_page_p50_over_raw_point_read_p50": round(p["p50_ms"] / max(base["p50_ms"], 0.001), 1),
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

    async def send(self, request: Any, **config: Any) -> Any:
        self.requests += 1
        if f"{BENCH_PREFIX}Intents" in str(request.url):
            self.intent_requests += 1
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
    from mms_tracker.service.queries import get_message, list_messages, tag_summary
    from mms_tracker.service.sending import MmsRequest, Recipient, send_mms
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

    async def send_100(*, intent: bool = True) -> None:
        request = MmsRequest(SENDER, tuple(Recipient(f"+1833585{n:04d}") for n in range(100)), "bench", (), tag)
        items = await send_mms(
            request, _AcceptEveryone(), store, store, now, dt.timedelta(hours=72), intents=store if intent else None
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
        envelopes = [report_event(m, tag=tag) for m in ids]
        ingest = [functools.partial(ingest_event, store, e, now) for e in envelopes]
        figures["new_report"] = await per(len(ids), lambda: sequentially(ingest))
        figures["duplicate_report"] = await per(len(ids), lambda: sequentially(ingest))
        reads = [functools.partial(get_message, store, m) for m in ids]
        figures["read_by_id"] = await per(len(ids), lambda: sequentially(reads))
        figures[f"summary_of_{len(ids)}_messages"] = await per(1, lambda: tag_summary(store, tag))
        if campaign_tag is not None:
            figures[f"summary_of_{campaign_messages}_messages"] = await per(1, lambda: tag_summary(store, campaign_tag))
            await list_messages(store, campaign_tag, Status.ACCEPTED, 100, None)  # loads the token key once
            figures["first_filtered_page_of_100"] = await per(
                1, lambda: list_messages(store, campaign_tag, Status.ACCEPTED, 100, None)
            )
        return figures
    finally:
        await store.close()
