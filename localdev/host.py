"""A local stand-in for the Azure Functions host, for machines without Core Tools.

It imports a v2-model ``FunctionApp``, reads each function's declared bindings
(``app.get_functions()``, ``get_function_json()``) and serves them as the Functions host does:

- HTTP triggers at ``/{routePrefix}/{route}`` with ``{name}`` route parameters, declared methods
  (405 otherwise), auth levels (``x-functions-key`` or ``?code=`` when ``LOCAL_FUNCTION_KEY`` is
  set), a request body limit;
- Event Grid triggers at ``/runtime/webhooks/eventgrid?functionName=NAME`` with the webhook
  protocol (validation handshake, notifications invoked once per event, CloudEvents OPTIONS);
- timer triggers on their NCRONTAB schedule, and on demand through ``POST /admin/functions/{name}``.

It serves what the app uses and refuses the rest at start-up (other triggers and bindings, sync
functions, route constraints, optional and catch-all parameters, ``runOnStartup``).

Payloads become ``func.HttpRequest``, ``func.EventGridEvent``/``func.CloudEvent`` and
``func.TimerRequest`` through the azure-functions library's own types and converters, so a
function sees what it would see in Azure.

Run it with ``python -m localdev.host``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hmac
import importlib
import inspect
import json
import logging
import math
import os
import re
import sys
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequestConverter

from .ncrontab import Schedule

_log = logging.getLogger("localdev.host")

DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
# The .NET JSON readers the Functions host is built on (System.Text.Json, Json.NET 13) refuse
# nesting deeper than 64 by default; the same bound keeps Python's recursive parser safe.
MAX_JSON_DEPTH = 64
EVENTGRID_WEBHOOK_PATH = "/runtime/webhooks/eventgrid"
_ANY_METHOD = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})


class UnsupportedFunction(Exception):
    """The app declares a trigger or binding this local host cannot serve."""


@dataclass(frozen=True)
class HttpFunction:
    name: str
    call: Callable[..., Any]
    arg_name: str
    methods: frozenset[str]
    auth_level: str
    route: str
    pattern: re.Pattern[str]
    literal_segments: int

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class TriggeredFunction:
    """An Event Grid or timer function: invoked with one decoded trigger value."""

    name: str
    call: Callable[..., Any]
    arg_name: str
    trigger_type: str
    schedule: str | None = None


@dataclass
class FunctionIndex:
    """What the host serves, read from the app's declared bindings."""

    http: list[HttpFunction] = field(default_factory=list)
    triggered: dict[str, TriggeredFunction] = field(default_factory=dict)


def index_functions(app: func.FunctionApp, route_prefix: str = "api") -> FunctionIndex:
    """Read every function's ``function.json`` and build what the host serves.

    Raises :class:`UnsupportedFunction` for a trigger, binding or feature this host does not serve
    (a sync function, ``runOnStartup``), so a function never silently goes unserved.
    """
    index = FunctionIndex()
    for function in app.get_functions():
        name = function.get_function_name()
        assert name is not None
        bindings = json.loads(function.get_function_json())["bindings"]
        triggers = [b for b in bindings if b["type"].endswith("Trigger")]
        if len(triggers) != 1:
            raise UnsupportedFunction(f"{name}: expected one trigger binding")
        trigger = triggers[0]
        for binding in bindings:
            if binding is not trigger and not (binding["type"] == "http" and binding["name"] == "$return"):
                raise UnsupportedFunction(f"{name}: binding type {binding['type']!r} is not served locally")
        if trigger["type"] not in ("httpTrigger", "eventGridTrigger", "timerTrigger"):
            raise UnsupportedFunction(f"{name}: trigger type {trigger['type']!r} is not served locally")
        call = function.get_user_function()
        if not inspect.iscoroutinefunction(call):
            raise UnsupportedFunction(f"{name}: only async functions are served locally")
        if trigger.get("runOnStartup"):
            raise UnsupportedFunction(f"{name}: runOnStartup is not served locally")
        if trigger["type"] == "httpTrigger":
            index.http.append(_http_function(name, call, trigger, route_prefix))
        else:
            index.triggered[name.lower()] = TriggeredFunction(
                name=name,
                call=call,
                arg_name=trigger["name"],
                trigger_type=trigger["type"],
                schedule=trigger.get("schedule"),
            )
    index.http.sort(key=lambda f: (-f.literal_segments, f.route.count("{")))
    return index


def _http_function(name: str, call: Callable[..., Any], trigger: Mapping[str, Any], prefix: str) -> HttpFunction:
    route = (trigger.get("route") or name).strip("/")
    full = "/".join(p for p in (prefix.strip("/"), route) if p)
    pattern, literals = _route_pattern(name, full)
    methods = trigger.get("methods")
    auth_level = str(trigger.get("authLevel") or "function").lower()
    return HttpFunction(
        name=name,
        call=call,
        arg_name=trigger["name"],
        methods=frozenset(m.upper() for m in methods) if methods else _ANY_METHOD,
        auth_level=auth_level,
        route="/" + full,
        pattern=pattern,
        literal_segments=literals,
    )


def _route_pattern(name: str, route: str) -> tuple[re.Pattern[str], int]:
    """Turn a route template of literal and ``{name}`` segments (``messages/{messageId}``) into a regex."""
    regex = ""
    literals = 0
    for segment in route.split("/"):
        param = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", segment)
        if param is not None:
            regex += f"/(?P<{param.group(1)}>[^/]+)"
        elif "{" in segment or "}" in segment:
            raise UnsupportedFunction(f"{name}: route segment {segment!r} is not served locally (only {{name}})")
        else:
            regex += "/" + re.escape(segment)
            literals += 1
    return re.compile(regex + "/?", re.IGNORECASE), literals


def _problem(status: int, title: str, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}),
        content_type="application/problem+json",
        headers=headers,
    )


def _to_http_request(request: web.Request, body: bytes, route_params: dict[str, str]) -> func.HttpRequest:
    headers: dict[str, str] = {}
    for key in request.headers:
        lower = key.lower()
        if lower not in headers:
            headers[lower] = ", ".join(request.headers.getall(key))
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params={k: v for k, v in request.query.items()},
        route_params=route_params,
        body=body,
    )


def _from_http_response(result: Any) -> web.Response:
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse, not {type(result).__name__}")
    headers = {k: v for k, v in result.headers.items()}
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
    return web.Response(status=result.status_code, body=result.get_body(), headers=headers)


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
    ) -> None:
        self.index = index
        self.function_key = function_key or None
        self.max_body_bytes = max_body_bytes
        self.read_timeout_seconds = read_timeout_seconds
        self.run_timers = run_timers
        self._background: set[asyncio.Task[None]] = set()

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
            _log.info(
                "http_request method=%s path=%s status=%d duration_ms=%.1f",
                _log_value(request.method),
                _log_value(request.path),
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
            return await self._eventgrid(request)
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
        for function in self.index.http:
            params = function.match(request.path)
            if params is None:
                continue
            if request.method not in function.methods:
                allowed |= function.methods
                continue
            if function.auth_level != "anonymous" and not self._authorized(request):
                return _problem(401, "Unauthorized", "A function key is required: send x-functions-key or ?code=.")
            try:
                body = await self._read_body(request)
            except _BodyRejected as rejected:
                return rejected.response
            try:
                result = await function.call(**{function.arg_name: _to_http_request(request, body, params)})
                return _from_http_response(result)
            except Exception:  # noqa: BLE001 - a failing function becomes a 500, as in the host
                _log.exception(
                    "function_failed function=%s",
                    function.name,
                    extra={"event": "function_failed", "fields": {"function": function.name}},
                )
                return _problem(500, "Internal Server Error", "The function failed; see the host log.")
        if allowed:
            return _problem(
                405,
                "Method Not Allowed",
                f"{request.method} is not allowed here.",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        return _problem(404, "Not Found", "No function serves this route.")

    async def _read_body(self, request: web.Request) -> bytes:
        """The whole body, or :class:`_BodyRejected` with a 413 (too large) or 408 (not in time)."""
        too_large = _problem(413, "Content Too Large", f"The request body exceeds {self.max_body_bytes} bytes.")
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise _BodyRejected(too_large)
        try:
            async with asyncio.timeout(self.read_timeout_seconds):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _BodyRejected(too_large) from None
        except TimeoutError:
            timed_out = _problem(
                408, "Request Timeout", f"The request body did not arrive within {self.read_timeout_seconds:g} s."
            )
            timed_out.force_close()
            raise _BodyRejected(timed_out) from None

    # --- Event Grid webhook -----------------------------------------------------------------

    async def _eventgrid(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("functionName", "")
        function = self.index.triggered.get(name.lower())
        if function is None or function.trigger_type != "eventGridTrigger":
            return _problem(404, "Not Found", "No Event Grid function by that functionName.")
        if request.method == "OPTIONS":
            origin = request.headers.get("WebHook-Request-Origin", "*")
            return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        if request.method != "POST":
            return _problem(
                405, "Method Not Allowed", "Event Grid delivers with POST.", headers={"Allow": "POST, OPTIONS"}
            )
        kind = request.headers.get("aeg-event-type", "")
        if kind.lower() not in ("subscriptionvalidation", "notification", "unsubscribe"):
            return _problem(400, "Bad Request", "Missing or unknown aeg-event-type header.")
        try:
            payload = parse_json(await self._read_body(request) or b"null")
        except _BodyRejected as rejected:
            return rejected.response
        except JsonTooDeep:
            return _problem(400, "Bad Request", f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
        except ValueError:
            return _problem(400, "Bad Request", "The body is not JSON.")
        batch = [payload] if isinstance(payload, dict) else payload
        if not isinstance(batch, list):
            return _problem(400, "Bad Request", "Expected an event or an array of events.")
        events = self._objects_only(function, batch)
        if kind.lower() == "unsubscribe":
            return web.Response(status=202)
        if kind.lower() == "subscriptionvalidation":
            code = _validation_code(events)
            if code is None:
                return _problem(400, "Bad Request", "No validationCode in the validation event.")
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
            _log.warning(
                "event_not_an_object function=%s index=%d value=%s",
                function.name,
                index,
                _log_value(preview[:200]),
                extra={"event": "event_not_an_object", "fields": {"function": function.name, "index": index}},
            )
        return events

    async def _run_event(self, function: TriggeredFunction, event: Mapping[str, Any]) -> bool:
        try:
            value = _to_event(function, event)
            await function.call(**{function.arg_name: value})
            return True
        except Exception:  # noqa: BLE001 - a failing function is logged and reported, as in the host
            _log.exception(
                "function_failed function=%s event_id=%s",
                function.name,
                _log_value(str(event.get("id"))),
                extra={"event": "function_failed", "fields": {"function": function.name}},
            )
            return False

    # --- timers and admin invocation ----------------------------------------------------------

    async def _admin_invoke(self, request: web.Request, name: str) -> web.StreamResponse:
        if request.method != "POST":
            return _problem(405, "Method Not Allowed", "Use POST.", headers={"Allow": "POST"})
        if not self._authorized(request):
            return _problem(401, "Unauthorized", "The admin API needs the key: send x-functions-key or ?code=.")
        function = self.index.triggered.get(name.lower())
        if function is None or function.trigger_type != "timerTrigger":
            return _problem(404, "Not Found", "No timer function by that name.")
        try:
            raw = await self._read_body(request)
            if raw:
                parse_json(raw)  # {"input": ...}, as Core Tools expects; a timer ignores the input
        except _BodyRejected as rejected:
            return rejected.response
        except ValueError:
            return _problem(400, "Bad Request", 'Expected {"input": "..."}.')
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
            _log.info(
                "timer_fired function=%s",
                function.name,
                extra={"event": "timer_fired", "fields": {"function": function.name}},
            )
        except Exception:  # noqa: BLE001 - a failing function is logged and reported, as in the host
            _log.exception(
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

    async def _stop_background(self, app: web.Application) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)


class _BodyRejected(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class JsonTooDeep(ValueError):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH`."""


def parse_json(raw: str | bytes) -> Any:
    """``json.loads``, refusing nesting deeper than :data:`MAX_JSON_DEPTH` with :class:`JsonTooDeep`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonTooDeep
        pending.extend((child, depth + 1) for child in children)
    return value


def _to_event(function: TriggeredFunction, event: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """Convert with the library's converter; an event time it cannot read becomes ``None``.

    The converter raises on a time that is not an ISO 8601 string it can parse (``"yesterday"``,
    ``12345``, an overflowing offset). Such an event still reaches the function, which decides
    what it is (the app records it as poison), instead of failing every redelivery the same way.
    """
    try:
        return _decode_event(event)
    except (ValueError, TypeError, OverflowError):
        time_field = "time" if "specversion" in event else "eventTime"
        if event.get(time_field) is None:
            raise
    _log.warning(
        "event_time_unreadable function=%s event_id=%s field=%s",
        function.name,
        _log_value(str(event.get("id"))),
        time_field,
        extra={"event": "event_time_unreadable", "fields": {"function": function.name, "field": time_field}},
    )
    return _decode_event({**event, time_field: None})


def _decode_event(event: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    value = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
    assert isinstance(value, (func.EventGridEvent, func.CloudEvent))
    return value


def escape_control(text: str) -> str:
    """Escape every character of Unicode category C (and U+2028, U+2029): ``\\n``, ``\\x1b``, ``\\u2028``.

    The app escapes its own log fields the same way (``mms_tracker.logs``); this host does not
    import the app, as the Functions host would not.
    """
    if text.isprintable():  # fast path: no category C, Zl or Zp character at all
        return text
    escaped = []
    for c in text:
        if not (unicodedata.category(c).startswith("C") or c in "\u2028\u2029"):
            escaped.append(c)
        elif ord(c) < 0x100:
            escaped.append(repr(c)[1:-1])  # \n \r \t \x00-\x1f \x7f-\x9f \xad
        else:
            escaped.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return "".join(escaped)


def _log_value(text: str) -> str:
    """A value for a log line: quoted with ``repr`` when it holds spaces, control characters escaped."""
    return repr(text) if (" " in text or not text) else escape_control(text)


def _validation_code(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        data = event.get("data")
        if isinstance(data, dict):
            for key, value in data.items():
                if key.lower() == "validationcode" and isinstance(value, str):
                    return value
    return None


def apply_local_settings(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Copy ``Values`` from ``local.settings.json`` into the environment, as Core Tools does.

    Variables already in the environment win (Core Tools skips those too). Returns the names applied.
    """
    target = os.environ if environ is None else environ
    if not path.is_file():
        return []
    values = json.loads(path.read_text()).get("Values", {})
    applied = []
    for key, value in values.items():
        if key not in target and value is not None:
            target[key] = str(value)
            applied.append(key)
    return applied


def load_app(spec: str) -> func.FunctionApp:
    """Import ``module:attribute`` (default ``function_app:app``) the way the worker would."""
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    if not isinstance(app, func.FunctionApp):
        raise UnsupportedFunction(f"{spec} is not an azure.functions.FunctionApp")
    return app


def route_prefix(host_json: Path) -> str:
    """The HTTP route prefix from ``host.json`` (``extensions.http.routePrefix``, default ``api``)."""
    if not host_json.is_file():
        return "api"
    config = json.loads(host_json.read_text())
    prefix = config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return str(prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_HOST_PORT", "7071")))
    parser.add_argument("--settings", default="local.settings.json", type=Path)
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers on schedule")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    apply_local_settings(args.settings)
    sys.path.insert(0, os.getcwd())
    try:
        index = index_functions(load_app(args.app), route_prefix(Path("host.json")))
    except Exception as exc:  # noqa: BLE001 - start-up failure: say what and exit, as the host does
        print(f"localdev.host: cannot load {args.app}: {exc}", file=sys.stderr)
        return 2
    read_timeout = os.environ.get("LOCAL_HOST_READ_TIMEOUT_SECONDS", str(DEFAULT_READ_TIMEOUT_SECONDS))
    try:
        read_timeout_seconds = float(read_timeout)
    except ValueError:
        read_timeout_seconds = math.nan
    if not (math.isfinite(read_timeout_seconds) and read_timeout_seconds > 0):
        print("localdev.host: LOCAL_HOST_READ_TIMEOUT_SECONDS must be a number of seconds above 0", file=sys.stderr)
        return 2
    host = LocalHost(
        index,
        function_key=os.environ.get("LOCAL_FUNCTION_KEY"),
        max_body_bytes=int(os.environ.get("LOCAL_HOST_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
        run_timers=not args.no_timers,
        read_timeout_seconds=read_timeout_seconds,
    )
    base = f"http://{args.host}:{args.port}"
    print("Functions:", flush=True)
    for http_function in index.http:
        print(f"  {http_function.name}: [{','.join(sorted(http_function.methods))}] {base}{http_function.route}")
    for triggered in index.triggered.values():
        where = (
            f"{base}{EVENTGRID_WEBHOOK_PATH}?functionName={triggered.name}"
            if triggered.trigger_type == "eventGridTrigger"
            else f"schedule {triggered.schedule}"
        )
        print(f"  {triggered.name}: {triggered.trigger_type} {where}")
    sys.stdout.flush()
    web.run_app(
        host.build(),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        shutdown_timeout=5,
        **host.server_options(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
