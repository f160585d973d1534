"""The Event Grid trigger's webhook: ``/runtime/webhooks/eventgrid?functionName=NAME``.

The validation handshake, notifications invoked once per event (concurrently), ``Unsubscribe``,
the CloudEvents ``OPTIONS`` handshake, and the host's choices for hostile deliveries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from .common import MAX_JSON_DEPTH, BodyRejected, JsonTooDeep, log, log_value, parse_json, problem
from .indexing import FunctionIndex, TriggeredFunction

EVENTGRID_WEBHOOK_PATH = "/runtime/webhooks/eventgrid"


class EventGridWebhook:
    """Answers Event Grid for the index's Event Grid functions; bodies are read with ``read_body``."""

    def __init__(self, index: FunctionIndex, read_body: Callable[[web.Request], Awaitable[bytes]]) -> None:
        self.index = index
        self._read_body = read_body

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("functionName", "")
        function = self.index.triggered.get(name.lower())
        if function is None or function.trigger_type != "eventGridTrigger":
            return problem(404, "Not Found", "No Event Grid function by that functionName.")
        if request.method == "OPTIONS":
            origin = request.headers.get("WebHook-Request-Origin", "*")
            return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        if request.method != "POST":
            return problem(
                405, "Method Not Allowed", "Event Grid delivers with POST.", headers={"Allow": "POST, OPTIONS"}
            )
        kind = request.headers.get("aeg-event-type", "")
        if kind.lower() not in ("subscriptionvalidation", "notification", "unsubscribe"):
            return problem(400, "Bad Request", "Missing or unknown aeg-event-type header.")
        try:
            payload = parse_json(await self._read_body(request) or b"null")
        except BodyRejected as rejected:
            return rejected.response
        except JsonTooDeep:
            return problem(400, "Bad Request", f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
        except ValueError:
            return problem(400, "Bad Request", "The body is not JSON.")
        batch = [payload] if isinstance(payload, dict) else payload
        if not isinstance(batch, list):
            return problem(400, "Bad Request", "Expected an event or an array of events.")
        events = self._objects_only(function, batch)
        if kind.lower() == "unsubscribe":
            return web.Response(status=202)
        if kind.lower() == "subscriptionvalidation":
            code = _validation_code(events)
            if code is None:
                return problem(400, "Bad Request", "No validationCode in the validation event.")
            return web.json_response({"validationResponse": code})
        results = await asyncio.gather(*(self._run_event(function, e) for e in events))
        return web.Response(status=202 if all(results) else 500)

    @staticmethod
    def _objects_only(function: TriggeredFunction, batch: list[Any]) -> list[dict[str, Any]]:
        """The batch's events; an element that is not an object is logged and dropped.

        The Functions host would fail to convert such an element, and no retry can ever convert
        it, so it is not invoked and does not fail the delivery: the other events still run.
        """
        events: list[dict[str, Any]] = []
        for index, element in enumerate(batch):
            if isinstance(element, dict):
                events.append(element)
                continue
            preview = json.dumps(element)
            log.warning(
                "event_not_an_object function=%s index=%d value=%s",
                function.name,
                index,
                log_value(preview[:200]),
                extra={"event": "event_not_an_object", "fields": {"function": function.name, "index": index}},
            )
        return events

    async def _run_event(self, function: TriggeredFunction, event: Mapping[str, Any]) -> bool:
        try:
            value = _decode_event(event)
        except Exception as exc:  # noqa: BLE001 - the worker converts inside the invocation: it fails, unrun
            field = "time" if "specversion" in event else "eventTime"
            log.warning(
                "event_conversion_failed function=%s event_id=%s field=%s error=%s",
                function.name,
                log_value(str(event.get("id"))),
                field,
                type(exc).__name__,
                extra={"event": "event_conversion_failed", "fields": {"function": function.name, "field": field}},
            )
            return False
        try:
            await function.call(**{function.arg_name: value})
            return True
        except Exception:  # noqa: BLE001 - a failing function is logged and reported, as in the host
            log.exception(
                "function_failed function=%s event_id=%s",
                function.name,
                log_value(str(event.get("id"))),
                extra={"event": "function_failed", "fields": {"function": function.name}},
            )
            return False


def _decode_event(event: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """Convert with the library's converter, as the worker does before it calls the function.

    The converter raises on a time it cannot read (``"yesterday"``, ``12345``, a date alone, an
    overflowing offset); the worker (azure_functions_worker and azure_functions_runtime alike) then
    answers the invocation with ``StatusResult.Failure`` without running the function, so the host
    answers Event Grid with a failure and Event Grid retries on its schedule, then dead-letters.
    """
    value = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
    assert isinstance(value, (func.EventGridEvent, func.CloudEvent))
    return value


def _validation_code(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        data = event.get("data")
        if isinstance(data, dict):
            for key, value in data.items():
                if key.lower() == "validationcode" and isinstance(value, str):
                    return value
    return None
