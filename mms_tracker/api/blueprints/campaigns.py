"""Campaigns: create a job, read its progress, cancel it; and the queue-triggered worker that sends it."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from typing import Any

import azure.functions as func

from ...adapters.campaigns import CAMPAIGN_POISON_QUEUE, CAMPAIGN_QUEUE
from ...logs import log_event
from ...runtime import RUNTIME
from ...service import campaigns, queries
from ...service.campaign_ports import CampaignNotFound
from ..http import Request, Response, body_within, header, params_of, route_param
from ..models import Campaign, CampaignCreated, CampaignPage, CampaignSummary, dump
from ..problems import json_response
from ..validation import SendLimits, idempotency_key, parse_campaign_list_query, parse_campaign_request
from .registration import declared
from .tags import summary_of

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated
_log = logging.getLogger("mms_tracker.campaigns")


def _campaign_id(req: Request) -> str:
    """Campaign ids are UUIDs; anything else names no campaign (and never reaches storage as a key)."""
    value = route_param(req, "campaignId")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CampaignNotFound(value) from None


@declared(blueprint)
async def create_campaign(req: Request) -> Response:
    """Create a campaign (up to 100,000 recipients) and answer 202 with its id and ``Location``."""
    settings = RUNTIME.settings
    key = idempotency_key(header(req, "idempotency-key"))
    request = parse_campaign_request(
        await body_within(req, settings.campaign_max_request_bytes),
        settings.senders,
        SendLimits(settings.campaign_max_request_bytes, settings.max_attachment_bytes),
    )
    clients = RUNTIME.campaigns()
    campaign = await campaigns.create_campaign(
        request,
        campaigns.campaign_id_for(key),
        clients.table,
        clients.queue,
        clients.attachments,
        dt.datetime.now(dt.UTC),
    )
    body = CampaignCreated(campaignId=campaign["campaignId"], status=campaign["status"], total=campaign["total"])
    return json_response(dump(body), status=202, headers={"Location": f"/api/campaigns/{campaign['campaignId']}"})


@declared(blueprint)
async def list_campaigns(req: Request) -> Response:
    """Campaigns, newest first, a page at a time (without their delivery summaries)."""
    query = parse_campaign_list_query(params_of(req))
    found, cursor = await campaigns.list_campaigns(
        RUNTIME.campaigns().table, query.pageSize, _cursor(query.continuationToken)
    )
    items = [CampaignSummary.model_validate({k: c.get(k) for k in CampaignSummary.model_fields}) for c in found]
    token = base64.urlsafe_b64encode(cursor.encode()).decode() if cursor else None
    return json_response(dump(CampaignPage(items=items, continuationToken=token)))


def _cursor(token: str | None) -> str | None:
    """The continuation token is the last listed index key, base64url; anything else is refused by the store."""
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeError):
        return "\x00"  # not base64: the store refuses it as a token it did not issue


async def _campaign_body(campaign: dict[str, Any]) -> dict[str, Any]:
    summary = summary_of(campaign["tag"], await queries.tag_report(RUNTIME.store(), campaign["tag"]))
    return dump(
        Campaign(
            campaignId=campaign["campaignId"],
            tag=campaign["tag"],
            status=campaign["status"],
            total=campaign["total"],
            sent=campaign["sent"],
            accepted=campaign["accepted"],
            rejected=campaign["rejected"],
            failedToSend=campaign["failedToSend"],
            createdAt=campaign["createdAt"],
            completedAt=campaign["completedAt"],
            reason=campaign.get("reason"),
            delivery=summary,
        )
    )


@declared(blueprint)
async def get_campaign(req: Request) -> Response:
    """A campaign's status, counters and its tag's delivery summary."""
    campaign, _ = await RUNTIME.campaigns().table.get_campaign(_campaign_id(req))
    return json_response(await _campaign_body(campaign))


@declared(blueprint)
async def cancel_campaign(req: Request) -> Response:
    """Cancel a campaign: chunks not yet sent are not sent."""
    campaign = await campaigns.cancel_campaign(RUNTIME.campaigns().table, _campaign_id(req), dt.datetime.now(dt.UTC))
    return json_response(await _campaign_body(campaign), status=202)


@blueprint.queue_trigger(arg_name="message", queue_name=CAMPAIGN_QUEUE, connection="AzureWebJobsStorage")
async def send_campaign_chunk(message: func.QueueMessage) -> None:
    """Send one chunk of a campaign (up to 100 recipients); raises on a transient failure, so the queue retries."""
    await _run_chunk(message, int(message.dequeue_count or 1))


@blueprint.queue_trigger(arg_name="message", queue_name=CAMPAIGN_POISON_QUEUE, connection="AzureWebJobsStorage")
async def settle_campaign_chunk(message: func.QueueMessage) -> None:
    """A chunk the queue gave up on (five failed deliveries, or a worker that died on the last) is
    settled here, so its campaign always completes: one last attempt that counts the chunk either
    way (sent from the stored results or now, or ``failedToSend`` with the reason); a chunk already
    counted (an ACS refusal poisoned at once, a last delivery that counted it) is skipped."""
    await _run_chunk(message, campaigns.MAX_DEQUEUE_COUNT)


async def _run_chunk(message: func.QueueMessage, dequeue_count: int) -> None:
    try:
        chunk = campaigns.Chunk.from_message(message.get_body().decode())
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        log_event(_log, logging.ERROR, "campaign_chunk_malformed", queue_message=str(message.id))
        return  # can never be processed: dropped, not retried
    settings = RUNTIME.settings
    clients = RUNTIME.campaigns()
    context = campaigns.ChunkContext(
        acs=RUNTIME.acs(),
        tracking=RUNTIME.store(),
        results=RUNTIME.store(),
        campaigns=clients.table,
        queue=clients.queue,
        attachments=clients.attachments,
        throttle=RUNTIME.throttle(),
        expiry_window=dt.timedelta(hours=settings.expiry_window_hours),
        retention=dt.timedelta(days=settings.retention_days),
        intents=RUNTIME.store(),
        storage_budget=settings.storage_timeout_seconds,
        claim=dt.timedelta(seconds=settings.send_deadline_seconds),
    )
    outcome = await campaigns.send_chunk(chunk, dequeue_count, context, lambda: dt.datetime.now(dt.UTC))
    log_event(
        _log,
        logging.INFO,
        "campaign_chunk",
        campaign=chunk.campaign_id,
        chunk=chunk.index,
        outcome=outcome.result,
        recipients=len(chunk.recipients),
    )
