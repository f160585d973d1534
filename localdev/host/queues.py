"""Queue triggers: poll an Azure Storage queue and invoke the function once per message, as the host does.

The semantics follow the Functions host's storage queue extension (Azure/azure-webjobs-sdk,
``src/Microsoft.Azure.WebJobs.Extensions.Storage/Queues/``):

- ``Listeners/QueueListener.cs``: messages are fetched ``batchSize`` at a time and hidden for 10
  minutes while the function runs; an empty queue is polled again after a randomized exponential
  back-off between 100 ms and ``maxPollingInterval``;
- ``QueueProcessor.cs``: a message whose ``DequeueCount`` is above ``maxDequeueCount`` is moved to
  the poison queue without invoking the function; success deletes the message; a failure with
  ``DequeueCount >= maxDequeueCount`` copies it to ``<queue>-poison`` (created if missing) and
  deletes it, otherwise releases it with the ``visibilityTimeout`` of ``host.json``;
- ``Config/QueuesOptions.cs``: defaults ``batchSize`` 16 (at most 32), ``maxDequeueCount`` 5,
  ``visibilityTimeout`` 0, ``maxPollingInterval`` 1 minute.

Bodies are base64 (``messageEncoding``, the default of extension 5.x: MicrosoftDocs/azure-docs,
``articles/azure-functions/functions-bindings-storage-queue.md``) or plain text with ``"none"``.
The function gets a ``func.QueueMessage`` made by the library's own ``QueueMessageInConverter``
from the trigger metadata the host passes (``Id``, ``DequeueCount``, ``InsertionTime``...).

The connection is named by the binding's ``connection`` (``AzureWebJobsStorage`` when empty): a
connection string in that setting, as under Core Tools. Identity-based connections
(``<name>__queueServiceUri``) are for Azure and are not served locally.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from ..stack import azurite_connection_string
from .common import log
from .indexing import TriggeredFunction

POISON_SUFFIX = "-poison"
FETCH_VISIBILITY_SECONDS = 600  # QueueListener: hidden 10 minutes while the function runs
MIN_POLL_SECONDS = 0.1  # QueuePollingIntervals.Minimum


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` of ``host.json``, with the extension's defaults."""

    batch_size: int = 16
    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 0.0
    max_polling_interval_seconds: float = 60.0
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, host_json: Path) -> QueueOptions:
        if not host_json.is_file():
            return cls()
        config = json.loads(host_json.read_text()).get("extensions", {}).get("queues", {})
        default = cls()
        batch_size = int(config.get("batchSize", default.batch_size))
        if not 1 <= batch_size <= 32:
            raise ValueError("host.json extensions.queues.batchSize must be 1 to 32")
        max_dequeue = int(config.get("maxDequeueCount", default.max_dequeue_count))
        if max_dequeue < 1:
            raise ValueError("host.json extensions.queues.maxDequeueCount must be at least 1")
        encoding = str(config.get("messageEncoding", default.message_encoding)).lower()
        if encoding not in ("base64", "none"):
            raise ValueError("host.json extensions.queues.messageEncoding must be base64 or none")
        return cls(
            batch_size=batch_size,
            max_dequeue_count=max_dequeue,
            visibility_timeout_seconds=_timespan(config.get("visibilityTimeout"), default.visibility_timeout_seconds),
            max_polling_interval_seconds=max(
                MIN_POLL_SECONDS, _polling(config.get("maxPollingInterval"), default.max_polling_interval_seconds)
            ),
            message_encoding=encoding,
        )


def _timespan(value: Any, default: float) -> float:
    """A .NET TimeSpan ``hh:mm:ss[.fff]`` in seconds."""
    if value is None:
        return default
    hours, minutes, seconds = str(value).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _polling(value: Any, default: float) -> float:
    """``maxPollingInterval``: milliseconds as a number, or a TimeSpan string."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value) / 1000
    return _timespan(value, default)


def connection_string_for(binding_connection: str, environ: Mapping[str, str]) -> str | None:
    """The connection string a queue binding names (``AzureWebJobsStorage`` when it names none)."""
    name = binding_connection or "AzureWebJobsStorage"
    value = environ.get(name) or environ.get(f"ConnectionStrings:{name}")
    if value == "UseDevelopmentStorage=true":
        return azurite_connection_string(10002, 10000, 10001)  # Azurite on its standard ports
    return value or None


def decode_body(message: QueueMessage, encoding: str) -> bytes | None:
    """The message's bytes, or None when a base64 queue holds something that is not base64."""
    content = message.content if isinstance(message.content, str) else str(message.content)
    if encoding == "none":
        return content.encode()
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return None


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def to_function_message(message: QueueMessage, body: bytes) -> Any:
    """``func.QueueMessage`` through the library's converter, from the metadata the host passes."""
    metadata: dict[str, meta.Datum] = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(int(message.dequeue_count or 0), "int"),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }
    for key, value in (
        ("InsertionTime", message.inserted_on),
        ("ExpirationTime", message.expires_on),
        ("NextVisibleTime", message.next_visible_on),
    ):
        text = _iso(value)
        if text is not None:
            metadata[key] = meta.Datum(text, "string")
    return QueueMessageInConverter.decode(meta.Datum(body, "bytes"), trigger_metadata=metadata)


@contextlib.contextmanager
def _gone_or_taken_over() -> Iterator[None]:
    """The message or its queue is gone, or another receiver took it over (its pop receipt no longer
    matches): QueueProcessor.cs leaves it alone in both cases."""
    try:
        yield
    except ResourceNotFoundError:
        pass
    except HttpResponseError as exc:
        if getattr(exc, "error_code", None) != "PopReceiptMismatch":
            raise


class QueueListener:
    """Polls one queue for one function until cancelled."""

    def __init__(self, function: TriggeredFunction, connection_string: str, options: QueueOptions) -> None:
        assert function.queue_name is not None
        self.function = function
        self.options = options
        self.queue = QueueClient.from_connection_string(connection_string, function.queue_name)
        self.poison = QueueClient.from_connection_string(connection_string, function.queue_name + POISON_SUFFIX)
        self._delay = MIN_POLL_SECONDS

    async def run(self) -> None:
        try:
            while True:
                found = await self.poll_once()
                await asyncio.sleep(self._next_delay(found))
        finally:
            await self.queue.close()
            await self.poison.close()

    def _next_delay(self, found: bool) -> float:
        """Randomized exponential back-off while the queue stays empty (QueueListener's delay strategy)."""
        if found:
            self._delay = MIN_POLL_SECONDS
            return 0.0
        self._delay = min(self._delay * 2, self.options.max_polling_interval_seconds)
        return random.uniform(MIN_POLL_SECONDS, self._delay)

    async def poll_once(self) -> bool:
        """Fetch one batch and process it concurrently; True when a message was found."""
        try:
            messages = [
                m
                async for m in self.queue.receive_messages(
                    max_messages=self.options.batch_size, visibility_timeout=FETCH_VISIBILITY_SECONDS
                )
            ]
        except ResourceNotFoundError:
            return False  # the queue does not exist yet: back off, as the host does
        if not messages:
            return False
        await asyncio.gather(*(self.process(m) for m in messages))
        return True

    async def process(self, message: QueueMessage) -> None:
        dequeue_count = int(message.dequeue_count or 0)
        if dequeue_count > self.options.max_dequeue_count:
            await self._to_poison(message)
            return
        body = decode_body(message, self.options.message_encoding)
        succeeded = False
        if body is None:
            log.error(
                "queue_message_not_base64 function=%s",
                self.function.name,
                extra={"event": "queue_message_not_base64", "fields": {"function": self.function.name}},
            )
        else:
            try:
                await self.function.call(**{self.function.arg_name: to_function_message(message, body)})
                succeeded = True
            except Exception:  # noqa: BLE001 - a failing function is logged and its message released, as in the host
                log.exception(
                    "function_failed function=%s dequeue_count=%d",
                    self.function.name,
                    dequeue_count,
                    extra={
                        "event": "function_failed",
                        "fields": {"function": self.function.name, "dequeue_count": dequeue_count},
                    },
                )
        if succeeded:
            await self._delete(message)
        elif dequeue_count >= self.options.max_dequeue_count:
            await self._to_poison(message)
        else:
            with _gone_or_taken_over():  # nothing to release
                await self.queue.update_message(
                    message, visibility_timeout=int(self.options.visibility_timeout_seconds)
                )

    async def _delete(self, message: QueueMessage) -> None:
        with _gone_or_taken_over():
            await self.queue.delete_message(message)

    async def _to_poison(self, message: QueueMessage) -> None:
        log.warning(
            "queue_message_poisoned function=%s message_id=%s max_dequeue_count=%d",
            self.function.name,
            message.id,
            self.options.max_dequeue_count,
            extra={
                "event": "queue_message_poisoned",
                "fields": {"function": self.function.name, "message_id": message.id},
            },
        )
        with contextlib.suppress(ResourceExistsError):
            await self.poison.create_queue()
        await self.poison.send_message(message.content)
        await self._delete(message)


def start_listeners(
    functions: list[TriggeredFunction], options: QueueOptions, environ: Mapping[str, str] | None = None
) -> list[QueueListener]:
    """A listener for every queue function whose connection is set; the rest are logged and not served."""
    env = os.environ if environ is None else environ
    listeners = []
    for function in functions:
        connection = connection_string_for(function.connection or "", env)
        if connection is None:
            log.error(
                "queue_connection_missing function=%s setting=%s",
                function.name,
                function.connection or "AzureWebJobsStorage",
                extra={"event": "queue_connection_missing", "fields": {"function": function.name}},
            )
            continue
        listeners.append(QueueListener(function, connection, options))
    return listeners
