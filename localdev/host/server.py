"""The host itself: one aiohttp application that routes to HTTP functions, the Event Grid
webhook and the admin endpoint, fires timers, and logs one line per request."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..ncrontab import Schedule
from .common import BodyRejected, log, log_value, parse_json, problem
from .eventgrid import EVENTGRID_WEBHOOK_PATH, EventGridWebhook
from .indexing import FunctionIndex, TriggeredFunction, routed_path
from .queues import QueueOptions, start_listeners

DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
# The header tying the request the host forwards to its invocation (ScriptConstants.HttpProxyCorrelationHeader).
INVOCATION_ID_HEADER = b"x-ms-invocation-id"


# The worker's own server routes every forwarded request with one catch-all, ``/{path:path}``
# (azurefunctions-extensions-http-fastapi, ``web.py``, ``WebApp.route``), Starlette's regex
# ``^/(?P<path>.*)$`` over uvicorn's decoded path: a path holding a newline (``%0A``) before its
# last character matches nothing, so FastAPI answers its own 404 and the function never runs (in Azure
# the invocation then waits for its request with no timeout of its own, azure_functions_runtime/http_v2.py
# ``HttpCoordinator.get_http_request_async``, until the host's ``functionTimeout`` ends it).
_WORKER_ROUTE = re.compile(r"^/(?P<path>.*)$")


def _worker_path(raw_path: str) -> str:
    """The path uvicorn puts in the scope (``h11_impl.py``: ``unquote`` of the raw path)."""
    return urllib.parse.unquote(raw_path.partition("?")[0])


def _function_failed() -> web.Response:
    """What a client gets from a function that fails before its response starts: the worker's
    uvicorn answers it (500, ``text/plain; charset=utf-8``, "Internal Server Error") and the host
    passes it on, as Microsoft's runtime does (tests/runtime/test_case_table.py)."""
    return web.Response(status=500, text="Internal Server Error", content_type="text/plain", charset="utf-8")


def _to_http_request(request: web.Request, body: bytes, route_params: dict[str, str]) -> Request:
    """The Starlette request the worker hands an HTTP function in HTTP-streams mode.

    Its body is the one this host read (bounded by ``max_body_bytes``); the route parameters are
    set as the worker's ``RequestSynchronizer.sync_route_params`` sets them, as the host's routing
    found them (:func:`~localdev.host.indexing.routed_path`: ``%2F`` kept). The scope's ``path`` is
    uvicorn's (``h11_impl.py``: ``unquote`` of the raw path, so ``%2F`` is ``/`` there and an escape
    that is not UTF-8 is U+FFFD). ``x-ms-invocation-id`` holds this invocation's id, whatever the
    client sent: the host sets it, "override existing header if present" (Azure/azure-functions-host,
    ``src/WebJobs.Script/Http/DefaultHttpProxyService.cs``, ``StartForwarding``).
    """
    raw_path, _, raw_query = request.raw_path.partition("?")  # as received: aiohttp keeps the bytes (surrogateescape)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    headers = [(name.lower(), value) for name, value in request.raw_headers if name.lower() != INVOCATION_ID_HEADER]
    headers.append((INVOCATION_ID_HEADER, str(uuid.uuid4()).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        # 2.3, as uvicorn (the worker's ASGI server) declares (uvicorn/protocols/http/h11_impl.py).
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": _worker_path(raw_path),
        "raw_path": raw_path.encode("utf-8", "surrogateescape"),
        "query_string": raw_query.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "headers": headers,  # bytes, as an ASGI server gives
        "server": None,
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "path_params": dict(route_params),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no more body; a disconnect shows as a failed write
        raise AssertionError("unreachable")

    return Request(scope, receive)


async def _send_http_response(result: Any, request: web.Request) -> web.StreamResponse:
    """Run the function's Starlette response as the worker's ASGI server would: headers first,
    then each body chunk as it is produced (chunked when it has no Content-Length).

    A body that fails half-way is cut: the exception propagates after the headers went out, and
    aiohttp closes the connection without the chunked body's last chunk. A client that leaves
    mid-body is no failure (:class:`ClientGone`): the body's iterator is closed, as the worker's
    uvicorn (ASGI spec 2.3, where Starlette cancels the body on ``http.disconnect``) would.
    """
    if not isinstance(result, Response):
        raise TypeError(f"an HTTP function must return a FastAPI/Starlette Response, not {type(result).__name__}")
    out: web.StreamResponse | None = None

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal out
        if message["type"] == "http.response.start":
            out = web.StreamResponse(status=message["status"])
            for key, value in message.get("headers", []):
                out.headers.add(key.decode("latin-1"), _header_text(value))
            await out.prepare(request)
        elif message["type"] == "http.response.body":
            assert out is not None, "the body came before the headers"
            chunk = message.get("body", b"")
            if chunk:
                await out.write(chunk)
            if not message.get("more_body", False):
                await out.write_eof()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    # 2.3 as uvicorn declares it: Starlette streams in a task group beside ``listen_for_disconnect``,
    # the code path it takes in Azure. This ``receive`` never reports the disconnect (aiohttp has no
    # event for it), so a client that left is noticed at the next write, a chunk later than uvicorn.
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "method": request.method}
    try:
        await result(scope, receive, send)
    except (ClientDisconnect, ConnectionError) as exc:  # Starlette turns a failed write into ClientDisconnect
        if out is None:
            raise
        aclose = getattr(getattr(result, "body_iterator", None), "aclose", None)
        if aclose is not None:
            await aclose()  # the body's ``finally`` runs now (its storage pages stop), not at some later GC
        raise ClientGone(out) from exc
    except Exception as exc:
        if out is not None:
            raise ResponseCut(str(exc)) from exc
        raise
    assert out is not None, "the response sent nothing"
    return out


def _header_text(value: bytes) -> str:
    """A response header's bytes as the text aiohttp writes back as the same bytes (it encodes
    UTF-8): UTF-8 when they are, else latin-1 (those few bytes cannot go out unchanged)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class ResponseCut(Exception):
    """A response failed after its headers went out: its body can only be left unfinished."""


class ClientGone(Exception):
    """The client closed the connection while the body was being sent: nothing failed."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("the client closed the connection")
        self.response = response


class LocalHost:
    """The aiohttp application that serves a :class:`FunctionIndex`."""

    def __init__(
        self,
        index: FunctionIndex,
        *,
        function_key: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        run_timers: bool = True,
        read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS,
        run_queues: bool = False,
        queue_options: QueueOptions | None = None,
    ) -> None:
        self.index = index
        self.function_key = function_key or None
        self.max_body_bytes = max_body_bytes
        self.read_timeout_seconds = read_timeout_seconds
        self.run_timers = run_timers
        self.run_queues = run_queues
        self.queue_options = queue_options or QueueOptions()
        self._background: set[asyncio.Task[None]] = set()
        self._eventgrid = EventGridWebhook(index, self._read_body)

    def server_options(self) -> dict[str, Any]:
        """Options for aiohttp's server (``run_app``, ``AppRunner``, ``TestServer``).

        A connection idle for the read timeout, or still sending its request line and headers
        after it, is closed; a body that has not arrived in full by then is answered 408, and
        what is left of a body no handler read is drained for at most that long (aiohttp's
        "lingering", 10 s by default) before the connection closes.
        """
        return {"keepalive_timeout": self.read_timeout_seconds, "lingering_time": min(10.0, self.read_timeout_seconds)}

    def build(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[self._log_requests])
        app.router.add_route("*", "/{tail:(?s:.*)}", self._dispatch)  # (?s): a path may hold a newline
        app.on_startup.append(self._start_timers)
        app.on_startup.append(self._start_queue_listeners)
        app.on_cleanup.append(self._stop_background)
        return app

    # --- dispatch ---------------------------------------------------------------------------

    @web.middleware
    async def _log_requests(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            log.info(
                "http_request method=%s path=%s status=%d duration_ms=%.1f",
                log_value(request.method),
                log_value(request.path),
                status,
                (time.perf_counter() - started) * 1000,
                extra={
                    "event": "http_request",
                    "fields": {"method": request.method, "path": request.path, "status": status},
                },
            )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        lower = path.lower().rstrip("/")
        if lower == EVENTGRID_WEBHOOK_PATH:
            return await self._eventgrid.handle(request)
        if lower.startswith("/admin/functions/"):
            return await self._admin_invoke(request, path.rstrip("/").rsplit("/", 1)[-1])
        return await self._http(request)

    def _authorized(self, request: web.Request) -> bool:
        if self.function_key is None:
            return True
        given = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return hmac.compare_digest(given.encode(), self.function_key.encode())

    async def _http(self, request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        path = routed_path(request.raw_path)
        for function in self.index.http:
            params = function.match(path)
            if params is None:
                continue
            if request.method not in function.methods:
                allowed |= function.methods
                continue
            if function.auth_level != "anonymous" and not self._authorized(request):
                return problem(401, "Unauthorized", "A function key is required: send x-functions-key or ?code=.")
            try:
                body = await self._read_body(request)
            except BodyRejected as rejected:
                return rejected.response
            if _WORKER_ROUTE.match(_worker_path(request.raw_path)) is None:
                return web.Response(status=404, body=b'{"detail":"Not Found"}', content_type="application/json")
            try:
                result = await function.call(**{function.arg_name: _to_http_request(request, body, params)})
            except Exception:  # noqa: BLE001 - a failing function becomes a 500, as in the host
                log.exception(
                    "function_failed function=%s",
                    function.name,
                    extra={"event": "function_failed", "fields": {"function": function.name}},
                )
                return _function_failed()
            return await self._respond(function.name, result, request)
        if allowed:
            return problem(
                405,
                "Method Not Allowed",
                f"{request.method} is not allowed here.",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        return problem(404, "Not Found", "No function serves this route.")

    async def _respond(self, name: str, result: Any, request: web.Request) -> web.StreamResponse:
        try:
            return await _send_http_response(result, request)
        except ClientGone as gone:
            log.info(
                "client_gone function=%s",
                name,
                extra={"event": "client_gone", "fields": {"function": name}},
            )
            return gone.response  # already sent as far as it got; aiohttp sees the closed connection
        except ResponseCut:
            log.exception(
                "response_cut function=%s",
                name,
                extra={"event": "response_cut", "fields": {"function": name}},
            )
            raise  # the headers went out: aiohttp closes the connection, the body stays unfinished
        except Exception:  # noqa: BLE001 - a response that fails before its headers is a 500, as in the host
            log.exception(
                "function_failed function=%s",
                name,
                extra={"event": "function_failed", "fields": {"function": name}},
            )
            return _function_failed()

    async def _read_body(self, request: web.Request) -> bytes:
        """The whole body, or :class:`BodyRejected` with a 413 (too large) or 408 (not in time)."""
        too_large = problem(413, "Content Too Large", f"The request body exceeds {self.max_body_bytes} bytes.")
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise BodyRejected(too_large)
        try:
            async with asyncio.timeout(self.read_timeout_seconds):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BodyRejected(too_large) from None
        except TimeoutError:
            timed_out = problem(
                408, "Request Timeout", f"The request body did not arrive within {self.read_timeout_seconds:g} s."
            )
            timed_out.force_close()
            raise BodyRejected(timed_out) from None

    # --- timers and admin invocation ----------------------------------------------------------

    async def _admin_invoke(self, request: web.Request, name: str) -> web.StreamResponse:
        if request.method != "POST":
            return problem(405, "Method Not Allowed", "Use POST.", headers={"Allow": "POST"})
        if not self._authorized(request):
            return problem(401, "Unauthorized", "The admin API needs the key: send x-functions-key or ?code=.")
        function = self.index.triggered.get(name.lower())
        if function is None or function.trigger_type != "timerTrigger":
            return problem(404, "Not Found", "No timer function by that name.")
        try:
            raw = await self._read_body(request)
            if raw:
                parse_json(raw)  # {"input": ...}, as Core Tools expects; a timer ignores the input
        except BodyRejected as rejected:
            return rejected.response
        except ValueError:
            return problem(400, "Bad Request", 'Expected {"input": "..."}.')
        self._spawn(self._fire_timer(function))
        return web.Response(status=202)

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fire_timer(self, function: TriggeredFunction) -> None:
        info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": False}
        try:
            value = TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata={})
            await function.call(**{function.arg_name: value})
            log.info(
                "timer_fired function=%s",
                function.name,
                extra={"event": "timer_fired", "fields": {"function": function.name}},
            )
        except Exception:  # noqa: BLE001 - a failing function is logged and reported, as in the host
            log.exception(
                "function_failed function=%s",
                function.name,
                extra={"event": "function_failed", "fields": {"function": function.name}},
            )

    async def _timer_loop(self, function: TriggeredFunction, schedule: Schedule) -> None:
        while True:
            now = dt.datetime.now(dt.UTC)
            due = schedule.next_after(now)
            await asyncio.sleep((due - now).total_seconds())
            await self._fire_timer(function)

    async def _start_timers(self, app: web.Application) -> None:
        if not self.run_timers:
            return
        for function in self.index.triggered.values():
            if function.trigger_type == "timerTrigger" and function.schedule:
                self._spawn(self._timer_loop(function, Schedule.parse(function.schedule)))

    async def _start_queue_listeners(self, app: web.Application) -> None:
        """Poll every queue trigger's queue (``run_queues``; tests that drive queues turn it on)."""
        if not self.run_queues:
            return
        queued = [f for f in self.index.triggered.values() if f.trigger_type == "queueTrigger"]
        for listener in start_listeners(queued, self.queue_options):
            self._spawn(listener.run())

    async def _stop_background(self, app: web.Application) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)
