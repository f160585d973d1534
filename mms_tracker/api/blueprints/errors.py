"""The one place where exceptions become problem responses for every HTTP route."""

from __future__ import annotations

import functools
import logging
import math
import traceback
from pathlib import Path

from ...domain import FieldError
from ...logs import log_event
from ...runtime import Misconfigured
from ...service.ports import AcsError, IntentTooLarge, InvalidContinuationToken, StorageRejected, StorageUnavailable
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


def answers_problems(handler: Handler) -> Handler:
    """Turn :class:`Problem` into its response, and storage trouble into 503, for ``handler``."""

    @functools.wraps(handler)
    async def wrapper(req: Request) -> Response:
        try:
            return await handler(req)
        except Problem as problem:
            return problem_response(problem)
        except Misconfigured as exc:
            return misconfigured_response(exc)
        except QueryInvalid as exc:
            return problem_response(Problem(400, "The query string is not valid.", "Invalid query", errors=exc.errors))
        except RequestInvalid as exc:
            return problem_response(
                Problem(400, "The request is not a valid MMS send request.", "Invalid request", errors=exc.errors)
            )
        except RepeatabilityConflict as exc:
            return problem_response(
                Problem(
                    409,
                    "A repeatabilityRequestId was already used for a different request; nothing was sent.",
                    "Repeatability conflict",
                    errors=exc.errors,
                )
            )
        except InvalidContinuationToken as exc:
            return problem_response(
                Problem(400, str(exc), "Invalid continuation token", errors=[FieldError("continuationToken", str(exc))])
            )
        except RequestTooLarge as exc:
            return problem_response(Problem(413, str(exc), "Content Too Large"))
        except IntentTooLarge as exc:
            return problem_response(
                Problem(
                    413, f"The request is too large to be kept durably before sending ({exc}).", "Content Too Large"
                )
            )
        except AcsError as exc:
            log_event(
                _log,
                logging.WARNING,
                "acs_failed",
                route=handler.__name__,
                kind=type(exc).__name__,
                upstream_status=exc.upstream_status,
            )
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after or 1)))} if exc.status == 429 else {}
            detail = exc.detail + (_MAYBE_SENT if exc.maybe_sent else "")
            return problem_response(
                Problem(exc.status, detail, _ACS_TITLES.get(exc.status), headers=headers, recipients=exc.pairs)
            )
        except StorageRejected as exc:
            log_event(_log, logging.ERROR, "storage_rejected", route=handler.__name__, code=exc.code)
            return problem_response(Problem(500, "Table storage refused the request.", "Storage error"))
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
        except Exception as exc:  # noqa: BLE001 - a bug: still a problem, never the worker's text/plain 500
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
