"""A local stand-in for the Azure Functions host, for machines without Core Tools.

It imports a v2-model ``FunctionApp``, reads each function's declared bindings
(``app.get_functions()``, ``get_function_json()``) and serves them as the Functions host does:

- HTTP triggers at ``/{routePrefix}/{route}`` with route parameters, declared methods (405
  otherwise), auth levels (``x-functions-key`` or ``?code=`` when ``LOCAL_FUNCTION_KEY`` is set),
  a request body limit;
- Event Grid triggers at ``/runtime/webhooks/eventgrid?functionName=NAME`` with the webhook
  protocol (validation handshake, notifications invoked once per event, CloudEvents OPTIONS);
- timer triggers on their NCRONTAB schedule, and any non-HTTP function on demand through
  ``POST /admin/functions/{name}``.

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
import functools
import hmac
import importlib
import inspect
import json
import logging
import os
import re
import sys
import time
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
EVENTGRID_WEBHOOK_PATH = "/runtime/webhooks/eventgrid"
_ANY_METHOD = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})
_KEYED_LEVELS = frozenset({"function", "admin", "system"})
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
}


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
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


@dataclass(frozen=True)
class TriggeredFunction:
    """An Event Grid or timer function: invoked with one decoded trigger value."""

    name: str
    call: Callable[..., Any]
    arg_name: str
    trigger_type: str
    schedule: str | None = None
    run_on_startup: bool = False


@dataclass
class FunctionIndex:
    """What the host serves, read from the app's declared bindings."""

    http: list[HttpFunction] = field(default_factory=list)
    triggered: dict[str, TriggeredFunction] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.http] + list(self.triggered)


def index_functions(app: func.FunctionApp, route_prefix: str = "api") -> FunctionIndex:
    """Read every function's ``function.json`` and build what the host serves.

    Raises :class:`UnsupportedFunction` for a trigger or binding this host does not know, so a
    function never silently goes unserved.
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
        call = function.get_user_function()
        if trigger["type"] == "httpTrigger":
            index.http.append(_http_function(name, call, trigger, route_prefix))
        elif trigger["type"] in ("eventGridTrigger", "timerTrigger"):
            index.triggered[name.lower()] = TriggeredFunction(
                name=name,
                call=call,
                arg_name=trigger["name"],
                trigger_type=trigger["type"],
                schedule=trigger.get("schedule"),
                run_on_startup=bool(trigger.get("runOnStartup", False)),
            )
        else:
            raise UnsupportedFunction(f"{name}: trigger type {trigger['type']!r} is not served locally")
    index.http.sort(key=lambda f: (-f.literal_segments, f.route.count("{")))
    return index


def _http_function(name: str, call: Callable[..., Any], trigger: Mapping[str, Any], prefix: str) -> HttpFunction:
    route = (trigger.get("route") or name).strip("/")
    full = "/".join(p for p in (prefix.strip("/"), route) if p)
    pattern, literals = _route_pattern(full)
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


def _route_pattern(route: str) -> tuple[re.Pattern[str], int]:
    """Turn an ASP.NET-style route template (``messages/{id}``, ``{id?}``, ``{id:int}``, ``{*rest}``) into a regex."""
    regex = ""
    literals = 0
    for segment in route.split("/"):
        param = re.fullmatch(r"\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?(\?)?\}", segment)
        if param is None:
            regex += "/" + re.escape(segment)
            literals += 1
            continue
        catch_all, pname, constraint, optional = param.groups()
        body = "(?s:.*)" if catch_all else _CONSTRAINTS.get((constraint or "").lower(), "[^/]+")
        group = f"(?P<{pname}>{body})"
        regex += f"(?:/{group})?" if (optional or catch_all) else f"/{group}"
    return re.compile(regex + "/?", re.IGNORECASE), literals


async def _invoke(call: Callable[..., Any], **kwargs: Any) -> Any:
    """Run a user function as the Python worker does: coroutines on the loop, the rest in a thread."""
    if inspect.iscoroutinefunction(call):
        return await call(**kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(call, **kwargs))


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
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items()}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if isinstance(result, (str, bytes)):
        return web.Response(
            status=200, body=result.encode() if isinstance(result, str) else result, content_type="text/plain"
        )
    if result is None:
        return web.Response(status=204)
    raise TypeError(f"unsupported HTTP function return type {type(result).__name__}")


class LocalHost:
    """The aiohttp application that serves a :class:`FunctionIndex`."""

    def __init__(
        self,
        index: FunctionIndex,
        *,
        function_key: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        run_timers: bool = True,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.index = index
        self.function_key = function_key or None
        self.max_body_bytes = max_body_bytes
        self.run_timers = run_timers
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()

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
                request.method,
                request.path,
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
            if function.auth_level in _KEYED_LEVELS and not self._authorized(request):
                return _problem(401, "Unauthorized", "A function key is required: send x-functions-key or ?code=.")
            try:
                body = await self._read_body(request)
            except _BodyTooLarge:
                return _problem(413, "Content Too Large", f"The request body exceeds {self.max_body_bytes} bytes.")
            try:
                result = await _invoke(function.call, **{function.arg_name: _to_http_request(request, body, params)})
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
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise _BodyTooLarge
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _BodyTooLarge from None

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
            payload = json.loads(await self._read_body(request) or b"null")
        except _BodyTooLarge:
            return _problem(413, "Content Too Large", f"The request body exceeds {self.max_body_bytes} bytes.")
        except ValueError:
            return _problem(400, "Bad Request", "The body is not JSON.")
        events = [payload] if isinstance(payload, dict) else payload
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return _problem(400, "Bad Request", "Expected an event or an array of events.")
        if kind.lower() == "unsubscribe":
            return web.Response(status=202)
        if kind.lower() == "subscriptionvalidation":
            code = _validation_code(events)
            if code is None:
                return _problem(400, "Bad Request", "No validationCode in the validation event.")
            return web.json_response({"validationResponse": code})
        results = await asyncio.gather(*(self._run_event(function, e) for e in events))
        return web.Response(status=202 if all(results) else 500)

    async def _run_event(self, function: TriggeredFunction, event: Mapping[str, Any]) -> bool:
        try:
            value = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
            await _invoke(function.call, **{function.arg_name: value})
            return True
        except Exception:  # noqa: BLE001 - a failing function is logged and reported, as in the host
            _log.exception(
                "function_failed function=%s event_id=%s",
                function.name,
                event.get("id"),
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
        if function is None:
            return _problem(404, "Not Found", "No non-HTTP function by that name.")
        try:
            raw = await self._read_body(request)
            body = json.loads(raw) if raw else {}
        except (ValueError, _BodyTooLarge):
            return _problem(400, "Bad Request", 'Expected {"input": "..."}.')
        text = body.get("input", "") if isinstance(body, dict) else ""
        if function.trigger_type == "eventGridTrigger":
            try:
                event = json.loads(text)
            except (TypeError, ValueError):
                return _problem(400, "Bad Request", "input must be one event as a JSON string.")
            self._spawn(self._run_event(function, event))
        else:
            self._spawn(self._fire_timer(function, past_due=False))
        return web.Response(status=202)

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fire_timer(self, function: TriggeredFunction, *, past_due: bool) -> None:
        info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": past_due}
        try:
            value = TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata={})
            await _invoke(function.call, **{function.arg_name: value})
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
        if function.run_on_startup:
            await self._fire_timer(function, past_due=False)
        while True:
            now = self._clock()
            due = schedule.next_after(now)
            await asyncio.sleep((due - now).total_seconds())
            await self._fire_timer(function, past_due=False)

    async def _start_timers(self, app: web.Application) -> None:
        if not self.run_timers:
            return
        for function in self.index.triggered.values():
            if function.trigger_type == "timerTrigger" and function.schedule:
                self._spawn(self._timer_loop(function, Schedule.parse(resolve_setting(function.schedule))))

    async def _stop_background(self, app: web.Application) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)


class _BodyTooLarge(Exception):
    pass


def _validation_code(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        data = event.get("data")
        if isinstance(data, dict):
            for key, value in data.items():
                if key.lower() == "validationcode" and isinstance(value, str):
                    return value
    return None


def resolve_setting(value: str) -> str:
    """``%NAME%`` means "the app setting NAME", as in the Functions host's binding expressions."""
    found = re.fullmatch(r"%([^%]+)%", value.strip())
    if found is None:
        return value
    name = found.group(1)
    if name not in os.environ:
        raise UnsupportedFunction(f"app setting {name} is referenced by a schedule but not set")
    return os.environ[name]


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
    host = LocalHost(
        index,
        function_key=os.environ.get("LOCAL_FUNCTION_KEY"),
        max_body_bytes=int(os.environ.get("LOCAL_HOST_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
        run_timers=not args.no_timers,
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
    web.run_app(host.build(), host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
