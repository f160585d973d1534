"""Reading the app: its functions' declared bindings become what the host serves."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import azurefunctions.extensions.base as http_streams
import azurefunctions.extensions.http.fastapi  # noqa: F401  # registers FastAPI's types, as the app's import does

from ..ncrontab import Schedule

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
    """An Event Grid, timer or queue function: invoked with one decoded trigger value."""

    name: str
    call: Callable[..., Any]
    arg_name: str
    trigger_type: str
    schedule: str | None = None
    queue_name: str | None = None
    connection: str | None = None


@dataclass
class FunctionIndex:
    """What the host serves, read from the app's declared bindings."""

    http: list[HttpFunction] = field(default_factory=list)
    triggered: dict[str, TriggeredFunction] = field(default_factory=dict)


def index_functions(app: func.FunctionApp, route_prefix: str = "api") -> FunctionIndex:
    """Read every function's ``function.json`` and build what the host serves.

    Raises :class:`UnsupportedFunction` for a trigger, binding or feature this host does not serve
    (a sync function, ``runOnStartup``, a schedule that is not a literal NCRONTAB expression), so
    a function never silently goes unserved.
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
        if trigger["type"] not in ("httpTrigger", "eventGridTrigger", "timerTrigger", "queueTrigger"):
            raise UnsupportedFunction(f"{name}: trigger type {trigger['type']!r} is not served locally")
        call = function.get_user_function()
        if not inspect.iscoroutinefunction(call):
            raise UnsupportedFunction(f"{name}: only async functions are served locally")
        if trigger.get("runOnStartup"):
            raise UnsupportedFunction(f"{name}: runOnStartup is not served locally")
        if trigger["type"] == "httpTrigger":
            _check_http_types(name, call, trigger["name"])
            index.http.append(_http_function(name, call, trigger, route_prefix))
        else:
            if trigger["type"] == "timerTrigger":
                _check_schedule(name, str(trigger.get("schedule")))
            index.triggered[name.lower()] = TriggeredFunction(
                name=name,
                call=call,
                arg_name=trigger["name"],
                trigger_type=trigger["type"],
                schedule=trigger.get("schedule"),
                queue_name=_queue_name(name, trigger),
                connection=trigger.get("connection"),
            )
    index.http.sort(key=lambda f: (-f.literal_segments, f.route.count("{")))
    return index


def _check_http_types(name: str, call: Callable[..., Any], param: str) -> None:
    """The worker's load-time check in HTTP-streams mode: an annotated trigger parameter must be a
    type the extension's ``RequestTrackerMeta`` takes, an annotated return one its
    ``ResponseTrackerMeta`` takes (azure-functions-python-worker, ``bindings/meta.py``), or the
    function is not loaded (``FunctionLoadError``)."""
    hints = typing.get_type_hints(call)
    if param in hints and not http_streams.RequestTrackerMeta.check_type(hints[param]):
        raise UnsupportedFunction(f"{name}: {param} is a {hints[param].__name__}; HTTP streams need FastAPI's Request")
    if "return" in hints and not http_streams.ResponseTrackerMeta.check_type(hints["return"]):
        raise UnsupportedFunction(f"{name}: returns {hints['return'].__name__}; HTTP streams need a FastAPI Response")


def _queue_name(name: str, trigger: Mapping[str, Any]) -> str | None:
    """A queue trigger's literal queue name; ``%SETTING%`` references are refused, as schedules are."""
    if trigger["type"] != "queueTrigger":
        return None
    queue = str(trigger.get("queueName") or "")
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", queue):
        raise UnsupportedFunction(f"{name}: queue name {queue!r} is not served locally (a literal queue name)")
    return queue


def _check_schedule(name: str, schedule: str) -> None:
    """A literal six-field NCRONTAB expression; ``%SETTING%`` references and TimeSpans are refused."""
    try:
        Schedule.parse(schedule)
    except ValueError as exc:
        raise UnsupportedFunction(f"{name}: schedule {schedule!r} is not served locally ({exc})") from None


def _http_function(name: str, call: Callable[..., Any], trigger: Mapping[str, Any], prefix: str) -> HttpFunction:
    route = (trigger.get("route") or name).strip("/")
    full = "/".join(p for p in (prefix.strip("/"), route) if p)
    pattern, literals = route_pattern(name, full)
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


def route_pattern(name: str, route: str) -> tuple[re.Pattern[str], int]:
    """Turn a route template of literal and ``{name}`` segments (``messages/{messageId}``) into a regex
    matched against :func:`routed_path`; the number of literal segments ranks the routes."""
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


def routed_path(raw_path: str) -> str:
    """The path as the Functions host routes it: ASP.NET Core's Kestrel decodes every
    percent-escape of the path as UTF-8 but ``%2F`` (``PathDecoder.DecodePath``), and routing
    decodes nothing more, so ``/api/messages/a%2Fb`` is one segment and its route value keeps
    ``%2F`` as sent (dotnet/aspnetcore, ``src/Servers/Kestrel/Core/src/Internal/Http/PathDecoder.cs``;
    aspnet/Mvc#6388, "Route based parameter binding doesn't decode %2F"). Escapes that do not
    decode to UTF-8 are kept as sent, as Kestrel keeps them.
    """
    parts = re.split(r"(%2[Ff])", raw_path.partition("?")[0])
    decoded = []
    for part in parts:
        if re.fullmatch(r"%2[Ff]", part):
            decoded.append(part)
            continue
        try:
            decoded.append(urllib.parse.unquote_to_bytes(part).decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(part)
    return "".join(decoded)


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
