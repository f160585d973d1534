"""``GET /api/health``: is the app up and can it reach its table storage?"""

from __future__ import annotations

import logging

import azure.functions as func

from ...logs import log_event
from ...runtime import RUNTIME, Misconfigured
from ...service.ports import StorageUnavailable
from ..http import Request, Response
from ..problems import Problem, json_response, problem_response
from .errors import misconfigured_response
from .registration import declared

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated
_log = logging.getLogger(__name__)


@declared(blueprint)
async def health(req: Request) -> Response:
    """200 ``{"status": "ok"}`` when table storage answers; 503 problem when it does not, or when settings are bad."""
    try:
        await RUNTIME.store().ping()
    except Misconfigured as exc:
        return misconfigured_response(exc)
    except StorageUnavailable as exc:
        log_event(_log, logging.WARNING, "health_storage_unavailable", reason=str(exc))
        return problem_response(
            Problem(
                503,
                "Table storage is unreachable; check TRACKING_STORAGE_* settings.",
                "Storage unavailable",
                headers={"Retry-After": "5"},
            )
        )
    return json_response({"status": "ok", "storage": "ok"})
