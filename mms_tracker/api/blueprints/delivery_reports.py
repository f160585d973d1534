"""Delivery reports in (the Event Grid trigger and the batched webhook), and the expiry, retention and
send-reconciliation timers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

import azure.functions as func

from ... import telemetry
from ...adapters.campaigns import CampaignNotConfigured
from ...logs import log_event
from ...runtime import RUNTIME
from ...service.campaigns import count_recorded_chunk
from ...service.ports import SendIntent
from ...service.reconciler import reconcile_sends as reconcile_intents
from ...service.tracking import expire_due, ingest_event, retire_old
from ..events import event_envelope
from ..http import Request, Response
from ..problems import Problem, json_response, problem_response
from .registration import declared

# A reconciler run is cut off after this long, well inside host.json's functionTimeout (5 minutes);
# what it had not finished stays claimed a little longer, then the next run takes it up.
RECONCILE_RUN_SECONDS = 120.0
BATCH_CONCURRENCY = 32  # events of one batch in flight at once; more only queues inside the storage client
blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated
_log = logging.getLogger("mms_tracker.tracking")


@blueprint.event_grid_trigger(arg_name="event")
async def on_delivery_report(event: func.EventGridEvent) -> None:
    """Correlate one delivery report into its tracking record.

    An event that can never be processed is recorded in the poison table and acknowledged (so
    Event Grid does not redeliver it); a transient failure raises, so Event Grid redelivers.
    """
    await ingest_event(RUNTIME.store(), event_envelope(event), dt.datetime.now(dt.UTC), _retire_after(), **_windows())


@declared(blueprint)
async def receive_delivery_reports(req: Request) -> Response:
    """The batched ingest path: an Event Grid WebHook endpoint taking many events per request.

    Speaks the webhook protocol (validation handshake, CloudEvents OPTIONS), processes every event
    of a batch concurrently under the same rules as ``on_delivery_report``, and answers 200 only
    when all were recorded (poison included), 503 otherwise so Event Grid redelivers the batch,
    which is safe: recording is idempotent.
    """
    if req.method == "OPTIONS":
        return _webhook_options(req)
    kind = (req.headers.get("aeg-event-type") or "").lower()
    events = _parse_events(await req.body())
    if isinstance(events, Response):
        return events
    if kind != "notification":
        return _control_response(kind, events)
    failures = await _ingest_batch(events)
    return _batch_response(len(events), failures)


def _webhook_options(req: Request) -> Response:
    """The CloudEvents abuse-protection handshake: allow the asking origin at any rate."""
    origin = req.headers.get("webhook-request-origin", "*")
    return Response(
        status_code=200,
        headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"},
    )


def _parse_events(body: bytes | None) -> list[object] | Response:
    """The request's events (one event or an array of them), or the 400 that answers a bad body."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return problem_response(Problem(400, "The body is not JSON.", "Bad Request"))
    events = [payload] if isinstance(payload, dict) else payload
    if not isinstance(events, list):
        return problem_response(Problem(400, "Expected an event or an array of events.", "Bad Request"))
    return events


def _control_response(kind: str, events: list[object]) -> Response:
    """The answer to a request that is not a notification: the validation handshake, an unsubscribe,
    or a 400 for a missing or unknown ``aeg-event-type``."""
    if kind == "subscriptionvalidation":
        code = _validation_code(events)
        if code is None:
            return problem_response(Problem(400, "No validationCode in the validation event.", "Bad Request"))
        return json_response({"validationResponse": code})
    if kind == "unsubscribe":
        return Response(status_code=202)
    return problem_response(Problem(400, "Missing or unknown aeg-event-type header.", "Bad Request"))


async def _ingest_batch(events: list[object]) -> list[Exception]:
    """Record every event of a batch, ``BATCH_CONCURRENCY`` at a time; the exceptions of those that
    failed (anything that is not an ``Exception``, a cancellation say, is raised)."""
    now = dt.datetime.now(dt.UTC)
    store = RUNTIME.store()
    retire_after, windows = _retire_after(), _windows()
    limit = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(event: object) -> object:
        async with limit:
            envelope = event if isinstance(event, dict) else {"raw": event}
            return await ingest_event(store, envelope, now, retire_after, **windows)

    outcomes = await asyncio.gather(*(one(e) for e in events), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    for failure in failures:
        if not isinstance(failure, Exception):
            raise failure
    return [f for f in failures if isinstance(f, Exception)]


def _batch_response(count: int, failures: list[Exception]) -> Response:
    """200 when every event was recorded; otherwise the failure is logged and 503 asks for redelivery."""
    if not failures:
        return Response(status_code=200)
    log_event(
        _log,
        logging.WARNING,
        "delivery_batch_failed",
        events=count,
        failed=len(failures),
        reason=type(failures[0]).__name__,
    )
    return problem_response(
        Problem(
            503,
            "Some events could not be recorded; Event Grid will redeliver.",
            "Retry later",
            headers={"Retry-After": "5"},
        )
    )


def _validation_code(events: list[object]) -> str | None:
    for event in events:
        data = event.get("data") if isinstance(event, dict) else None
        if isinstance(data, dict):
            code = {str(k).lower(): v for k, v in data.items()}.get("validationcode")
            if isinstance(code, str):
                return code
    return None


@blueprint.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def expire_stale_messages(timer: func.TimerRequest) -> None:
    """Every five minutes: messages still ``Accepted`` past ``EXPIRY_WINDOW_HOURS`` become ``Expired``."""
    with telemetry.span("mms.expire") as span:
        expired = await expire_due(RUNTIME.store(), dt.datetime.now(dt.UTC))
        span.set("mms.expired", expired)
    log_event(_log, logging.INFO, "expiry_run", expired=expired, past_due=timer.past_due)


@blueprint.timer_trigger(schedule="0 30 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def retire_old_messages(timer: func.TimerRequest) -> None:
    """Every hour: records completed more than ``RETENTION_DAYS`` ago are deleted, with their counters."""
    settings = RUNTIME.settings
    deleted = await retire_old(RUNTIME.store(), dt.datetime.now(dt.UTC), dt.timedelta(days=settings.retention_days))
    log_event(_log, logging.INFO, "retention_run", deleted=deleted, past_due=timer.past_due)


@blueprint.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def reconcile_sends(timer: func.TimerRequest) -> None:
    """Every minute: sends whose records were not written (storage failed, the worker died) are
    finished from their intents, by repeating the ACS call with the same repeatability pairs; a
    campaign chunk's is then counted in its campaign (``count_recorded_chunk``), once."""
    settings = RUNTIME.settings
    store = RUNTIME.store()

    async def count_chunk(intent: SendIntent) -> None:
        if intent.campaign_chunk is None:
            return
        try:
            table = RUNTIME.campaigns().table
        except CampaignNotConfigured:  # campaigns were switched off since: the send is still finished
            log_event(_log, logging.WARNING, "campaign_chunk_not_counted", campaign=intent.campaign_chunk[0])
            return
        await count_recorded_chunk(table, store, intent.campaign_chunk, dt.datetime.now(dt.UTC))

    with telemetry.span("mms.reconcile") as span:
        done = await reconcile_intents(
            RUNTIME.reconcile_deps(RECONCILE_RUN_SECONDS, count_chunk),
            dt.datetime.now(dt.UTC),
            dt.timedelta(seconds=settings.reconcile_after_seconds),
        )
        telemetry.reconciled(span, vars(done))
    log_event(_log, logging.INFO, "reconcile_run", past_due=timer.past_due, **vars(done))


def _windows() -> dict[str, dt.timedelta]:
    """``ingest_event``'s windows from the settings: the expiry window of a record that a report alone
    made, and how far past its recording a report's ``receivedTimestamp`` still counts as given."""
    settings = RUNTIME.settings
    return {
        "expire_after": dt.timedelta(hours=settings.expiry_window_hours),
        "max_skew": dt.timedelta(seconds=settings.report_max_future_skew_seconds),
    }


def _retire_after() -> dt.timedelta:
    """How long after its first report a record that no send scheduled is looked at for deletion."""
    settings = RUNTIME.settings
    return dt.timedelta(hours=settings.expiry_window_hours) + dt.timedelta(days=settings.retention_days)
