"""A function app for the shared case table (tests/runtime/test_case_table.py): each function shows
what it was given, so the local host and Microsoft's runtime can be held to the same answers. It
raises and cuts its stream where the real app's catch-all would answer a problem instead.

What a function saw is written to ``$CASE_RECORD_DIR/<key>.json``; HTTP functions answer it too.
"""

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response, StreamingResponse

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def record(key: str, seen: dict[str, Any]) -> None:
    Path(os.environ["CASE_RECORD_DIR"], f"{key}.json").write_text(json.dumps(seen, sort_keys=True))


@app.route(route="echo/{name}", methods=["GET", "POST"])
async def echo(req: Request) -> Response:
    seen = {
        "method": req.method,
        "path": req.url.path,
        "path_params": dict(req.path_params),
        "query": sorted(req.query_params.multi_items()),
        "x_name": req.headers.get("x-name"),
        "raw_x_name": [v.decode("latin-1") for k, v in req.headers.raw if k == b"x-name"],
        "invocation_ids": req.headers.getlist("x-ms-invocation-id"),
        "body": (await req.body()).decode("utf-8", "replace"),
    }
    return Response(json.dumps(seen, sort_keys=True), media_type="application/json")


@app.route(route="header", methods=["GET"])
async def header(req: Request) -> Response:
    response = Response("ok", media_type="text/plain")
    response.raw_headers.append((b"x-word", "été".encode()))
    return response


@app.route(route="boom", methods=["GET"])
async def boom(req: Request) -> Response:
    raise RuntimeError("a deliberate failure")


async def _half() -> AsyncIterator[bytes]:
    yield b"first,"
    raise RuntimeError("cut after the first chunk")


@app.route(route="cut", methods=["GET"])
async def cut(req: Request) -> StreamingResponse:
    return StreamingResponse(_half(), media_type="text/csv")


@app.event_grid_trigger(arg_name="event")
async def on_event(event: func.EventGridEvent) -> None:
    # The converter gives an EventGridEvent, or a CloudEvent for a CloudEvents 1.0 body.
    data = event.get_json()
    when = getattr(event, "event_time", None) or getattr(event, "time", None)
    seen = {
        "id": event.id,
        "type": getattr(event, "event_type", None) or getattr(event, "type", None),
        "subject": event.subject,
        "event_time": when.isoformat() if when else None,
        "data": data,
        "class": type(event).__name__,
    }
    record(f"event-{event.id}", seen)
    if isinstance(data, dict) and data.get("raise"):
        raise RuntimeError("the event asked to fail")


@app.queue_trigger(arg_name="message", queue_name="case-queue", connection="AzureWebJobsStorage")
async def on_queue(message: func.QueueMessage) -> None:
    body = message.get_body().decode()
    record(f"queue-{body}", {"body": body, "dequeue_count": message.dequeue_count, "has_id": bool(message.id)})
    if body.startswith("raise"):
        raise RuntimeError("the message asked to fail")


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=False)
async def on_timer(timer: func.TimerRequest) -> None:
    record("timer", {"past_due": timer.past_due})
