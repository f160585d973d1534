"""The read use cases: one message, a page of a tag's messages, a tag's counts."""

from __future__ import annotations

from ..domain import Status, TrackingRecord
from .ports import Page, TrackingStore


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


async def tag_summary(store: TrackingStore, tag: str) -> dict[Status, int]:
    """Messages per status for ``tag``, every status present (zeros included)."""
    counts = await store.tag_counts(tag)
    return {status: int(counts.get(status.value, 0)) for status in Status}
