"""The HTTP types every route speaks: FastAPI's (Starlette's) request and responses.

Importing ``azurefunctions.extensions.http.fastapi`` turns on the Functions "HTTP streams" mode:
the Python worker then serves every HTTP function through its own ASGI server, hands it a FastAPI
``Request`` and sends the ``Response`` it returns, a ``StreamingResponse`` chunk by chunk
(azure-functions-python-worker, ``azure_functions_worker/http_v2.py`` and ``dispatcher.py``:
with the extension imported, *every* HTTP function is invoked this way, so no route can keep
``func.HttpRequest``). Route parameters arrive in ``Request.path_params`` (the extension's
``RequestSynchronizer.sync_route_params``), the query in ``scope["query_string"]``.

Starlette reads header and query bytes as latin-1: a header a route takes as the client's text
(``Idempotency-Key``) goes through :func:`header`, the query through :func:`params_of`, both
reading UTF-8 as ``func.HttpRequest`` gave it (a header only echoed back, ``WebHook-Request-Origin``,
keeps its latin-1 round trip); bodies go through :func:`body_within`, which stops at the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

import azurefunctions.extensions.http.fastapi  # noqa: F401  # registers the extension: HTTP streams on
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

__all__ = ["Handler", "Request", "Response", "StreamingResponse", "body_within", "header", "params_of", "route_param"]

Handler = Callable[[Request], Awaitable[Response]]


def route_param(req: Request, name: str) -> str:
    """The route parameter ``name`` (decoded by the host), ``""`` when absent."""
    value = req.path_params.get(name, "")
    return value if isinstance(value, str) else str(value)


def params_of(req: Request) -> Mapping[str, str]:
    """The query string as one value per name (the last one given, as ``func.HttpRequest.params``).

    Parsed from the raw ``query_string`` read as UTF-8 (undecodable bytes become U+FFFD), not from
    Starlette's ``query_params``, which reads it as latin-1: a client that sends ``?tag=été`` as raw
    bytes (curl does) means the tag that ``?tag=%C3%A9t%C3%A9`` names.
    """
    raw = req.scope.get("query_string", b"")
    return dict(parse_qsl(bytes(raw).decode("utf-8", "replace"), keep_blank_values=True))


def header(req: Request, name: str) -> str | None:
    """The header ``name`` as the client wrote it: UTF-8 when its bytes are UTF-8, else latin-1;
    lines of the same name joined by ``", "``.

    Starlette decodes header bytes as latin-1 (an ASGI server passes bytes); the host in front of
    the worker, Kestrel, reads UTF-8 header values (dotnet/aspnetcore#32448), as aiohttp (the
    local host) did for ``func.HttpRequest``. Without this, ``Idempotency-Key: é`` would be ``Ã©``:
    a longer key, and another campaign id than the one the same key named before.
    """
    lines = req.headers.getlist(name)
    if not lines:
        return None
    value = ", ".join(lines)  # sent twice: one value, as RFC 9110 (5.3) and func.HttpRequest have it
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return value


async def body_within(req: Request, limit: int) -> bytes:
    """The request body, read no further than one byte past ``limit``.

    In HTTP-streams mode the body arrives as a stream; a body over ``limit`` comes back cut at
    ``limit + 1`` bytes, so the caller's size check refuses it without the rest ever being held.
    """
    body = bytearray()
    async for chunk in req.stream():
        body += chunk
        if len(body) > limit:
            return bytes(body[: limit + 1])
    return bytes(body)
