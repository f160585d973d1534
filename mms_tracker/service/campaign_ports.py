"""The campaign ports: the job's entity under ETag, the chunk queue and the stored attachments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol


class CampaignNotFound(LookupError):
    """No campaign is stored under this id."""


class CampaignChanged(Exception):
    """The campaign's entity changed since it was read (its ETag no longer matches): read it again."""


class CampaignStore(Protocol):
    """One entity per campaign, replaced only under the ETag it was read with."""

    async def create_campaign(self, campaign: Mapping[str, Any]) -> bool:
        """Insert ``campaign``; False (and nothing written) when its id already exists."""
        ...

    async def get_campaign(self, campaign_id: str) -> tuple[dict[str, Any], str]:
        """The campaign and its ETag; :class:`CampaignNotFound` when absent."""
        ...

    async def replace_campaign(self, campaign: Mapping[str, Any], etag: str) -> None:
        """Replace the campaign if its ETag is still ``etag``; :class:`CampaignChanged` otherwise."""
        ...

    async def index_campaign(self, campaign_id: str, created_at: dt.datetime) -> None:
        """List the campaign among the others, newest first (idempotent)."""
        ...

    async def list_campaigns(self, page_size: int, after: str | None) -> tuple[list[str], str | None]:
        """Up to ``page_size`` campaign ids, newest first, from after the cursor ``after``; and the next cursor."""
        ...


class ChunkQueue(Protocol):
    """The queue that drives the worker (one message per chunk) and its poison queue."""

    async def enqueue(self, messages: list[str], visibility_timeout: int = 0) -> None: ...

    async def poison(self, message: str) -> None: ...


class AttachmentStore(Protocol):
    """A campaign's attachments, stored once (not per chunk)."""

    async def put_attachments(self, campaign_id: str, attachments: list[dict[str, str]]) -> None: ...

    async def get_attachments(self, campaign_id: str) -> list[dict[str, str]]: ...
