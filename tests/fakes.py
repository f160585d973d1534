"""Hand-written fakes for the ports (no mocking library)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from mms_tracker.domain import Change, Status, TrackingRecord
from mms_tracker.domain.statistics import contribution
from mms_tracker.domain.timestamps import shifted
from mms_tracker.service.ports import Page, PoisonEntry, SendIntent, StorageUnavailable, TagActivity


class InMemoryStore:
    """The store ports (``TrackingStore``, ``SendResults``) and a health check, in dicts."""

    def __init__(self) -> None:
        self.records: dict[str, TrackingRecord] = {}
        self.due_entries: dict[str, dt.datetime] = {}
        self.poison: list[tuple[Mapping[str, Any], str]] = []
        self.cursor: dt.datetime | None = None
        self.send_results: dict[str, dict[str, Any]] = {}
        self.down = False
        self.pages_read = 0  # list_tag calls: a streamed export reads one page per chunk
        self.retirement_entries: dict[str, dt.datetime] = {}
        self.retire_cursor: dt.datetime | None = None
        self.intents: dict[str, SendIntent] = {}
        self.intents_down = False  # only the intent writes fail (storage down before the ACS call)

    async def get(self, message_id: str) -> TrackingRecord | None:
        return self.records.get(message_id)

    async def apply(
        self,
        message_id: str,
        decide: Callable[[TrackingRecord | None], Change | None],
        *,
        tag: str | None = None,
        expect_new: bool = False,
    ) -> Change | None:
        change = decide(self.records.get(message_id))
        if change is not None and change.changed:
            self.records[message_id] = change.after
        return change

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None:
        self.due_entries[message_id] = due_at

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]:
        return [(m, d) for m, d in self.due_entries.items() if d.replace(minute=0, second=0, microsecond=0) == hour]

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None:
        self.due_entries.pop(message_id, None)

    async def due_cursor(self) -> dt.datetime | None:
        return self.cursor

    async def set_due_cursor(self, hour: dt.datetime) -> None:
        self.cursor = hour

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None:
        self.poison.append((envelope, reason))

    async def list_tag(self, tag: str, status: Status | None, page_size: int, continuation_token: str | None) -> Page:
        if self.down:
            raise StorageUnavailable("down")
        self.pages_read += 1
        matching = sorted(
            (r for r in self.records.values() if r.tag == tag and (status is None or r.status is status)),
            key=lambda r: r.message_id,
        )
        start = int(continuation_token or 0)
        end = start + page_size
        return Page(matching[start:end], str(end) if end < len(matching) else None)

    async def tag_counts(self, tag: str) -> Mapping[str, int]:
        return Counter(r.status.value for r in self.records.values() if r.tag == tag)

    async def tag_counters(self, tag: str) -> Mapping[str, int]:
        """A recount: what every record of the tag counts for (``domain.statistics.contribution``)."""
        counters: Counter[str] = Counter()
        for record in self.records.values():
            if record.tag == tag:
                counters.update(contribution(record))
        return counters

    async def tag_activity(
        self, page_size: int, continuation_token: str | None
    ) -> tuple[list[TagActivity], str | None]:
        if self.down:
            raise StorageUnavailable("down")
        latest: dict[str, dt.datetime] = {}
        for r in self.records.values():
            if r.tag:
                latest[r.tag] = max(latest.get(r.tag, r.updated_at), r.updated_at)
        ordered = sorted(latest.items(), key=lambda item: (-item[1].timestamp(), item[0]))
        start = int(continuation_token or 0)
        end = start + page_size
        return [TagActivity(t, at) for t, at in ordered[start:end]], str(end) if end < len(ordered) else None

    async def poison_page(
        self, since: dt.date, page_size: int, continuation_token: str | None
    ) -> tuple[list[PoisonEntry], str | None]:
        entries = [
            PoisonEntry(
                str(e.get("id", "")), str(e.get("eventType", "")), reason, "2026-11-27T09:00:00Z", str(e)[:2000]
            )
            for e, reason in self.poison
        ]
        start = int(continuation_token or 0)
        end = start + page_size
        return entries[start:end], str(end) if end < len(entries) else None

    async def get_send_results(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self.send_results[i] for i in request_ids if i in self.send_results}

    async def put_send_results(self, results: Mapping[str, dict[str, Any]]) -> None:
        self.send_results.update(results)

    async def claim_send_ids(self, claims: Mapping[str, str]) -> tuple[set[str], set[str]]:
        made, taken = set(), set()
        for request_id, fingerprint in claims.items():
            held = self.send_results.get(request_id)
            if held is None:
                self.send_results[request_id] = {"request": fingerprint}
                made.add(request_id)
            elif held.get("request") != fingerprint:
                taken.add(request_id)
        return made, taken

    async def release_send_claims(self, claims: Mapping[str, str]) -> None:
        for request_id, fingerprint in claims.items():
            held = self.send_results.get(request_id)
            if held is not None and "item" not in held and held.get("request") == fingerprint:
                del self.send_results[request_id]

    async def ping(self) -> None:
        if self.down:
            raise StorageUnavailable("down")

    async def close(self) -> None:
        pass

    async def add_retirement(self, message_id: str, at: dt.datetime) -> None:
        self.retirement_entries[message_id] = at

    async def retirements(self, day: dt.datetime, limit: int) -> list[tuple[str, dt.datetime]]:
        found = [(m, at) for m, at in self.retirement_entries.items() if at.date() == day.date()]
        return found[:limit]

    async def remove_retirement(self, message_id: str, at: dt.datetime) -> None:
        if self.retirement_entries.get(message_id) == at:
            del self.retirement_entries[message_id]

    async def retirement_cursor(self) -> dt.datetime | None:
        return self.retire_cursor

    async def set_retirement_cursor(self, day: dt.datetime) -> None:
        self.retire_cursor = day

    async def retire(self, message_id: str, now: dt.datetime, keep: dt.timedelta) -> dt.datetime | None:
        record = self.records.get(message_id)
        if record is None:
            return None
        due = shifted(record.completed_at or now, keep)
        if record.completed_at is None or due > now:
            return due
        del self.records[message_id]
        return None

    async def put_intent(self, intent: SendIntent) -> None:
        if self.down or self.intents_down:
            raise StorageUnavailable("down")
        self.intents[intent.intent_id] = intent

    async def remove_intent(self, intent: SendIntent) -> None:
        if self.down:
            raise StorageUnavailable("down")
        self.intents.pop(intent.intent_id, None)

    async def intents_before(self, moment: dt.datetime, limit: int) -> list[SendIntent]:
        if self.down:
            raise StorageUnavailable("down")
        found = sorted((i for i in self.intents.values() if i.created_at < moment), key=lambda i: i.created_at)
        return found[:limit]

    async def note_intent_attempt(self, intent: SendIntent, error: str) -> None:
        if intent.intent_id in self.intents:
            kept = self.intents[intent.intent_id]
            self.intents[intent.intent_id] = replace(kept, attempts=kept.attempts + 1, last_error=error)

    async def claim_intent(self, intent: SendIntent, until: dt.datetime) -> bool:
        """Conditional on the intent being as read (its claim unchanged), as the ETag makes it."""
        kept = self.intents.get(intent.intent_id)
        if kept is None or kept.claimed_until != intent.claimed_until:
            return False
        self.intents[intent.intent_id] = replace(kept, claimed_until=until)
        return True


class RecordsDown(InMemoryStore):
    """Storage that keeps intents but fails every record and result write while ``fail`` is set."""

    fail = True

    async def apply(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail:
            raise StorageUnavailable("down")
        return await super().apply(*args, **kwargs)

    async def put_send_results(self, results: Mapping[str, dict[str, Any]]) -> None:
        if self.fail:
            raise StorageUnavailable("down")
        await super().put_send_results(results)


def accept_all(request: httpx.Request) -> httpx.Response:
    """ACS behind ``httpx.MockTransport``: every recipient accepted, each under a new messageId."""
    body = json.loads(request.content)
    value = [
        {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
        for r in body["recipients"]
    ]
    return httpx.Response(202, json={"value": value})
