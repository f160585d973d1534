"""An Event Grid custom topic for local runs: it takes the app's status-change events and keeps them.

``POST /eventgrid/api/events`` takes a CloudEvents batch as ``EventGridPublisherClient`` sends it
(``content-type: application/cloudevents-batch+json``), authenticated by the ``aeg-sas-key``
header (the header the Azure SDK sends for an ``AzureKeyCredential``: azure-eventgrid,
``_legacy/_constants.py``, ``EVENTGRID_KEY_HEADER``) against the fixed, documented
:data:`TOPIC_KEY`, and answers 200 with an empty body, as Event Grid does. ``GET
/simulator/published`` lists what it accepted, in arrival order; ``publishUnavailable`` on
``/simulator/faults`` makes the next N publishes answer 503.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

# The topic's access key: fixed and documented, like Azurite's well-known key (not a secret).
TOPIC_KEY = "bW1zLXRyYWNrZXItc2ltdWxhdG9yLXRvcGljLWtleS0wMDAwMDAwMDAwMDAwMDA="
TOPIC_PATH = "/eventgrid/api/events"
_REQUIRED = ("specversion", "id", "source", "type")  # CloudEvents 1.0 required attributes
# "the array can have a total size of up to 1 MB", larger is "413 Payload Too Large"
# (MicrosoftDocs/azure-docs, articles/event-grid/post-to-custom-topic.md).
MAX_BATCH_BYTES = 1024 * 1024


def topic_endpoint(port: int, host: str = "127.0.0.1") -> str:
    """The ``STATUS_EVENTS_ENDPOINT`` of the simulator's topic."""
    return f"http://{host}:{port}{TOPIC_PATH}"


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def strict_json(body: bytes) -> Any:
    """``body`` as JSON, or ``ValueError``: not UTF-8, NaN or Infinity (not JSON: RFC 8259), or nested
    past Python's recursion limit."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


class Topic:
    """What the topic accepted, and the publish fault switched at runtime."""

    def __init__(self, stats: dict[str, int]) -> None:
        self.published: list[dict[str, Any]] = []
        self.unavailable = 0
        self.stats = stats

    def reset(self) -> None:
        self.published = []
        self.unavailable = 0

    async def publish(self, request: web.Request) -> web.Response:
        self.stats["publishes"] = self.stats.get("publishes", 0) + 1
        key = request.headers.get("aeg-sas-key", "")  # bytes that are not UTF-8 arrive as lone surrogates
        if not hmac.compare_digest(key.encode("utf-8", "surrogatepass"), TOPIC_KEY.encode()):
            return _error(401, "Unauthorized", "The request authorization key is not authorized for this topic.")
        if self.unavailable > 0:
            self.unavailable -= 1
            self.stats["publishUnavailable"] = self.stats.get("publishUnavailable", 0) + 1
            return _error(503, "ServiceUnavailable", "The topic is unavailable (simulated).")
        if not request.content_type.startswith("application/cloudevents-batch+json"):
            return _error(400, "BadRequest", "Expected content-type application/cloudevents-batch+json.")
        body = await request.read()
        if len(body) > MAX_BATCH_BYTES:
            return _error(413, "PayloadTooLarge", f"The batch exceeds {MAX_BATCH_BYTES} bytes.")
        try:
            events = strict_json(body)
        except ValueError:
            return _error(400, "BadRequest", "The body is not JSON.")
        if not isinstance(events, list) or not all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) for k in _REQUIRED) and e["specversion"] == "1.0"
            for e in events
        ):
            return _error(400, "BadRequest", "Expected an array of CloudEvents 1.0 (specversion, id, source, type).")
        self.published.extend(events)
        return web.Response(status=200)

    async def list_published(self, request: web.Request) -> web.Response:
        return web.json_response({"value": self.published})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(TOPIC_PATH, self.publish)
        app.router.add_get("/simulator/published", self.list_published)
