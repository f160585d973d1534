"""``GET /api/dashboard``: one self-contained page (HTML, our own CSS and script inline, charts as SVG).

The page reads the JSON routes (``tags``, ``tags/summary?tag=``, ``messages``, ``poison``) from
the same origin, passing on the ``code`` it was opened with; a tag always travels in the query, where
any tag a send accepts can (``/``, ``.`` and ``..`` included: README, "Tags in URLs"). Its
Content-Security-Policy allows only that: the inline style and script by their SHA-256, requests
to 'self', nothing else.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

import azure.functions as func

from ..http import Request, Response, params_of
from ..models import DashboardQuery
from ..validation import parse_query
from .registration import declared

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


def _asset(name: str) -> str:
    return resources.files("mms_tracker.api.dashboard").joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


_STYLE, _SCRIPT = _asset("style.css"), _asset("script.js")
PAGE = _asset("page.html").replace("/*STYLE*/", _STYLE).replace("/*SCRIPT*/", _SCRIPT).encode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@declared(blueprint)
async def dashboard(req: Request) -> Response:
    """The dashboard page; ``?tag=`` opens a tag's view, ``?view=poison`` the poison events."""
    parse_query(DashboardQuery, params_of(req))  # a bad tag or view is a problem+json naming it
    return Response(
        PAGE,
        status_code=200,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
