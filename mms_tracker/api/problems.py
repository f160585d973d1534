"""The one mapping from errors to ``application/problem+json`` responses (RFC 9457)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from ..domain import FieldError
from . import models
from .http import Response

PROBLEM_JSON = "application/problem+json"


@dataclass
class Problem(Exception):
    """An error meant for the client: its status, a short title and a human-readable detail."""

    status: int
    detail: str
    title: str | None = None
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    recipients: Sequence[Mapping[str, str]] = ()

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        """The body, shaped by ``models.Problem`` (``errors`` only when there are some)."""
        return models.Problem(
            title=self.title or HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            errors=[models.FieldProblem(field=e.field, message=e.message) for e in self.errors] or None,
            recipients=[models.SentPair(**r) for r in self.recipients] or None,
        ).model_dump(mode="json", exclude_none=True)


def problem_response(problem: Problem) -> Response:
    """Render ``problem`` as an ``application/problem+json`` HTTP response."""
    return Response(
        json.dumps(problem.body()), status_code=problem.status, headers=dict(problem.headers), media_type=PROBLEM_JSON
    )


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Render ``body`` as ``application/json``."""
    return Response(json.dumps(body), status_code=status, headers=dict(headers or {}), media_type="application/json")
