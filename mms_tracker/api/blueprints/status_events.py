"""Status-change events out: the timer that retries what a worker could not publish."""

from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from ...logs import log_event
from ...runtime import RUNTIME
from ...service.status_events import event_source, retry_pending

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated
_log = logging.getLogger("mms_tracker.status_events")


@blueprint.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def publish_status_events(timer: func.TimerRequest) -> None:
    """Every minute: pending status events whose next attempt is due are published (none without a topic)."""
    settings = RUNTIME.settings
    publisher = RUNTIME.status_publisher()
    if publisher is None:
        return
    run = await retry_pending(
        RUNTIME.store(),
        publisher,
        event_source(settings.app_name),
        dt.datetime.now(dt.UTC),
        dt.timedelta(minutes=settings.status_events_retry_window_minutes),
    )
    log_event(
        _log,
        logging.INFO,
        "status_events_run",
        published=run.published,
        failed=run.failed,
        settled=run.settled,
        overdue=run.overdue,
        remaining=run.remaining,
        past_due=timer.past_due,
    )
