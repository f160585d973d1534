from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from localdev.host import LocalHost, index_functions
from mms_tracker.runtime import RUNTIME
from mms_tracker.settings import Settings
from tests.support import Azurite

SIMULATOR_CONNECTION_STRING = (
    "endpoint=http://127.0.0.1:7072/;accesskey=bW1zLXRyYWNrZXItc2ltdWxhdG9yLWtleS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA="
)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite (tables), started once for the session on a free port."""
    server = Azurite().start()
    yield server
    server.stop()


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


@pytest.fixture
async def runtime(azurite: Azurite) -> AsyncIterator[Settings]:
    """``RUNTIME`` configured against the session's Azurite, closed after the test."""
    settings = RUNTIME.configure_from_environment(app_environment(azurite.connection_string))
    yield settings
    await RUNTIME.aclose()


@pytest.fixture
async def app_client(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The real ``function_app`` served in-process by the local host, against the session's Azurite."""
    client = await serve_function_app(monkeypatch, app_environment(azurite.connection_string))
    yield client
    await client.close()
    await RUNTIME.aclose()


async def serve_function_app(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **host_options: Any) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import function_app

    importlib.reload(function_app)  # re-reads the settings, as a fresh worker would
    host = LocalHost(index_functions(function_app.app), run_timers=False, **host_options)
    client: TestClient[Any, Any] = TestClient(TestServer(host.build()))
    await client.start_server()
    return client
