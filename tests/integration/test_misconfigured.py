"""A misconfigured app still loads: every function is indexed, and health and every route answer
503 naming each missing or malformed setting, never its value (docs/settings.md)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from mms_tracker.runtime import Misconfigured, Runtime
from tests.support import serve_function_app

SETTINGS = (
    "ACS_CONNECTION_STRING",
    "ACS_ENDPOINT",
    "MMS_SENDERS",
    "TRACKING_STORAGE_CONNECTION_STRING",
    "TRACKING_STORAGE_TABLE_ENDPOINT",
    "EXPIRY_WINDOW_HOURS",
)
SECRET = "c2VjcmV0LWtleS1kby1ub3QtZWNobw=="
BAD = {
    "ACS_CONNECTION_STRING": f"endpoint=not-a-url;accesskey={SECRET}",
    "MMS_SENDERS": "18004567891",
    "EXPIRY_WINDOW_HOURS": "nan",
    "ACS_MAX_ATTEMPTS": "1e8",
}
ROUTES = [
    ("GET", "/api/health"),
    ("POST", "/api/messages"),
    ("GET", "/api/messages/some-id"),
    ("GET", "/api/messages?tag=t"),
    ("GET", "/api/tags/t/summary"),
    ("GET", "/api/tags"),
    ("GET", "/api/tags/t/messages.csv"),
    ("GET", "/api/poison"),
    ("GET", "/api/dashboard"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/events/delivery-reports"),
]


@pytest.fixture
async def misconfigured(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    client = await serve_function_app(monkeypatch, BAD)
    yield client
    await client.close()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_health_and_every_route_answer_503_naming_each_bad_setting(
    misconfigured: Any, method: str, path: str
) -> None:
    response = await misconfigured.request(method, path, data=b"{}")
    body = await response.text()
    assert response.status == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    named = {e["field"] for e in problem["errors"]}
    assert named == {
        "ACS_CONNECTION_STRING",
        "MMS_SENDERS",
        "TRACKING_STORAGE_CONNECTION_STRING",
        "EXPIRY_WINDOW_HOURS",
        "ACS_MAX_ATTEMPTS",
    }
    assert SECRET not in body and "not-a-url" not in body and "1e8" not in body


def test_the_problems_are_logged_once_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="mms_tracker.settings")
    runtime = Runtime()
    assert runtime.configure_from_environment(BAD) is None
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "settings_invalid"]
    assert "MMS_SENDERS" in line.getMessage() and SECRET not in line.getMessage()
    with pytest.raises(Misconfigured):
        runtime.settings  # noqa: B018
    assert len(caplog.records) == 1  # using the settings again logs nothing more
