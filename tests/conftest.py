from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mms_tracker.runtime import RUNTIME
from mms_tracker.settings import Settings
from tests.otel import Captured, captured
from tests.support import Azurite, app_environment, serve_function_app


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite (tables), started once for the session on a free port."""
    server = Azurite().start()
    yield server
    server.stop()


@pytest.fixture
async def runtime(azurite: Azurite) -> AsyncIterator[Settings]:
    """``RUNTIME`` configured against the session's Azurite, closed after the test."""
    settings = RUNTIME.configure_from_environment(app_environment(azurite.connection_string))
    yield settings
    await RUNTIME.aclose()


@pytest.fixture
async def store(runtime: Settings) -> Any:
    """The app's table store (``RUNTIME.store()``) against the session's Azurite."""
    return RUNTIME.store()


@pytest.fixture
async def app_client(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The real ``function_app`` served in-process by the local host, against the session's Azurite."""
    client = await serve_function_app(monkeypatch, app_environment(azurite.connection_string))
    yield client
    await client.close()
    await RUNTIME.aclose()


@pytest.fixture
def otel() -> Iterator[Captured]:
    """The app's telemetry on, into in-memory exporters (tests/otel.py)."""
    yield from captured()
