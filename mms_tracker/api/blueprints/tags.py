"""The tag routes: a tag's summary, the tags by activity, and a tag's messages as CSV."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

import azure.functions as func

from ...domain import Status, TrackingRecord
from ...domain.statistics import LATENCY_BOUNDS
from ...domain.text import iso_z
from ...logs import log_event
from ...runtime import RUNTIME
from ...service import queries
from ..export import CSV_HEADER, csv_rows
from ..http import Request, Response, StreamingResponse, params_of, route_param
from ..models import (
    ByStatus,
    ExportQuery,
    LatencyBucket,
    LatencyOut,
    ListMessagesQuery,
    ListTagsQuery,
    TagExportQuery,
    TagListItem,
    TagPage,
    TagQuery,
    TagSummary,
    dump,
)
from ..problems import json_response
from ..validation import parse_query
from .registration import declared

_log = logging.getLogger("mms_tracker.export")
blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


def _path_tag(req: Request) -> str:
    """The path form's tag, held to the same rules as ``GET /api/messages?tag=`` (problem+json otherwise)."""
    return parse_query(ListMessagesQuery, {"tag": route_param(req, "tag")}).tag


@declared(blueprint)
async def tag_summary(req: Request) -> Response:
    """Messages per status for one tag (zeros included), delivery latency, and the top failure reasons.

    The tag is one path segment: a tag holding ``/`` or that is ``.`` or ``..`` cannot travel here
    (README, "Tags in URLs"); :func:`tag_summary_by_query` takes any tag.
    """
    return await _summary(_path_tag(req))


@declared(blueprint)
async def tag_summary_by_query(req: Request) -> Response:
    """:func:`tag_summary` with the tag in the query string (``?tag=``), where any tag a send accepts travels."""
    return await _summary(parse_query(TagQuery, params_of(req)).tag)


async def _summary(tag: str) -> Response:
    summary = summary_of(tag, await queries.tag_report(RUNTIME.store(), tag))
    return json_response(dump(summary))


@declared(blueprint)
async def list_tags(req: Request) -> Response:
    """The tags, newest activity first, each with its counts; paged with a continuation token."""
    query = parse_query(ListTagsQuery, params_of(req))
    listing = await queries.list_tags(RUNTIME.store(), query.pageSize, query.continuationToken)
    items = [
        TagListItem(
            tag=activity.tag,
            total=sum(counts.values()),
            byStatus=ByStatus.model_validate({status.value: n for status, n in counts.items()}),
            lastActivityAt=iso_z(activity.last_activity_at),
        )
        for activity, counts in listing.items
    ]
    return json_response(dump(TagPage(items=items, continuationToken=listing.continuation_token)))


@declared(blueprint)
async def export_tag_messages(req: Request) -> Response:
    """Every message of the tag as CSV (RFC 4180, UTF-8), streamed a page of records at a time.

    The tag is one path segment, as in :func:`tag_summary`; :func:`export_tag_messages_by_query`
    takes any tag. The first page is read before the answer starts, so a bad tag, a bad status or
    storage that is down is still a problem+json. Once rows have gone out, a failing page cannot
    become a status any more: the stream is cut without its end (see :func:`_csv`), so no client
    takes a partial export for a whole one.
    """
    tag = _path_tag(req)
    return await _export(tag, parse_query(ExportQuery, params_of(req)).status)


@declared(blueprint)
async def export_tag_messages_by_query(req: Request) -> Response:
    """:func:`export_tag_messages` with the tag in the query string (``?tag=&status=``): any tag travels."""
    query = parse_query(TagExportQuery, params_of(req))
    return await _export(query.tag, query.status)


async def _export(tag: str, status: Status | None) -> Response:
    pages = queries.export_records(RUNTIME.store(), tag, status)
    try:
        first: list[TrackingRecord] = await anext(pages, [])
    except BaseException:
        await pages.aclose()
        raise
    return StreamingResponse(
        _csv(first, pages),
        status_code=200,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="messages.csv"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


async def _csv(first: list[TrackingRecord], pages: AsyncGenerator[list[TrackingRecord], None]) -> AsyncIterator[bytes]:
    """The header and the first page, then one chunk per page: no more than one page is ever held.

    A page that fails after the first is logged and re-raised: the worker's ASGI server (and the
    local host) then close the connection before the chunked body's last chunk, which every HTTP
    client reports as an incomplete body rather than a shorter file.
    """
    rows = len(first)
    try:
        yield CSV_HEADER + csv_rows(first)
        async for records in pages:
            rows += len(records)
            yield csv_rows(records)
    except Exception as exc:
        log_event(_log, logging.WARNING, "csv_export_cut", rows_sent=rows, reason=type(exc).__name__)
        raise
    finally:
        await pages.aclose()


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
