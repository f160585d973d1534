"""Every HTTP route, declared once: path, methods, auth level and the problems it can answer.

The blueprints register their functions from these declarations (``blueprints/registration.py``), and the
OpenAPI document (``openapi.py``) is generated from them: each operation's id, summary, parameters, body
and answers are written here once, its problem statuses too, so a status a route answers cannot go
missing from the document. ``tests/unit/test_route_document.py`` holds
the indexed functions, the declarations and the document to each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from .export import COLUMNS as CSV_COLUMNS
from .models import (
    Campaign,
    CampaignCreated,
    CampaignCreateRequest,
    CampaignPage,
    DashboardQuery,
    ExportQuery,
    Health,
    ListCampaignsQuery,
    ListMessagesQuery,
    ListTagsQuery,
    MessagePage,
    MessageRecord,
    MmsSendMessageRequest,
    MmsSendResult,
    PoisonPage,
    PoisonQuery,
    TagExportQuery,
    TagPage,
    TagQuery,
    TagSummary,
)

# What a status means on any route that can answer it; a route may say more in the document.
# 401: the host refuses a missing or wrong function key before the function runs (function level).
# 503: a misconfigured app answers 503 on every route (docs/settings.md), storage trouble too.
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


# What an answer carries: a model (its JSON), a content type with its inline schema, or nothing.
Content = type[BaseModel] | tuple[str, Mapping[str, Any]] | None


@dataclass(frozen=True)
class Parameter:
    """A path or header parameter; ``schema`` is the schema itself, or the model field whose schema it takes."""

    name: str
    where: str
    schema: Mapping[str, Any] | tuple[type[BaseModel], str]
    description: str | None = None
    required: bool = True


@dataclass(frozen=True)
class Route:
    """One HTTP route: what the Functions host indexes, and what the document says it answers.

    ``problems`` are the problem+json statuses the route can answer besides its success (500,
    the answer to a bug, is left out). ``require_settings``: the route reads no setting itself
    but still answers 503 naming each bad setting, as every route does; the registration checks.
    The rest is the route's operation in the document: ``parameters`` (path and header, before the
    ``query`` model's fields), the request ``body``, its ``answers`` (status, description, content)
    and ``says``: what a problem status means on this route, where it says more than ``PROBLEM_TITLES``.
    """

    function: str
    path: str
    methods: tuple[str, ...]
    problems: frozenset[int]
    auth: func.AuthLevel = func.AuthLevel.FUNCTION
    require_settings: bool = False
    operation: str = ""
    summary: str = ""
    parameters: tuple[Parameter, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | Mapping[str, Any] | None = None
    answers: tuple[tuple[int, str, Content], ...] = ()
    says: tuple[tuple[int, str], ...] = ()

    @property
    def documented_methods(self) -> tuple[str, ...]:
        """The methods the document lists: ``OPTIONS`` is the CloudEvents handshake, not an operation."""
        return tuple(m for m in self.methods if m != "OPTIONS")

    def problem_title(self, status: int) -> str:
        """What ``status`` means on this route: its own words, else the storage 503, else the common title."""
        return dict(self.says).get(status) or _DEFAULT_TITLES.get(status) or PROBLEM_TITLES[status]


# Most routes' 503 is about storage; the routes that say more (settings, a batch) say it in ``says``.
_DEFAULT_TITLES = {503: "Table storage is unavailable."}


def _route(function: str, path: str, methods: str, *problems: int, **options: object) -> Route:
    keyed = options.get("auth", func.AuthLevel.FUNCTION) == func.AuthLevel.FUNCTION
    statuses = frozenset(problems) | {503} | ({401} if keyed else set())
    return Route(function, path, tuple(methods.split(",")), statuses, **options)  # type: ignore[arg-type]  # options are Route's own keywords


_ID = {"type": "string", "minLength": 1}
_MESSAGE_ID = Parameter("messageId", "path", _ID)
_CAMPAIGN_ID = Parameter("campaignId", "path", _ID)
_IDEMPOTENCY_KEY = Parameter(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 200},
    "A repeated create with the same key returns the first campaign.",
    required=False,
)
# Why a tag has a query form: docs/api.md, "Tags in URLs".
_TAG_IN_PATH = Parameter(
    "tag",
    "path",
    (ListMessagesQuery, "tag"),
    "The tag as one percent-encoded path segment. A tag holding `/`, `\\`, `%` or a newline, or that is `.` "
    "or `..`, cannot travel in a path through every client and host (dot segments are removed by "
    "clients, `%2F` may be a 404 in Azure): use the query form "
    "(`/tags/summary?tag=`, `/tags/messages.csv?tag=`), which carries any tag a send accepts.",
)
_EVENT_TYPE = Parameter(
    "aeg-event-type", "header", {"type": "string", "enum": ["SubscriptionValidation", "Notification", "Unsubscribe"]}
)
_EVENTS = {"oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]}
_VALIDATION = ("application/json", {"type": "object", "properties": {"validationResponse": {"type": "string"}}})
_CSV = (200, "Header row: " + ",".join(CSV_COLUMNS) + ".", ("text/csv", {"type": "string"}))
_SUMMARY = (200, "Counts per status (zeros included), delivery latency, top failure reasons.", TagSummary)
_INVALID = ((400, "A parameter is invalid."),)
_NO_CAMPAIGN = ((404, "No campaign has this id."),)
_ANONYMOUS = func.AuthLevel.ANONYMOUS
ROUTES: tuple[Route, ...] = (
    _route(
        "send_message",
        "messages",
        "POST",
        400,
        409,
        413,
        429,
        502,
        504,
        operation="sendMessage",
        summary="Send an MMS (ACS MmsSendMessageRequest) and track it.",
        body=MmsSendMessageRequest,
        answers=((202, "One item per recipient, in request order.", MmsSendResult),),
        says=(
            (409, "A repeatabilityRequestId was already used for a different request; nothing was sent."),
            (413, "The body is larger than MMS_MAX_REQUEST_BYTES."),
        ),
    ),
    _route(
        "list_messages",
        "messages",
        "GET",
        400,
        operation="listMessages",
        summary="One page of a tag's messages.",
        query=ListMessagesQuery,
        answers=((200, "A page of messages.", MessagePage),),
        says=_INVALID,
    ),
    _route(
        "get_message_status",
        "messages/{messageId}",
        "GET",
        404,
        operation="getMessage",
        summary="A message's tracking record with its delivery reports.",
        parameters=(_MESSAGE_ID,),
        answers=((200, "The record.", MessageRecord),),
        says=((404, "No message is tracked under this id."),),
    ),
    _route(
        "create_campaign",
        "campaigns",
        "POST",
        400,
        409,
        413,
        operation="createCampaign",
        summary="Create a campaign: up to 100,000 recipients, sent in chunks of 100 by a queue worker.",
        parameters=(_IDEMPOTENCY_KEY,),
        body=CampaignCreateRequest,
        answers=((202, "Queued; Location names the campaign.", CampaignCreated),),
        says=(
            (409, "This Idempotency-Key already created a campaign from a different request."),
            (413, "The body is larger than CAMPAIGN_MAX_REQUEST_BYTES."),
        ),
    ),
    _route(
        "list_campaigns",
        "campaigns",
        "GET",
        400,
        operation="listCampaigns",
        summary="Campaigns, newest first, a page at a time.",
        query=ListCampaignsQuery,
        answers=((200, "A page of campaigns.", CampaignPage),),
        says=_INVALID,
    ),
    _route(
        "get_campaign",
        "campaigns/{campaignId}",
        "GET",
        404,
        operation="getCampaign",
        summary="A campaign's status, counters and its tag's delivery summary.",
        parameters=(_CAMPAIGN_ID,),
        answers=((200, "The campaign.", Campaign),),
        says=_NO_CAMPAIGN,
    ),
    _route(
        "cancel_campaign",
        "campaigns/{campaignId}",
        "DELETE",
        404,
        operation="cancelCampaign",
        summary="Cancel a campaign: chunks not yet sent are not sent.",
        parameters=(_CAMPAIGN_ID,),
        answers=((202, "The campaign, cancelled (or as it finished).", Campaign),),
        says=_NO_CAMPAIGN,
    ),
    _route(
        "tag_summary",
        "tags/{tag}/summary",
        "GET",
        400,
        operation="getTagSummary",
        summary="Messages per status for one tag (the tag in the path).",
        parameters=(_TAG_IN_PATH,),
        answers=(_SUMMARY,),
        says=((400, "The tag is invalid."),),
    ),
    _route(
        "tag_summary_by_query",
        "tags/summary",
        "GET",
        400,
        operation="getTagSummaryByQuery",
        summary="Messages per status for one tag (the tag in the query: any tag a send accepts).",
        query=TagQuery,
        answers=(_SUMMARY,),
        says=((400, "The tag is missing or invalid."),),
    ),
    _route(
        "list_tags",
        "tags",
        "GET",
        400,
        operation="listTags",
        summary="The tags, newest activity first, with their counts.",
        query=ListTagsQuery,
        answers=((200, "A page of tags.", TagPage),),
        says=_INVALID,
    ),
    _route(
        "export_tag_messages",
        "tags/{tag}/messages.csv",
        "GET",
        400,
        operation="exportTagMessages",
        summary="Every message of the tag (in the path) as CSV (RFC 4180, UTF-8), formulas escaped; streamed.",
        parameters=(_TAG_IN_PATH,),
        query=ExportQuery,
        answers=(_CSV,),
        says=_INVALID,
    ),
    _route(
        "export_tag_messages_by_query",
        "tags/messages.csv",
        "GET",
        400,
        operation="exportTagMessagesByQuery",
        summary="Every message of the tag (in the query: any tag a send accepts) as CSV (RFC 4180, "
        "UTF-8), formulas escaped; streamed.",
        query=TagExportQuery,
        answers=(_CSV,),
        says=((400, "The tag is missing, or a parameter is invalid."),),
    ),
    _route(
        "list_poison",
        "poison",
        "GET",
        400,
        operation="listPoison",
        summary="Events that could never be processed, with the reason and the payload's start.",
        query=PoisonQuery,
        answers=((200, "A page of poison entries.", PoisonPage),),
        says=_INVALID,
    ),
    _route(
        "dashboard",
        "dashboard",
        "GET",
        400,
        require_settings=True,
        operation="getDashboard",
        summary="The dashboard: one self-contained HTML page (no external requests).",
        query=DashboardQuery,
        answers=((200, "HTML", ("text/html", {"type": "string"})),),
        says=(*_INVALID, (503, PROBLEM_TITLES[503])),
    ),
    _route(
        "receive_delivery_reports",
        "events/delivery-reports",
        "POST,OPTIONS",
        400,
        require_settings=True,
        operation="receiveDeliveryReports",
        summary="Batched ingest: an Event Grid WebHook endpoint (maxEventsPerBatch up to 5000).",
        parameters=(_EVENT_TYPE,),
        body=_EVENTS,
        answers=(
            (200, "Every event recorded (or kept as poison); or the validation answer.", _VALIDATION),
            (202, "Unsubscribe acknowledged.", None),
        ),
        says=(
            (400, "Not JSON, or a missing or unknown aeg-event-type."),
            (503, "Some events were not recorded; Event Grid redelivers the batch."),
        ),
    ),
    _route(
        "health",
        "health",
        "GET",
        auth=_ANONYMOUS,
        operation="getHealth",
        summary="Is the app up and can it reach table storage?",
        answers=((200, "Healthy.", Health),),
        says=((503, "Table storage is unreachable."),),
    ),
    _route(
        "openapi",
        "openapi.json",
        "GET",
        auth=_ANONYMOUS,
        require_settings=True,
        operation="getOpenApi",
        summary="This document.",
        answers=((200, "OpenAPI 3.1", ("application/json", {"type": "object"})),),
        says=((503, PROBLEM_TITLES[503]),),
    ),
)
BY_FUNCTION = {route.function: route for route in ROUTES}
