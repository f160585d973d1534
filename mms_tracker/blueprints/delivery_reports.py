"""The Event Grid trigger for ACS delivery reports, and the timer that expires silent messages."""

from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from ..logs import log_event
from ..reports import PoisonEvent, event_envelope, parse_report
from ..runtime import RUNTIME
from ..services import expire_due, record_report

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated
_log = logging.getLogger("mms_tracker.tracking")


@blueprint.event_grid_trigger(arg_name="event")
async def on_delivery_report(event: func.EventGridEvent) -> None:
    """Correlate one delivery report into its tracking record.

    An event that can never be processed is recorded in the poison table and acknowledged (so
    Event Grid does not redeliver it); a transient failure raises, so Event Grid redelivers.
    """
    now = dt.datetime.now(dt.UTC)
    store = RUNTIME.store()
    try:
        report = parse_report(event)
    except PoisonEvent as exc:
        await store.record_poison(event_envelope(event), str(exc), now)
        log_event(
            _log, logging.WARNING, "delivery_report_poison", event_id=event.id, reason=str(exc), outcome="ignored"
        )
        return
    await record_report(store, report, now)


@blueprint.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def expire_stale_messages(timer: func.TimerRequest) -> None:
    """Every five minutes: messages still ``Accepted`` past ``EXPIRY_WINDOW_HOURS`` become ``Expired``."""
    expired = await expire_due(RUNTIME.store(), dt.datetime.now(dt.UTC))
    log_event(_log, logging.INFO, "expiry_run", expired=expired, past_due=timer.past_due)
