"""``GET /api/health`` against a real Azurite, and when storage is unreachable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request

from mms_tracker.api.blueprints.health import health
from mms_tracker.runtime import RUNTIME
from tests.support import Azurite, app_environment, content_type, free_port, http_request


def health_request() -> Request:
    return http_request("GET", "http://localhost/api/health", body=b"")


async def test_health_is_ok_when_table_storage_answers(runtime: object) -> None:
    response = await health(health_request())
    assert response.status_code == 200
    assert json.loads(response.body)["status"] == "ok"


@pytest.fixture
async def unreachable_storage() -> AsyncIterator[None]:
    closed = Azurite()
    closed.table_port = free_port()
    RUNTIME.configure_from_environment(app_environment(closed.connection_string, TRACKING_STORAGE_TIMEOUT_SECONDS="2"))
    yield
    await RUNTIME.aclose()


async def test_health_is_503_problem_when_storage_is_unreachable(unreachable_storage: None) -> None:
    response = await health(health_request())
    assert response.status_code == 503
    assert content_type(response) == "application/problem+json"
    body = json.loads(response.body)
    assert body["status"] == 503 and body["title"] and "TRACKING_STORAGE" in body["detail"]
    assert "AccountKey" not in response.body.decode()
