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
functions, HTTP types HTTP streams do not take, route constraints, optional and catch-all
parameters, ``runOnStartup``).

HTTP requests become a Starlette (FastAPI) ``Request`` and the function's ``Response`` is run as
an ASGI app, as the worker does in HTTP-streams mode; events and ticks become
``func.EventGridEvent``/``func.CloudEvent`` and ``func.TimerRequest`` through the azure-functions
library's own types and converters, so a function sees what it would see in Azure.

The package: ``indexing`` (reading the app's bindings, route templates), ``eventgrid`` (the
webhook protocol), ``server`` (``LocalHost``: dispatch, HTTP triggers, admin endpoint, timers,
request log), ``common`` (problem answers, bounded bodies, JSON depth, log escaping), ``cli``.

Run it with ``python -m localdev.host``; ``--help`` lists the options.
"""

from .cli import apply_local_settings, main
from .common import MAX_JSON_DEPTH, JsonTooDeep, escape_control, parse_json
from .eventgrid import EVENTGRID_WEBHOOK_PATH
from .indexing import FunctionIndex, HttpFunction, TriggeredFunction, UnsupportedFunction, index_functions, load_app
from .server import DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT_SECONDS, LocalHost

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_READ_TIMEOUT_SECONDS",
    "EVENTGRID_WEBHOOK_PATH",
    "MAX_JSON_DEPTH",
    "FunctionIndex",
    "HttpFunction",
    "JsonTooDeep",
    "LocalHost",
    "TriggeredFunction",
    "UnsupportedFunction",
    "apply_local_settings",
    "escape_control",
    "index_functions",
    "load_app",
    "main",
    "parse_json",
]
