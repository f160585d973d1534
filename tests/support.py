"""Helpers shared by the test tiers: free ports, deadlines, the sample payloads, Azurite, the app in-process."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from localdev.host import LocalHost, index_functions
from localdev.stack import azurite_command, azurite_connection_string, stop_group, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"  # public sample payloads, carried in the repo (tests/fixtures/README.md)

T = TypeVar("T")

# The functions function_app registers, as docs/api.md lists them; tests of indexing compare against this.
EXPECTED_FUNCTIONS = frozenset(
    {
        "health",
        "send_message",
        "get_message_status",
        "list_messages",
        "tag_summary",
        "tag_summary_by_query",
        "list_tags",
        "export_tag_messages",
        "export_tag_messages_by_query",
        "list_poison",
        "dashboard",
        "openapi",
        "on_delivery_report",
        "receive_delivery_reports",
        "expire_stale_messages",
        "retire_old_messages",
        "create_campaign",
        "get_campaign",
        "cancel_campaign",
        "list_campaigns",
        "send_campaign_chunk",
        "settle_campaign_chunk",
        "reconcile_sends",
        "publish_status_events",
    }
)


# The ``MmsContentType`` enum as published, copied here from the source and not from the code (the app
# and the simulator each carry their own reading; tests hold both to this one): Azure/azure-rest-api-specs,
# specification/communication/data-plane/Sms/preview/2024-01-14-preview/communicationservicessms.json,
# ``MmsSendRequestAttachment.contentType``.
SWAGGER_MMS_CONTENT_TYPES = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "audio/wav",
    "audio/x-wav",
    "audio/ac3",
    "audio/amr",
    "video/mp4",
    "video/x-msvideo",
    "text/plain",
]


@st.composite
def reported_instants(draw: st.DrawFn) -> str:
    """A ``receivedTimestamp`` as a report may carry it: any local time from 0001-01-01 to 9999-12-31,
    seven fractional digits (as .NET writes them), and ``Z`` or an offset up to +-14:00 (ISO 8601;
    the result may fall outside the calendar once taken to UTC, which the parser refuses)."""
    moment = draw(st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max))
    seventh = draw(st.integers(0, 9))
    minutes = draw(st.integers(-14 * 60, 14 * 60))
    zone = "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{moment.isoformat(timespec='seconds')}.{moment.microsecond:06d}{seventh}{zone}"


def nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    """A tag's counts without the statuses at zero (the summary lists them all)."""
    return {status: n for status, n in counts.items() if n}


def http_request(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    params: Mapping[str, str] | None = None,
    route_params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Request:
    """The request an HTTP function gets from the worker in HTTP-streams mode (a Starlette one)."""
    path, _, query = url.partition("?")
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    query_string = urlencode(params) if params is not None else query
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "path_params": dict(route_params or {}),
    }
    return Request(scope, receive)


def content_type(response: Response) -> str:
    """The response's media type without its parameters (``application/json``)."""
    return (response.headers.get("content-type") or "").split(";", 1)[0].strip()


async def body_bytes(response: Response) -> bytes:
    """The whole body, read from a streamed response chunk by chunk."""
    if isinstance(response, StreamingResponse):
        chunks = [c if isinstance(c, bytes) else str(c).encode() async for c in response.body_iterator]
        return b"".join(chunks)
    return bytes(response.body)


def fixture(name: str) -> Any:
    """A public sample payload from ``tests/fixtures``."""
    return json.loads((FIXTURES / name).read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nothing listens on the port: a server could bind it again (SO_REUSEADDR, as servers do, so
    connections left in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def poll(check: Callable[[], T | None], deadline_seconds: float = 10.0, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something other than None/False; fail at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {deadline_seconds}s (last: {last!r})")


async def poll_async(
    check: Callable[[], Awaitable[T | None]], deadline_seconds: float = 10.0, interval: float = 0.05
) -> T:
    """:func:`poll` for a coroutine check, without blocking the event loop between tries."""
    deadline = time.monotonic() + deadline_seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {deadline_seconds}s (last: {last!r})")


class Azurite:
    """A real Azurite table service (with ``full``, blob and queue too) on free ports, in memory,
    started and stopped by the tests."""

    def __init__(self, location: Path | None = None, *, full: bool = False) -> None:
        self.table_port = free_port()
        self.blob_port = free_port() if full else 0
        self.queue_port = free_port() if full else 0
        self.location = location
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.table_port, self.blob_port or None, self.queue_port or None)

    def start(self) -> Azurite:
        command = azurite_command(
            self.blob_port,
            self.queue_port,
            self.table_port,
            str(self.location) if self.location else None,
            table_only=not self.queue_port,
        )
        self.process = subprocess.Popen(
            command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.table_port, 60, self.process)
        return self

    def stop(self) -> None:
        """Stop Azurite gracefully (SIGINT: it saves to ``location`` only then), then reap it."""
        if self.process is not None:
            stop_group(self.process)
            self.process = None


SIMULATOR_CONNECTION_STRING = (
    "endpoint=http://127.0.0.1:7072/;accesskey=bW1zLXRyYWNrZXItc2ltdWxhdG9yLWtleS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA="
)


def app_environment(storage_connection_string: str, **overrides: str) -> dict[str, str]:
    """The settings a test app runs with; every test gets its own table prefix."""
    env = {
        "TRACKING_STORAGE_CONNECTION_STRING": storage_connection_string,
        "ACS_CONNECTION_STRING": SIMULATOR_CONNECTION_STRING,
        "MMS_SENDERS": "+18004567891,+18005550100",
        "TRACKING_TABLE_PREFIX": "t" + uuid.uuid4().hex[:12],
        "TRACKING_STORAGE_TIMEOUT_SECONDS": "5",
    }
    env.update(overrides)
    return env


async def serve_function_app(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **host_options: Any) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import function_app

    importlib.reload(function_app)  # re-reads the settings, as a fresh worker would
    host = LocalHost(index_functions(function_app.app), run_timers=False, **host_options)
    client: TestClient[Any, Any] = TestClient(TestServer(host.build()))
    await client.start_server()
    return client


async def poison_rows(store: Any, day: dt.datetime) -> list[dict[str, Any]]:
    """The Poison table's rows of ``day`` as stored: what a test inspects (the app pages them through
    ``poison_page``; reading a whole day at once is for tests only, so it lives here)."""
    from mms_tracker.adapters.tables.encoding import time_key  # only the storage tests need it

    await store.ensure_tables()
    pages = store.poison.query_entities("PartitionKey eq @pk", parameters={"pk": time_key(day, 8)})
    return [dict(e) async for e in pages]
