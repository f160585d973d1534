"""Queue triggers on the local host against the Functions host's storage queue semantics.

The behaviour mirrored, from Azure/azure-webjobs-sdk, src/Microsoft.Azure.WebJobs.Extensions.Storage/Queues/:
``QueueProcessor.cs`` (success deletes; a failure below ``maxDequeueCount`` releases the message with
``visibilityTimeout``; at ``maxDequeueCount`` it is copied to ``<queue>-poison`` and deleted; a message
already past it is poisoned without invoking), ``Config/QueuesOptions.cs`` (defaults: batchSize 16,
maxDequeueCount 5, visibilityTimeout 0).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from localdev.host import LocalHost, UnsupportedFunction, index_functions
from localdev.host.queues import QueueOptions
from mms_tracker.service.campaigns import MAX_DEQUEUE_COUNT
from tests.support import ROOT, Azurite, poll_async


@pytest.fixture(scope="module")
def storage() -> Iterator[Azurite]:
    server = Azurite(full=True).start()
    yield server
    server.stop()


class Calls:
    def __init__(self) -> None:
        self.messages: list[func.QueueMessage] = []
        self.fail_until = 0


def build_app(calls: Calls, queue: str) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="item", queue_name=queue, connection="WorkStorage")
    async def on_item(item: func.QueueMessage) -> None:
        calls.messages.append(item)
        if len(calls.messages) <= calls.fail_until:
            raise RuntimeError("transient")

    return app


async def serve(
    calls: Calls, storage: Azurite, queue: QueueClient, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> TestClient[Any, Any]:
    monkeypatch.setenv("WorkStorage", storage.connection_string)
    queue_options = QueueOptions(**{"max_polling_interval_seconds": 0.2, **options})
    host = LocalHost(
        index_functions(build_app(calls, queue.queue_name)),
        run_timers=False,
        run_queues=True,
        queue_options=queue_options,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(host.build()))
    await client.start_server()
    return client


@pytest.fixture
async def queues(storage: Azurite) -> AsyncIterator[tuple[QueueClient, QueueClient]]:
    name = f"work-{uuid.uuid4().hex[:12]}"  # a queue of its own per test
    main = QueueClient.from_connection_string(storage.connection_string, name)
    poison = QueueClient.from_connection_string(storage.connection_string, name + "-poison")
    await main.create_queue()
    yield main, poison
    await main.close()
    await poison.close()


async def test_a_base64_message_reaches_the_function_as_a_queue_message_and_is_deleted(
    storage: Azurite, queues: tuple[QueueClient, QueueClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    main, _ = queues
    calls = Calls()
    client = await serve(calls, storage, main, monkeypatch)
    try:
        sent = await main.send_message(base64.b64encode(json.dumps({"n": 1}).encode()).decode())
        await poll_async(lambda: asyncio.sleep(0, calls.messages))
        message = calls.messages[0]
        assert message.get_json() == {"n": 1}
        assert message.id == sent.id
        assert message.dequeue_count == 1
        assert message.insertion_time is not None
        await poll_async(lambda: _empty(main))
    finally:
        await client.close()


async def _empty(queue: QueueClient) -> bool:
    return await count(queue) == 0


async def count(queue: QueueClient) -> int:
    try:
        return int((await queue.get_queue_properties()).approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0


async def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(
    storage: Azurite, queues: tuple[QueueClient, QueueClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    main, poison = queues
    calls = Calls()
    calls.fail_until = 100
    client = await serve(calls, storage, main, monkeypatch, max_dequeue_count=3)
    try:
        body = base64.b64encode(b"always fails").decode()
        await main.send_message(body)
        await poll_async(lambda: _has(poison, 1), deadline_seconds=20)
        await poll_async(lambda: _empty(main))  # copied to the poison queue first, then deleted, as the host does
        assert [m.dequeue_count for m in calls.messages] == [1, 2, 3]
        [poisoned] = [m async for m in poison.receive_messages()]
        assert poisoned.content == body  # the original message, as the host copies it
    finally:
        await client.close()


async def test_a_message_that_fails_then_succeeds_is_deleted_and_never_poisoned(
    storage: Azurite, queues: tuple[QueueClient, QueueClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    main, poison = queues
    calls = Calls()
    calls.fail_until = 2
    client = await serve(calls, storage, main, monkeypatch)
    try:
        await main.send_message(base64.b64encode(b"flaky").decode())
        await poll_async(lambda: asyncio.sleep(0, len(calls.messages) >= 3), deadline_seconds=20)
        await poll_async(lambda: _empty(main))
        assert [m.dequeue_count for m in calls.messages] == [1, 2, 3]
        assert await count(poison) == 0
    finally:
        await client.close()


async def _has(queue: QueueClient, n: int) -> bool:
    return await count(queue) >= n


def test_host_json_sets_the_queue_options_the_worker_relies_on() -> None:
    options = QueueOptions.from_host_json(ROOT / "host.json")
    assert options.max_dequeue_count == MAX_DEQUEUE_COUNT  # the worker counts its last attempt by it
    assert options.message_encoding == "base64"  # the encoding the campaign queue adapter writes


def test_queue_options_default_to_the_extensions_defaults(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}))
    options = QueueOptions.from_host_json(tmp_path / "host.json")
    assert (options.batch_size, options.max_dequeue_count, options.visibility_timeout_seconds) == (16, 5, 0.0)


def test_a_queue_name_from_a_setting_is_refused_at_start_up() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="item", queue_name="%QUEUE_NAME%", connection="WorkStorage")
    async def on_item(item: func.QueueMessage) -> None:
        pass

    with pytest.raises(UnsupportedFunction, match="queue name"):
        index_functions(app)
