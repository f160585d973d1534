"""The tag routes: a tag's summary, the tags by activity, and a tag's messages as CSV."""

from __future__ import annotations

import azure.functions as func

from ...domain.statistics import LATENCY_BOUNDS
from ...runtime import RUNTIME
from ...service import queries
from ..export import CSV_HEADER, csv_rows
from ..models import (
    ByStatus,
    ExportQuery,
    LatencyBucket,
    LatencyOut,
    ListMessagesQuery,
    ListTagsQuery,
    TagListItem,
    TagPage,
    TagSummary,
    dump,
)
from ..problems import json_response
from ..validation import parse_query
from .errors import answers_problems

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


def _tag(req: func.HttpRequest) -> str:
    """The route's tag, held to the same rules as ``GET /api/messages?tag=`` (problem+json otherwise)."""
    return parse_query(ListMessagesQuery, {"tag": req.route_params.get("tag", "")}).tag


@blueprint.route(route="tags/{tag}/summary", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def tag_summary(req: func.HttpRequest) -> func.HttpResponse:
    """Messages per status for one tag (zeros included), delivery latency, and the top failure reasons."""
    tag = req.route_params["tag"]
    summary = summary_of(tag, await queries.tag_report(RUNTIME.store(), tag))
    return json_response(dump(summary))


@blueprint.route(route="tags", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def list_tags(req: func.HttpRequest) -> func.HttpResponse:
    """The tags, newest activity first, each with its counts; paged with a continuation token."""
    query = parse_query(ListTagsQuery, req.params)
    listing = await queries.list_tags(RUNTIME.store(), query.pageSize, query.continuationToken)
    items = [
        TagListItem(
            tag=activity.tag,
            total=sum(counts.values()),
            byStatus=ByStatus.model_validate({status.value: n for status, n in counts.items()}),
            lastActivityAt=activity.last_activity_at.isoformat().replace("+00:00", "Z"),
        )
        for activity, counts in listing.items
    ]
    return json_response(dump(TagPage(items=items, continuationToken=listing.continuation_token)))


@blueprint.route(route="tags/{tag}/messages.csv", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_problems
async def export_tag_messages(req: func.HttpRequest) -> func.HttpResponse:
    """Every message of the tag as CSV (RFC 4180, UTF-8), read a page at a time.

    azure-functions 1.x answers with one body (streaming needs the FastAPI extension, which turns
    every route of the app into a streaming one), so the body is built page by page: what is held
    is the CSV text, never more than one page of records.
    """
    tag = _tag(req)
    query = parse_query(ExportQuery, req.params)
    body = bytearray(CSV_HEADER)
    async for records in queries.export_records(RUNTIME.store(), tag, query.status):
        body += csv_rows(records)
    filename = "messages.csv"
    return func.HttpResponse(
        body=bytes(body),
        status_code=200,
        mimetype="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def summary_of(tag: str, report: queries.TagReport) -> TagSummary:
    """A tag's summary as the API shows it (here, and in a campaign's ``delivery``)."""
    latency = LatencyOut(
        p50Seconds=report.latency.p50_seconds,
        p90Seconds=report.latency.p90_seconds,
        p99Seconds=report.latency.p99_seconds,
        count=report.latency.count,
        histogram=[
            LatencyBucket(upToSeconds=bound, count=n)
            for bound, n in zip((*LATENCY_BOUNDS, None), report.latency.histogram, strict=True)
        ],
    )
    return TagSummary(
        tag=tag,
        total=sum(report.by_status.values()),
        byStatus=ByStatus.model_validate({status.value: n for status, n in report.by_status.items()}),
        latency=latency,
        failureReasons=report.failure_reasons,
    )
