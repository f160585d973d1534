"""``python -m localdev.host``: load the app and its settings as Core Tools would, and serve it."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

from aiohttp import web

from .eventgrid import EVENTGRID_WEBHOOK_PATH
from .indexing import index_functions, load_app, route_prefix
from .queues import QueueOptions
from .server import DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT_SECONDS, LocalHost

DESCRIPTION = "A local stand-in for the Azure Functions host, for machines without Core Tools."


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.host", description=DESCRIPTION)
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_HOST_PORT", "7071")))
    parser.add_argument("--settings", default="local.settings.json", type=Path)
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers on schedule")
    parser.add_argument("--no-queues", action="store_true", help="do not poll the queues of queue triggers")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    apply_local_settings(args.settings)
    sys.path.insert(0, os.getcwd())
    try:
        index = index_functions(load_app(args.app), route_prefix(Path("host.json")))
        queue_options = QueueOptions.from_host_json(Path("host.json"))
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
        run_queues=not args.no_queues,
        queue_options=queue_options,
    )
    base = f"http://{args.host}:{args.port}"
    print("Functions:", flush=True)
    for http_function in index.http:
        print(f"  {http_function.name}: [{','.join(sorted(http_function.methods))}] {base}{http_function.route}")
    for triggered in index.triggered.values():
        where = (
            f"{base}{EVENTGRID_WEBHOOK_PATH}?functionName={triggered.name}"
            if triggered.trigger_type == "eventGridTrigger"
            else f"queue {triggered.queue_name}"
            if triggered.trigger_type == "queueTrigger"
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
