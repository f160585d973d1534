"""The one place where exceptions become problem responses for every HTTP route."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import azure.functions as func

from ..logs import log_event
from ..problems import Problem, problem_response
from ..store import StorageUnavailable

_log = logging.getLogger("mms_tracker.http")

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def answers_problems(handler: Handler) -> Handler:
    """Turn :class:`Problem` into its response, and storage trouble into 503, for ``handler``."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except Problem as problem:
            return problem_response(problem)
        except StorageUnavailable as exc:
            log_event(_log, logging.WARNING, "storage_unavailable", route=handler.__name__, reason=str(exc))
            return problem_response(
                Problem(
                    503,
                    "Table storage is unavailable; try again shortly.",
                    "Storage unavailable",
                    headers={"Retry-After": "5"},
                )
            )

    return wrapper
