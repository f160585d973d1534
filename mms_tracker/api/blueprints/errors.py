"""The one place where exceptions become problem responses for every HTTP route."""

from __future__ import annotations

import functools
import logging
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...adapters.campaigns import CampaignNotConfigured
from ...domain import FieldError
from ...logs import log_event
from ...runtime import Misconfigured
from ...service.campaign_ports import CampaignNotFound
from ...service.campaigns import IdempotencyConflict
from ...service.ports import AcsError, IntentTooLarge, InvalidContinuationToken, StorageRejected, StorageUnavailable
from ...service.queries import MessageNotFound
from ...service.sending import RepeatabilityConflict
from ..http import Handler, Request, Response
from ..problems import Problem, problem_response
from ..validation import QueryInvalid, RequestInvalid, RequestTooLarge

_log = logging.getLogger("mms_tracker.http")

_ACS_TITLES = {
    429: "ACS is throttling",
    502: "ACS error",
    503: "ACS unavailable",
    504: "ACS timeout",
    400: "Refused by ACS",
}


_MAYBE_SENT = (
    " ACS may have accepted the request: the tracker repeats the same call (same repeatability ids)"
    " until it learns the outcome, and records it. To retry, repeat the request with the pairs in"
    " `recipients`: a retry with new ids is a new message."
)


def misconfigured_response(exc: Misconfigured) -> Response:
    """503 naming every missing or malformed setting (never a value), for health and every route."""
    return problem_response(
        Problem(
            503,
            "The app's settings are missing or malformed: " + ", ".join(exc.problems) + ".",
            "App misconfigured",
            errors=[FieldError(name, problem) for name, problem in exc.problems.items()],
        )
    )


def _acs_problem(exc: AcsError, route: str) -> Problem:
    log_event(
        _log, logging.WARNING, "acs_failed", route=route, kind=type(exc).__name__, upstream_status=exc.upstream_status
    )
    headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after or 1)))} if exc.status == 429 else {}
    detail = exc.detail + (_MAYBE_SENT if exc.maybe_sent else "")
    return Problem(exc.status, detail, _ACS_TITLES.get(exc.status), headers=headers, recipients=exc.pairs)


def _storage_rejected(exc: StorageRejected, route: str) -> Problem:
    log_event(_log, logging.ERROR, "storage_rejected", route=route, code=exc.code)
    return Problem(500, "Table storage refused the request.", "Storage error")


def _storage_unavailable(exc: StorageUnavailable, route: str) -> Problem:
    log_event(_log, logging.WARNING, "storage_unavailable", route=route, reason=str(exc))
    return Problem(
        503, "Table storage is unavailable; try again shortly.", "Storage unavailable", headers={"Retry-After": "5"}
    )


# Every exception a route lets out, and the problem it becomes (``route`` names the handler, for logs).
# The most specific type of an exception's class hierarchy that is listed here decides.
PROBLEMS: dict[type[Exception], Callable[[Any, str], Problem]] = {
    QueryInvalid: lambda exc, _: Problem(400, "The query string is not valid.", "Invalid query", errors=exc.errors),
    RequestInvalid: lambda exc, _: Problem(
        400, "The request is not a valid MMS send request.", "Invalid request", errors=exc.errors
    ),
    InvalidContinuationToken: lambda exc, _: Problem(
        400, str(exc), "Invalid continuation token", errors=[FieldError("continuationToken", str(exc))]
    ),
    MessageNotFound: lambda exc, _: Problem(404, "No message is tracked under this messageId.", "Message not found"),
    CampaignNotFound: lambda exc, _: Problem(404, "No campaign has this id.", "Campaign not found"),
    RepeatabilityConflict: lambda exc, _: Problem(
        409,
        "A repeatabilityRequestId was already used for a different request; nothing was sent.",
        "Repeatability conflict",
        errors=exc.errors,
    ),
    IdempotencyConflict: lambda exc, _: Problem(
        409,
        "This Idempotency-Key already created a campaign from a different request; nothing was created.",
        "Idempotency conflict",
        errors=[FieldError("Idempotency-Key", "was already used for a different request")],
    ),
    RequestTooLarge: lambda exc, _: Problem(413, str(exc), "Content Too Large"),
    IntentTooLarge: lambda exc, _: Problem(
        413, f"The request is too large to be kept durably before sending ({exc}).", "Content Too Large"
    ),
    AcsError: _acs_problem,
    StorageRejected: _storage_rejected,
    StorageUnavailable: _storage_unavailable,
    CampaignNotConfigured: lambda exc, _: Problem(
        503,
        "Campaigns need storage for their queue and attachments: set AzureWebJobsStorage "
        "(or AzureWebJobsStorage__accountName for managed identity).",
        "Service Unavailable",
    ),
}


def problem_for(exc: Exception, route: str) -> Problem | None:
    """The problem ``exc`` becomes on ``route`` (:data:`PROBLEMS`), ``None`` when it is a bug."""
    for kind in type(exc).__mro__:
        if kind in PROBLEMS:
            return PROBLEMS[kind](exc, route)
    return None


def answers_problems(handler: Handler) -> Handler:
    """Turn :class:`Problem`, and every exception of :data:`PROBLEMS`, into its response for ``handler``."""

    @functools.wraps(handler)
    async def wrapper(req: Request) -> Response:
        try:
            return await handler(req)
        except Problem as problem:
            return problem_response(problem)
        except Misconfigured as exc:
            return misconfigured_response(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: still a problem, never the worker's text/plain 500
            known = problem_for(exc, handler.__name__)
            if known is not None:
                return problem_response(known)
            # In HTTP-streams mode the worker re-raises it in its FastAPI route (http_v2.py, catch_all)
            # and the client would get Starlette's text/plain "Internal Server Error". The log names
            # the type and where it was raised, not its message (which may hold a number or a body).
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
            log_event(_log, logging.ERROR, "route_failed", route=handler.__name__, kind=type(exc).__name__, at=where)
            return problem_response(
                Problem(500, "The request failed unexpectedly; the app logged it as route_failed.", "Internal error")
            )

    return wrapper
