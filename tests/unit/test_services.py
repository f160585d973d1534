"""Services over a hand-written fake store: logging, expiry, send records."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from mms_tracker.domain import DeliveryReport, Send, Status
from mms_tracker.service.tracking import expire_due, record_report, record_sends
from tests.fakes import InMemoryStore

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=72)


def report(event_id: str = "e1") -> DeliveryReport:
    return DeliveryReport(
        event_id,
        "Microsoft.Communication.SMSDeliveryReportReceived",
        "m1",
        "Delivered",
        "No error.",
        T0,
        to="+18335852071",
        from_="+18004567891",
    )


async def test_one_structured_log_line_per_report_with_masked_number(caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryStore()
    caplog.set_level(logging.INFO, logger="mms_tracker.tracking")
    await record_report(store, report(), T0)
    await record_report(store, report(), T0)
    lines = [r for r in caplog.records if getattr(r, "event", None) == "delivery_report"]
    assert [line.fields["outcome"] for line in lines] == ["applied", "duplicate"]  # type: ignore[attr-defined]
    first = lines[0].fields  # type: ignore[attr-defined]
    assert (first["message_id"], first["old_status"], first["new_status"]) == ("m1", None, "Delivered")
    assert first["to"] == "+1******2071"
    assert "18335852071" not in caplog.text


async def test_accepted_sends_join_the_expiry_index_and_rejected_do_not() -> None:
    store = InMemoryStore()
    sends = [
        Send("a", "+18335852071", "+18004567891", "t", True, T0),
        Send("r", "+1234", "+18004567891", "t", False, T0, "Invalid phone number format."),
    ]
    await record_sends(store, sends, T0, WINDOW)
    assert store.due_entries == {"a": T0 + WINDOW}
    assert store.records["r"].status is Status.REJECTED


async def test_expiry_reads_from_its_cursor_and_advances_it() -> None:
    store = InMemoryStore()
    await record_sends(store, [Send("a", "+18335852071", "+18004567891", "t", True, T0)], T0, WINDOW)
    assert await expire_due(store, T0 + WINDOW + dt.timedelta(hours=2)) == 1
    assert store.records["a"].status is Status.EXPIRED
    assert store.due_entries == {}
    assert store.cursor == (T0 + WINDOW + dt.timedelta(hours=2)).replace(minute=0)
