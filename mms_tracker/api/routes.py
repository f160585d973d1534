"""Every HTTP route, declared once: path, methods, auth level and the problems it can answer.

The blueprints register their functions from these declarations (``blueprints/registration.py``), and the
OpenAPI document (``openapi.py``) takes each operation's problem statuses from them, so a status a
route answers cannot go missing from the document. ``tests/unit/test_route_document.py`` holds
the indexed functions, the declarations and the document to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import azure.functions as func

# What a status means on any route that can answer it; a route may say more in the document.
# 401: the host refuses a missing or wrong function key before the function runs (function level).
# 503: a misconfigured app answers 503 on every route (README, Settings), storage trouble too.
PROBLEM_TITLES = {
    400: "The request is invalid; errors[] names each field.",
    401: "No or wrong function key.",
    404: "Not found.",
    409: "A repeatability id or Idempotency-Key was already used for a different request; nothing was sent.",
    413: "The body is larger than the configured limit.",
    429: "ACS is throttling; see Retry-After.",
    502: "ACS failed or refused the credentials.",
    503: "Table storage is unavailable, or the app's settings are missing or malformed.",
    504: "ACS timed out.",
}


@dataclass(frozen=True)
class Route:
    """One HTTP route: what the Functions host indexes, and what the document says it answers.

    ``problems`` are the problem+json statuses the route can answer besides its success (500,
    the answer to a bug, is left out). ``require_settings``: the route reads no setting itself
    but still answers 503 naming each bad setting, as every route does; the registration checks.
    """

    function: str
    path: str
    methods: tuple[str, ...]
    problems: frozenset[int]
    auth: func.AuthLevel = func.AuthLevel.FUNCTION
    require_settings: bool = False

    @property
    def documented_methods(self) -> tuple[str, ...]:
        """The methods the document lists: ``OPTIONS`` is the CloudEvents handshake, not an operation."""
        return tuple(m for m in self.methods if m != "OPTIONS")


def _route(function: str, path: str, methods: str, *problems: int, **options: object) -> Route:
    keyed = options.get("auth", func.AuthLevel.FUNCTION) == func.AuthLevel.FUNCTION
    statuses = frozenset(problems) | {503} | ({401} if keyed else set())
    return Route(function, path, tuple(methods.split(",")), statuses, **options)  # type: ignore[arg-type]  # options are Route's own keywords


_ANONYMOUS = func.AuthLevel.ANONYMOUS
ROUTES: tuple[Route, ...] = (
    _route("health", "health", "GET", auth=_ANONYMOUS),
    _route("send_message", "messages", "POST", 400, 409, 413, 429, 502, 504),
    _route("list_messages", "messages", "GET", 400),
    _route("get_message_status", "messages/{messageId}", "GET", 404),
    _route("create_campaign", "campaigns", "POST", 400, 409, 413),
    _route("list_campaigns", "campaigns", "GET", 400),
    _route("get_campaign", "campaigns/{campaignId}", "GET", 404),
    _route("cancel_campaign", "campaigns/{campaignId}", "DELETE", 404),
    _route("tag_summary", "tags/{tag}/summary", "GET", 400),
    _route("tag_summary_by_query", "tags/summary", "GET", 400),
    _route("list_tags", "tags", "GET", 400),
    _route("export_tag_messages", "tags/{tag}/messages.csv", "GET", 400),
    _route("export_tag_messages_by_query", "tags/messages.csv", "GET", 400),
    _route("list_poison", "poison", "GET", 400),
    _route("dashboard", "dashboard", "GET", 400, require_settings=True),
    _route("receive_delivery_reports", "events/delivery-reports", "POST,OPTIONS", 400, require_settings=True),
    _route("openapi", "openapi.json", "GET", auth=_ANONYMOUS, require_settings=True),
)
BY_FUNCTION = {route.function: route for route in ROUTES}
