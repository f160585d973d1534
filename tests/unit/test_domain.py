"""The rules of the tracking record (README, "HTTP API": statuses and rules), one test per rule."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from mms_tracker.domain import (
    MAX_EVENTS,
    DeliveryReport,
    Send,
    Status,
    TrackingRecord,
    apply_expiry,
    apply_report,
    apply_send,
)

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
MID = "msg-1"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def report(status: str, received: float, event_id: str | None = None, details: str | None = None) -> DeliveryReport:
    return DeliveryReport(
        event_id=event_id or f"ev-{status}-{received}",
        event_type="Microsoft.Communication.SMSDeliveryReportReceived",
        message_id=MID,
        delivery_status=status,
        delivery_status_details=details or f"{status} details",
        received_timestamp=at(received),
        to="+18335852071",
        from_="+18004567891",
        tag="campaign",
    )


def send(accepted: bool = True) -> Send:
    return Send(MID, "+18335852071", "+18004567891", "campaign", accepted, T0, None if accepted else "Invalid")


LATER = at(100)


def run(*reports: DeliveryReport, now: dt.datetime = LATER, start: TrackingRecord | None = None) -> TrackingRecord:
    record = start
    for r in reports:
        record = apply_report(record, r, now).after
    assert record is not None
    return record


def sent() -> TrackingRecord:
    return apply_send(None, send(), T0).after


def test_accepted_send_creates_an_accepted_record_with_no_completion() -> None:
    record = sent()
    assert record.status is Status.ACCEPTED
    assert (record.to, record.from_, record.tag, record.created_at) == ("+18335852071", "+18004567891", "campaign", T0)
    assert record.completed_at is None


def test_refused_recipient_is_rejected_and_final() -> None:
    record = apply_send(None, send(accepted=False), T0).after
    assert record.status is Status.REJECTED
    assert record.completed_at == T0
    assert record.status_details == "Invalid"


def test_delivered_report_makes_the_record_delivered_and_complete() -> None:
    record = run(report("Delivered", 5), start=sent())
    assert record.status is Status.DELIVERED
    assert record.status_details == "Delivered details"
    assert record.completed_at == at(5)


def test_final_status_is_never_replaced_by_a_non_final_report() -> None:
    record = run(report("Delivered", 5), report("Sent", 9), start=sent())
    assert record.status is Status.DELIVERED
    assert len(record.events) == 2


def test_late_delivered_report_does_not_override_newer_failure() -> None:
    record = run(report("Failed", 10), report("Delivered", 5), start=sent())
    assert record.status is Status.FAILED


def test_newer_final_report_replaces_older_final() -> None:
    record = run(report("Failed", 5), report("Delivered", 10), start=sent())
    assert record.status is Status.DELIVERED
    assert record.completed_at == at(10)


def test_redelivered_event_is_kept_once() -> None:
    first = report("Delivered", 5, event_id="same")
    record = run(first, start=sent())
    change = apply_report(record, first, at(200))
    assert change.outcome == "duplicate"
    assert change.after is record


def test_same_report_under_another_event_id_is_kept_once() -> None:
    record = run(report("Delivered", 5, event_id="a"), start=sent())
    change = apply_report(record, report("Delivered", 5, event_id="b"), at(200))
    assert change.outcome == "duplicate"
    assert len(change.after.events) == 1


def test_same_event_id_with_other_content_is_another_report() -> None:
    # ACS's own samples (azure-rest-api-specs, specification/eventgrid/data-plane/Microsoft.Communication/,
    # examples/*/sms_delivery_report_received.json) use the messageId as the event id.
    record = run(report("Failed", 5, event_id=MID), report("Delivered", 9, event_id=MID), start=sent())
    assert [e.delivery_status for e in record.events] == ["Failed", "Delivered"]
    assert record.status is Status.DELIVERED


def test_same_event_id_and_same_content_is_one_report() -> None:
    record = run(report("Failed", 5, event_id=MID), report("Failed", 5, event_id=MID), start=sent())
    assert len(record.events) == 1


def test_report_before_send_creates_the_record_and_send_fills_in_without_lowering() -> None:
    early = apply_report(None, report("Delivered", 5), at(1)).after
    assert early.status is Status.DELIVERED and not early.sent
    filled = apply_send(early, Send(MID, "+18335852071", "+18004567891", "other-tag", True, T0), at(2)).after
    assert filled.status is Status.DELIVERED
    assert filled.sent and filled.created_at == T0
    assert filled.tag == "campaign"  # the first tag recorded (the report's) keeps the message


def test_a_later_reports_other_tag_is_kept_in_its_event_but_does_not_move_the_message() -> None:
    record = run(replace(report("Delivered", 5), tag="elsewhere"), start=sent())
    assert record.tag == "campaign"
    assert record.events[0].tag == "elsewhere"


def test_a_final_report_survives_any_number_of_later_non_final_reports() -> None:
    record = run(report("Delivered", 5), *(report("Sent", 10 + i) for i in range(MAX_EVENTS + 20)), start=sent())
    assert len(record.events) == MAX_EVENTS
    assert (record.status, record.completed_at) == (Status.DELIVERED, at(5))
    again = apply_report(record, report("Delivered", 5), at(500))
    assert again.after.status is Status.DELIVERED


def test_reports_100_ns_apart_order_by_the_seventh_digit() -> None:
    failed = replace(report("Failed", 5), received_extra_ticks=1)
    delivered = replace(report("Delivered", 5), received_extra_ticks=9)
    for order in itertools.permutations([failed, delivered]):
        assert run(*order, start=sent()).status is Status.DELIVERED
    assert failed.fingerprint != replace(failed, received_extra_ticks=2).fingerprint


def test_expiry_marks_only_accepted_records() -> None:
    expired = apply_expiry(sent(), at(999))
    assert expired is not None and expired.after.status is Status.EXPIRED
    assert expired.after.completed_at == at(999)
    assert apply_expiry(run(report("Delivered", 5), start=sent()), at(999)) is None


def test_late_real_report_replaces_expired() -> None:
    expiry = apply_expiry(sent(), at(999))
    assert expiry is not None
    record = run(report("Failed", 5), start=expiry.after)
    assert record.status is Status.FAILED


def test_non_final_report_does_not_replace_expired() -> None:
    expiry = apply_expiry(sent(), at(999))
    assert expiry is not None
    assert run(report("Sent", 5), start=expiry.after).status is Status.EXPIRED


def test_non_final_report_keeps_accepted_and_records_the_event() -> None:
    record = run(report("Sent", 5), start=sent())
    assert record.status is Status.ACCEPTED
    assert record.status_details == "Sent details"
    assert [e.delivery_status for e in record.events] == ["Sent"]


def test_repeated_send_write_changes_nothing() -> None:
    record = sent()
    assert apply_send(record, send(), at(5)).outcome == "duplicate"


# --- properties --------------------------------------------------------------------------------

REPORTS = st.lists(
    st.tuples(st.sampled_from(["Delivered", "Failed", "Sent", "Queued"]), st.integers(0, 50)),
    min_size=1,
    max_size=6,
    unique=True,
)


@settings(max_examples=200, deadline=None)
@given(REPORTS, st.data())
def test_any_permutation_and_duplication_yields_the_same_record(
    specs: list[tuple[str, int]], data: st.DataObject
) -> None:
    reports = [report(status, t) for status, t in specs]
    duplicated = reports + data.draw(st.lists(st.sampled_from(reports), max_size=4))
    shuffled = data.draw(st.permutations(duplicated))
    send_first = data.draw(st.booleans())
    baseline = run(*reports, start=sent())
    result = run(*shuffled, start=sent() if send_first else None)
    if not send_first:
        result = apply_send(result, send(), at(100)).after
    assert result.events == baseline.events
    assert (result.status, result.status_details, result.completed_at) == (
        baseline.status,
        baseline.status_details,
        baseline.completed_at,
    )


@settings(max_examples=200, deadline=None)
@given(REPORTS, st.booleans())
def test_final_status_is_the_latest_final_by_received_timestamp(specs: list[tuple[str, int]], one_id: bool) -> None:
    record = run(*(report(s, t, event_id=MID if one_id else None) for s, t in specs), start=sent())
    assert len(record.events) == len(specs)
    finals = [(t, s) for s, t in specs if s in ("Delivered", "Failed")]
    if not finals:
        assert record.status is Status.ACCEPTED
        return
    latest = max(t for t, _ in finals)
    assert record.status.value in {s for t, s in finals if t == latest}
    assert record.completed_at == at(latest)


def test_every_order_of_two_finals_agrees() -> None:
    two = [report("Failed", 7), report("Delivered", 3)]
    outcomes = {run(*order, start=sent()).status for order in itertools.permutations(two)}
    assert outcomes == {Status.FAILED}


STATUS_CHOICES = st.sampled_from(["Delivered", "Failed", "Sent", "Queued", "delivered"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(STATUS_CHOICES, st.integers(0, 10_000), st.integers(0, 9)), min_size=1, max_size=260))
def test_status_is_the_rules_applied_to_every_report_ever_received(specs: list[tuple[str, int, int]]) -> None:
    """Whatever trims the history, the status is what the rules give over all reports received."""
    reports = [replace(report(s, t), received_extra_ticks=x) for s, t, x in specs]
    record = run(*reports, start=sent())
    finals = [r for r in reports if r.status is not None]
    if not finals:
        assert record.status is Status.ACCEPTED
        return
    winner = max(finals, key=lambda r: (r.received_ticks, r.fingerprint))
    assert (record.status, record.status_details, record.completed_at) == (
        winner.status,
        winner.delivery_status_details,
        winner.received_timestamp,
    )
    assert len(record.events) <= MAX_EVENTS
