"""The read use cases: one message, a page of a tag's messages, a tag's counts and statistics,
the tags by activity, the poison entries, and a tag's export page by page."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

from ..domain import Status, TrackingRecord
from ..domain.statistics import Latency, failure_reasons, latency_of
from .ports import Dashboards, Page, PoisonEntry, TagActivity, TrackingStore

EXPORT_PAGE_SIZE = 1000  # records read per round trip while exporting


class MessageNotFound(LookupError):
    """No tracking record has this message id."""


async def get_message(store: TrackingStore, message_id: str) -> TrackingRecord:
    record = await store.get(message_id)
    if record is None:
        raise MessageNotFound(message_id)
    return record


async def list_messages(
    store: TrackingStore, tag: str, status: Status | None, page_size: int, continuation_token: str | None
) -> Page:
    """One page of a tag's messages (records without history), read from the tag's own index only."""
    return await store.list_tag(tag, status, page_size, continuation_token)


@dataclass(frozen=True)
class TagReport:
    """A tag's counts, delivery latency and top failure reasons, all read from its counters."""

    by_status: dict[Status, int]
    latency: Latency
    failure_reasons: dict[str, int]


@dataclass(frozen=True)
class TagListing:
    items: list[tuple[TagActivity, dict[Status, int]]]
    continuation_token: str | None


def _by_status(counters: Mapping[str, int]) -> dict[Status, int]:
    return {status: int(counters.get(status.value, 0)) for status in Status}


async def tag_report(store: Dashboards, tag: str) -> TagReport:
    """Counts, latency and failure reasons for ``tag``: its shards' counters, never a scan."""
    counters = await store.tag_counters(tag)
    return TagReport(_by_status(counters), latency_of(counters), failure_reasons(counters))


async def list_tags(store: Dashboards, page_size: int, continuation_token: str | None) -> TagListing:
    """One page of tags, newest activity first, each with its counts (read concurrently)."""
    activity, token = await store.tag_activity(page_size, continuation_token)
    counters = await asyncio.gather(*(store.tag_counters(a.tag) for a in activity))
    return TagListing([(a, _by_status(c)) for a, c in zip(activity, counters, strict=True)], token)


async def poison_entries(
    store: Dashboards, since: dt.date, page_size: int, continuation_token: str | None
) -> tuple[list[PoisonEntry], str | None]:
    return await store.poison_page(since, page_size, continuation_token)


async def export_records(
    store: Dashboards, tag: str, status: Status | None, page_size: int = EXPORT_PAGE_SIZE
) -> AsyncGenerator[list[TrackingRecord], None]:
    """Every record of ``tag`` (without history), a page at a time, so no more than a page is held."""
    token: str | None = None
    while True:
        page = await store.list_tag(tag, status, page_size, token)
        if page.items:
            yield page.items
        token = page.continuation_token
        if token is None:
            return
