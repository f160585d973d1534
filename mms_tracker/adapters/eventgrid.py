"""The Event Grid topic that status-change events go to (``azure.eventgrid.aio.EventGridPublisherClient``).

Authenticates with the topic's access key (``AzureKeyCredential``, sent as ``aeg-sas-key``) when
one is configured, otherwise with a token credential (``DefaultAzureCredential``: the app's
identity, which needs ``EventGrid Data Sender`` on the topic). The client makes one attempt per
publish: retrying, with backoff, is the outbox's job (``service.status_events``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.core.messaging import CloudEvent
from azure.eventgrid.aio import EventGridPublisherClient

from ..service.ports import PublishFailed

_ENVELOPE = ("specversion", "type", "source", "id", "time", "subject", "datacontenttype", "data")


class EventGridStatusPublisher:
    """Publishes CloudEvents (given as dicts) to one Event Grid topic, a batch per request."""

    def __init__(
        self,
        endpoint: str,
        credential: AzureKeyCredential | AsyncTokenCredential,
        *,
        timeout_seconds: float = 10.0,
        **client_options: Any,
    ) -> None:
        self._credential = credential
        self._client = EventGridPublisherClient(
            endpoint,
            credential,
            retry_total=0,
            connection_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            **client_options,
        )

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Send ``events`` in one request; raise :class:`PublishFailed` if the topic did not take them all."""
        if not events:
            return
        cloud_events = [
            CloudEvent(
                source=e["source"],
                type=e["type"],
                id=e["id"],
                time=dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00")),
                subject=e.get("subject"),
                datacontenttype=e.get("datacontenttype"),
                data=e.get("data"),
                extensions={k: v for k, v in e.items() if k not in _ENVELOPE} or None,
            )
            for e in events
        ]
        try:
            await self._client.send(cloud_events)
        except (AzureError, OSError) as exc:
            status = getattr(exc, "status_code", None)
            raise PublishFailed(f"{type(exc).__name__}{f' {status}' if status else ''}") from exc

    async def close(self) -> None:
        await self._client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()
