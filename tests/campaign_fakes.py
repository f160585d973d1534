"""Hand-written fakes for the campaign ports and an ACS that behaves as ACS does for repeatability."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mms_tracker.service.campaign_ports import CampaignChanged, CampaignNotFound
from mms_tracker.service.ports import StorageUnavailable


class Campaigns:
    """``CampaignStore`` in a dict, with ETags; ``conflicts`` makes the next replaces lose the race."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[dict[str, Any], int]] = {}
        self.index: dict[str, str] = {}
        self.conflicts = 0
        self.replace_failures = 0

    async def create_campaign(self, campaign: Mapping[str, Any]) -> bool:
        if campaign["campaignId"] in self.items:
            return False
        self.items[campaign["campaignId"]] = (copy.deepcopy(dict(campaign)), 1)
        return True

    async def get_campaign(self, campaign_id: str) -> tuple[dict[str, Any], str]:
        if campaign_id not in self.items:
            raise CampaignNotFound(campaign_id)
        campaign, version = self.items[campaign_id]
        return copy.deepcopy(campaign), str(version)

    async def replace_campaign(self, campaign: Mapping[str, Any], etag: str) -> None:
        if self.replace_failures:
            self.replace_failures -= 1
            raise StorageUnavailable("down")
        current, version = self.items[campaign["campaignId"]]
        if self.conflicts:
            self.conflicts -= 1
            self.items[campaign["campaignId"]] = (current, version + 1)  # someone else wrote meanwhile
            raise CampaignChanged(campaign["campaignId"])
        if str(version) != etag:
            raise CampaignChanged(campaign["campaignId"])
        self.items[campaign["campaignId"]] = (copy.deepcopy(dict(campaign)), version + 1)

    async def index_campaign(self, campaign_id: str, created_at: dt.datetime) -> None:
        self.index[f"{10**13 - int(created_at.timestamp() * 1000):015d}|{campaign_id}"] = campaign_id

    async def list_campaigns(self, page_size: int, after: str | None) -> tuple[list[str], str | None]:
        keys = sorted(k for k in self.index if after is None or k > after)
        page = keys[:page_size]
        return [self.index[k] for k in page], (page[-1] if len(keys) > page_size else None)

    def get(self, campaign_id: str) -> dict[str, Any]:
        return self.items[campaign_id][0]


class Queue:
    """``ChunkQueue``: what was enqueued (with visibility) and poisoned; ``failures`` fail the next enqueues."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, int]] = []
        self.poisoned: list[str] = []
        self.failures = 0

    async def enqueue(self, messages: list[str], visibility_timeout: int = 0) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("queue down")
        self.messages += [(m, visibility_timeout) for m in messages]

    async def poison(self, message: str) -> None:
        self.poisoned.append(message)


class Attachments:
    def __init__(self) -> None:
        self.stored: dict[str, list[dict[str, str]]] = {}
        self.puts = 0

    async def put_attachments(self, campaign_id: str, attachments: list[dict[str, str]]) -> None:
        self.puts += 1
        self.stored[campaign_id] = list(attachments)

    async def get_attachments(self, campaign_id: str) -> list[dict[str, str]]:
        return self.stored[campaign_id]


class RepeatableAcs:
    """An ACS that sends each repeatabilityRequestId once (a repeat gets the first result), and raises
    the exceptions in ``faults`` on its next calls (``lose_response``: send, then raise)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.first: dict[str, dict[str, Any]] = {}
        self.faults: list[Exception] = []
        self.lose_response: Exception | None = None

    @property
    def sent(self) -> Counter[str]:
        """How many times each number was really sent (repeats answered from the first result excluded)."""
        return Counter(item["to"] for item in self.first.values())

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(copy.deepcopy(dict(payload)))
        if self.faults:
            raise self.faults.pop(0)
        value = []
        for r in payload["recipients"]:
            rid = r["repeatabilityRequestId"]
            if rid in self.first:
                value.append({**self.first[rid], "repeatabilityResult": "accepted"})
                continue
            item = {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
            self.first[rid] = item
            value.append(item)
        if self.lose_response is not None:
            lost, self.lose_response = self.lose_response, None
            raise lost
        return {"value": value}


class LocalThrottle:
    """A ``Throttle`` for one process: at most ``per_second`` requests per second per sender, on
    ``clock``, with no storage (the app's ``SendThrottle`` shares its slots through the table)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, sender: str, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        async with self._lock:
            now = self.clock()
            slot = max(now, self._next.get(sender, now))
            self._next[sender] = slot + self.interval
        if slot > now:
            await sleep(slot - now)
