"""An HTTP front for :class:`~localdev.runtime_host.worker.RuntimeWorker`: what the Functions host
does around Microsoft's runtime, enough to invoke every function of an app through it.

- HTTP triggers (``/api/<route>``): as the host does in HTTP-streams mode (Azure/azure-functions-host,
  ``src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs``, ``ToRpcHttp``,
  and ``src/WebJobs.Script/Http/DefaultHttpProxyService.cs``, ``StartForwarding``): the invocation
  carries an empty ``RpcHttp`` with only the route values in ``params`` (the worker announced
  ``HttpUri`` and ``RequiresRouteParameters``), and the request itself is forwarded to the worker's
  own server at ``HttpUri`` with the invocation id in ``x-ms-invocation-id``, "override existing
  header if present": a client's own header of that name is replaced (host versions before that
  change used ``TryAdd``, which kept the client's value, and the invocation then never got its
  request). A forward that cannot connect is retried as ``RetryProxyHandler.cs`` retries it; the
  worker's answer is streamed back as it comes, and an answer cut half-way is cut for the client
  too; a forward idle longer than the proxy's activity timeout (``ActivityTimeout``, 240 s) is
  answered 504 (YARP's answer to ``ForwarderError.RequestTimedOut``). Route values are matched
  as the local host matches them (``localdev.host.indexing.routed_path``).
- Event Grid triggers (``/runtime/webhooks/eventgrid?functionName=NAME``, ``aeg-event-type:
  Notification``): each event is one invocation with the event as ``TypedData.json``; 202 when
  every invocation succeeded, 500 otherwise.
- Queue and timer triggers, and the index, through this front's own routes
  (``/runtime-host/...``), which answer each invocation's outcome as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from ..host.indexing import route_pattern, routed_path
from .worker import RuntimeWorker, load_protos

INVOCATION_ID_HEADER = "x-ms-invocation-id"  # ScriptConstants.HttpProxyCorrelationHeader
PROXY_ACTIVITY_TIMEOUT_SECONDS = 240.0  # DefaultHttpProxyService: ForwarderRequestConfig.ActivityTimeout
# RetryProxyHandler.cs: a forward that cannot connect is tried 10 times, 50 ms apart, doubling up to 250 ms.
PROXY_MAX_ATTEMPTS = 10
PROXY_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.25)
# Hop-by-hop headers a proxy does not pass on (RFC 9110, 7.6.1); aiohttp frames the body itself.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"})


def _header_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    methods: frozenset[str] | None
    function: str
    literals: int


class RuntimeFront:
    """Serves a :class:`RuntimeWorker`'s indexed functions over HTTP."""

    def __init__(self, worker: RuntimeWorker, *, route_prefix: str = "api", proxy_timeout: float | None = None) -> None:
        self.worker = worker
        self.route_prefix = route_prefix.strip("/")
        self.proxy_timeout = proxy_timeout or PROXY_ACTIVITY_TIMEOUT_SECONDS
        self._session: aiohttp.ClientSession | None = None
        self._routes: list[_Route] = []

    def build(self) -> web.Application:
        for function in self.worker.functions.values():
            trigger = function.trigger
            if trigger["type"] != "httpTrigger":
                continue
            route = str(trigger.get("route") or function.name).strip("/")
            full = "/".join(p for p in (self.route_prefix, route) if p)
            pattern, literals = route_pattern(function.name, full)
            methods = frozenset(m.upper() for m in trigger["methods"]) if trigger.get("methods") else None
            self._routes.append(_Route(pattern, methods, function.name, literals))
        self._routes.sort(key=lambda r: -r.literals)
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_get("/runtime-host/functions", self._functions)
        app.router.add_post("/runtime-host/queue/{name}", self._queue)
        app.router.add_post("/runtime-host/timer/{name}", self._timer)
        app.router.add_route("*", "/{tail:(?s:.*)}", self._dispatch)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _functions(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "capabilities": self.worker.capabilities,
                "functions": {f.name: f.bindings for f in self.worker.functions.values()},
            }
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower().rstrip("/") == "/runtime/webhooks/eventgrid":
            return await self._eventgrid(request)
        path = routed_path(request.raw_path)
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.methods is not None and request.method not in route.methods:
                continue
            return await self._http(request, route.function, found.groupdict())
        return web.Response(status=404)

    async def _http(self, request: web.Request, name: str, params: dict[str, str]) -> web.StreamResponse:
        protos = self.worker.protos
        invocation_id = str(uuid.uuid4())
        data = protos.TypedData(http=protos.RpcHttp(params=params))
        invocation = asyncio.ensure_future(self.worker.invoke(name, data, invocation_id=invocation_id))
        skipped = _HOP_BY_HOP | {INVOCATION_ID_HEADER}  # the host's own value replaces a client's
        headers = [(k, v) for k, v in request.raw_headers if k.decode("latin-1").lower() not in skipped]
        headers.append((INVOCATION_ID_HEADER.encode(), invocation_id.encode()))
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=("User-Agent",))
        # The path and query as the client sent them, escapes and all (yarl would otherwise normalise them).
        url = URL(self.worker.capabilities["HttpUri"].rstrip("/") + request.raw_path, encoded=True)
        body = await request.read()
        out: web.StreamResponse | None = None
        try:
            async with asyncio.timeout(self.proxy_timeout):
                upstream = await self._forward(request.method, url, headers, body)
            async with upstream:
                out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for key, value in upstream.raw_headers:
                    if key.decode("latin-1").lower() not in _HOP_BY_HOP:
                        out.headers.add(key.decode("latin-1"), _header_text(value))
                if upstream.headers.get("content-length") is not None:
                    out.content_length = int(upstream.headers["content-length"])
                await out.prepare(request)
                try:
                    async for chunk in upstream.content.iter_any():
                        await out.write(chunk)
                except aiohttp.ClientPayloadError:
                    # The worker's body stopped half-way: YARP aborts the client's response, so the
                    # client sees a body that never ends properly, as it would from the worker.
                    if request.transport is not None:
                        request.transport.abort()
                    return out
                await out.write_eof()
        except TimeoutError:
            invocation.cancel()
            if out is not None:
                raise
            return web.Response(status=504)
        finally:
            if not invocation.done():
                try:
                    await asyncio.wait_for(asyncio.shield(invocation), 5)
                except TimeoutError:
                    invocation.cancel()
        return out

    async def _forward(self, method: str, url: URL, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
        assert self._session is not None
        for attempt in range(1, PROXY_MAX_ATTEMPTS + 1):
            try:
                return await self._session.request(
                    method, url, headers=_multi(headers), data=body, allow_redirects=False
                )
            except aiohttp.ClientConnectorError:
                if attempt == PROXY_MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(PROXY_RETRY_DELAYS[min(attempt - 1, len(PROXY_RETRY_DELAYS) - 1)])
        raise AssertionError("unreachable")

    async def _eventgrid(self, request: web.Request) -> web.Response:
        name = request.query.get("functionName", "")
        function = next((f for f in self.worker.functions.values() if f.name.lower() == name.lower()), None)
        if function is None or function.trigger["type"] != "eventGridTrigger":
            return web.Response(status=404)
        kind = request.headers.get("aeg-event-type", "").lower()
        payload = json.loads(await request.read() or b"null")
        events = payload if isinstance(payload, list) else [payload]
        if kind == "subscriptionvalidation":
            return web.json_response({"validationResponse": events[0]["data"]["validationCode"]})
        if kind != "notification":
            return web.Response(status=400)
        protos = self.worker.protos
        results = await asyncio.gather(
            *(self.worker.invoke(function.name, protos.TypedData(json=json.dumps(event))) for event in events)
        )
        failed = [r for r in results if r.result.status != protos.StatusResult.Success]
        return web.Response(status=500 if failed else 202, text="\n".join(r.result.exception.message for r in failed))

    async def _queue(self, request: web.Request) -> web.Response:
        """One queue message (``{"id", "body", "dequeueCount"}``) with the trigger metadata the
        storage extension gives (``Id``, ``DequeueCount``, ``PopReceipt`` and the message's times),
        converted as the host's ``GrpcMessageConversionExtensions.ToRpc`` converts them: a string is
        ``TypedData.string``, anything else ``ToRpcDefault``'s JSON (a count ``1``, a time
        ``"2024-05-01T10:00:00+00:00"`` with its quotes)."""
        message = await request.json()
        protos = self.worker.protos
        now = dt.datetime.now(dt.UTC)

        def as_json(value: Any) -> Any:
            return protos.TypedData(json=json.dumps(value))

        metadata = {
            "Id": protos.TypedData(string=message.get("id") or str(uuid.uuid4())),
            "DequeueCount": as_json(int(message.get("dequeueCount", 1))),
            "PopReceipt": protos.TypedData(string=str(uuid.uuid4())),
            "InsertionTime": as_json(now.isoformat()),
            "ExpirationTime": as_json((now + dt.timedelta(days=7)).isoformat()),
            "NextVisibleTime": as_json((now + dt.timedelta(minutes=10)).isoformat()),
        }
        data = protos.TypedData(string=str(message["body"]))
        return self._outcome(await self.worker.invoke(request.match_info["name"], data, metadata))

    async def _timer(self, request: web.Request) -> web.Response:
        info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": False}
        data = self.worker.protos.TypedData(json=json.dumps(info))
        return self._outcome(await self.worker.invoke(request.match_info["name"], data))

    def _outcome(self, response: Any) -> web.Response:
        success = response.result.status == self.worker.protos.StatusResult.Success
        exception = response.result.exception
        return web.json_response(
            {"status": "Success" if success else "Failure", "type": exception.type, "message": exception.message}
        )


def _multi(headers: list[tuple[bytes, bytes]]) -> Any:
    from multidict import CIMultiDict

    return CIMultiDict((k.decode("latin-1"), _header_text(v)) for k, v in headers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.runtime_host")
    parser.add_argument("--app-dir", type=Path, default=Path.cwd())
    parser.add_argument("--protos", type=Path, required=True, help="where FunctionRpc_pb2.py was compiled to")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--proxy-timeout", type=float, default=PROXY_ACTIVITY_TIMEOUT_SECONDS)
    parser.add_argument(
        "--specialize",
        action="store_true",
        help="start as a placeholder does: the app and its settings arrive in an environment reload",
    )
    args = parser.parse_args(argv)
    app_dir, protos_dir = args.app_dir.resolve(), args.protos.resolve()
    os.chdir(app_dir)
    sys.path.insert(0, str(app_dir))  # the app's directory, first, as on Linux dedicated plans

    async def serve() -> None:
        worker = RuntimeWorker(load_protos(protos_dir), app_dir)
        if args.specialize:
            # Placeholder specialisation: the proxy answered the placeholder's init with the runtime it
            # picks for a directory without function_app.py (azure_functions_runtime_v1), so this
            # runtime first hears of the app in FunctionEnvironmentReloadRequest
            # (workers/proxy_worker/dispatcher.py, reload_library_worker).
            await worker.reload_environment(dict(os.environ))
        else:
            await worker.init()
        await worker.index()
        runner = web.AppRunner(RuntimeFront(worker, proxy_timeout=args.proxy_timeout).build(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        print(f"runtime_host: {len(worker.functions)} functions on http://127.0.0.1:{args.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0
