"""Registering a handler as its declaration in ``api/routes.py`` says (path, methods, auth level)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import azure.functions as func

from ...runtime import RUNTIME
from ..http import Handler, Request, Response
from ..routes import BY_FUNCTION
from .errors import answers_problems


def declared(blueprint: func.Blueprint) -> Callable[[Handler], Handler]:
    """Register the decorated handler on ``blueprint`` as its declaration (by function name) says.

    The handler answers problems (``errors.answers_problems``); a route that requires settings
    reads them first, so a misconfigured app answers it 503 naming each bad setting.
    """

    def register(handler: Handler) -> Handler:
        route = BY_FUNCTION[handler.__name__]
        if route.require_settings:
            handler = _requiring_settings(handler)
        wrapped = answers_problems(handler)
        blueprint.route(route=route.path, methods=list(route.methods), auth_level=route.auth)(wrapped)
        return wrapped

    return register


def _requiring_settings(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def with_settings(req: Request) -> Response:
        _ = RUNTIME.settings  # raises Misconfigured (every bad setting by name) before the handler runs
        return await handler(req)

    return with_settings
