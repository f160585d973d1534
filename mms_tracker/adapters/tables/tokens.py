"""Continuation tokens: sealed with an HMAC, bound to their tag and status filter."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
)

from ...domain import Status
from ...service.ports import (
    InvalidContinuationToken,
)
from .base import Tables
from .encoding import (
    META_PARTITION,
)


class TokenSealing(Tables):
    """The key that seals listing tokens, and sealing and opening them."""

    async def _sealing_key(self) -> bytes:
        """``QUERY_TOKEN_KEY``, or else a random key made on first use and kept in storage, so that
        every instance shares it and no token can be forged from public facts."""
        if self._token_key is None:
            await self.ensure_tables()
            fresh = {"PartitionKey": META_PARTITION, "RowKey": "queryTokenKey", "key": secrets.token_urlsafe(32)}
            try:
                with contextlib.suppress(ResourceExistsError):
                    await self.requests.create_entity(fresh)
                entity = await self.requests.get_entity(META_PARTITION, "queryTokenKey")
            except (AzureError, OSError) as exc:
                raise self._lost(exc) from exc
            self._token_key = str(entity["key"]).encode()
        return self._token_key

    @staticmethod
    def _seal_token(
        key: bytes, position: Mapping[str, Any], tag: str, status: Status | None, kind: str = "messages"
    ) -> str:
        """A token for ``position`` in the listing ``kind`` (messages, tags, poison) of ``tag`` and ``status``."""
        body: dict[str, Any] = {"p": position, "t": tag, "s": status.value if status else None}
        if kind != "messages":
            body["k"] = kind
        payload = json.dumps(body, separators=(",", ":"))
        mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload.encode()).decode().rstrip("=")

    @staticmethod
    def _open_token(key: bytes, token: str, tag: str, status: Status | None, kind: str = "messages") -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:16], raw[16:]
            if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()[:16]):
                raise InvalidContinuationToken("continuationToken was not issued by this service")
            body = json.loads(payload)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidContinuationToken("continuationToken is not a token this service issued") from exc
        if not isinstance(body, dict):
            raise InvalidContinuationToken("continuationToken is not a token this service issued")
        if body.get("k", "messages") != kind:
            raise InvalidContinuationToken(f"continuationToken belongs to another listing than {kind}")
        if body.get("t") != tag or body.get("s") != (status.value if status else None):
            raise InvalidContinuationToken("continuationToken belongs to another tag or status filter")
        position = body.get("p")
        if not isinstance(position, dict):
            raise InvalidContinuationToken("continuationToken is not a token this service issued")
        return position
