"""Events that can never be processed, kept for inspection."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
)
from azure.data.tables import UpdateMode

from ...service.ports import PoisonEntry
from .encoding import (
    POISON_PAYLOAD_CHARS,
    iso,
    json_safe,
    table_key,
    time_key,
)
from .tokens import TokenSealing

POISON_PREVIEW_CHARS = 2_000  # what a listing shows of each payload


def poison_fingerprint(envelope: Mapping[str, Any], payload: str) -> str:
    """The event's content as one value: the SHA-256 of its JSON with sorted keys (so the same event
    is the same whatever order its fields came in), or of ``payload`` when it has no such form."""
    try:
        canonical = json.dumps(envelope, default=str, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):  # TypeError: keys of mixed types cannot be sorted
        canonical = payload
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class PoisonTables(TokenSealing):
    """The ``Poison`` table."""

    # --- poison ------------------------------------------------------------------------------

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None:
        """Keep an unprocessable event (payload capped) with the reason, under its event id and a
        fingerprint of its content: a redelivery on the same day overwrites its entry, and another
        event under the same id (ACS reuses the messageId as the event id) gets its own."""
        await self.ensure_tables()
        try:
            payload = json.dumps(envelope, default=str)
        except (ValueError, RecursionError):
            payload = json.dumps({"unserialisable": True})
        fingerprint = poison_fingerprint(envelope, payload)
        event_id = str(envelope.get("id") or fingerprint)
        entity = {
            "PartitionKey": time_key(now, 8),
            # Percent-encoding is one-to-one and the fingerprint has a fixed length, so two different
            # (id, content) pairs never share a key; table_key hashes what would pass the key limit.
            "RowKey": table_key(f"{event_id}|{fingerprint}"),
            "eventId": json_safe(event_id[:1000]),
            "reason": json_safe(reason[:1000]),
            "eventType": json_safe(str(envelope.get("eventType") or envelope.get("type") or "")[:256]),
            "payload": payload[:POISON_PAYLOAD_CHARS],
            "truncated": len(payload) > POISON_PAYLOAD_CHARS,
            "recordedAt": iso(now),
        }
        try:
            await self.poison.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc

    async def poison_page(
        self, since: dt.date, page_size: int, continuation_token: str | None
    ) -> tuple[list[PoisonEntry], str | None]:
        """One page of the entries recorded on ``since`` or later, oldest day first (day partitions)."""
        await self.ensure_tables()
        key = await self._sealing_key()
        day = time_key(since, 8)
        position = self._open_token(key, continuation_token, day, None, kind="poison") if continuation_token else None
        try:
            pages = self.poison.query_entities(
                "PartitionKey ge @day", parameters={"day": day}, results_per_page=page_size
            ).by_page(continuation_token=position)  # type: ignore[arg-type]  # the Tables pager takes its dict token
            entities = [e async for e in await anext(pages)]
            next_position = pages.continuation_token  # type: ignore[attr-defined]
        except StopAsyncIteration:
            entities, next_position = [], None
        except (AzureError, OSError) as exc:
            raise self._lost(exc) from exc
        items = [
            PoisonEntry(
                event_id=str(e.get("eventId", "")),
                event_type=str(e.get("eventType", "")),
                reason=str(e.get("reason", "")),
                recorded_at=str(e.get("recordedAt", "")),
                payload=str(e.get("payload", ""))[:POISON_PREVIEW_CHARS],
            )
            for e in entities
        ]
        token = self._seal_token(key, next_position, day, None, kind="poison") if next_position else None
        return items, token
