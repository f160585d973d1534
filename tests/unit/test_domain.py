"""The rules of the tracking record (docs/api.md: statuses and rules), one test per rule."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mms_tracker.domain import (
    MAX_EVENTS,
    DeliveryAttempt,
    DeliveryReport,
    RecordedEvent,
    Send,
    Status,
    TrackingRecord,
    apply_expiry,
    apply_report,
    apply_send,
    retain,
    ticks,
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
RECORDED = at(20_000)  # after every report the tests date: none lies past its recording time (the skew rule)


def run(*reports: DeliveryReport, now: dt.datetime = RECORDED, start: TrackingRecord | None = None) -> TrackingRecord:
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


# --- specifications sharpened by mutation testing (make mutation) -------------------------------

ATTEMPTS_A = (DeliveryAttempt(at(1), 1, 0),)
ATTEMPTS_B = (DeliveryAttempt(at(2), 0, 1),)


def recorded(status: str, received: float, extra: int = 0) -> RecordedEvent:
    r = replace(report(status, received), received_extra_ticks=extra)
    return RecordedEvent(
        r.event_id, r.event_type, r.fingerprint, r.delivery_status, None, r.received_timestamp, LATER, (), extra
    )


def test_ticks_count_100_ns_since_year_1_as_dotnet_does() -> None:
    moment = dt.datetime(2020, 9, 18, 0, 22, 20, 285574, tzinfo=dt.UTC)
    days = moment.date().toordinal() - 1
    expected = ((days * 86_400 + 22 * 60 + 20) * 1_000_000 + 285574) * 10 + 9
    assert ticks(moment, 9) == expected
    assert ticks(None, 9) is None


def test_a_report_one_microsecond_later_outranks_any_100_ns_digit() -> None:
    failed = replace(report("Failed", 5), received_timestamp=at(5) + dt.timedelta(microseconds=1))
    delivered = replace(report("Delivered", 5), received_extra_ticks=9)
    for order in itertools.permutations([failed, delivered]):
        assert run(*order, start=sent()).status is Status.FAILED


def test_a_report_without_received_timestamp_ranks_by_when_it_was_recorded() -> None:
    untimed = replace(report("Delivered", 0), received_timestamp=None)
    earlier_failure = run(report("Failed", 5), start=sent())
    assert apply_report(earlier_failure, untimed, at(50)).after.status is Status.DELIVERED
    assert apply_report(earlier_failure, untimed, at(3)).after.status is Status.FAILED
    # 100 ns after the moment it was recorded, a timed report is the later one
    later_by_a_tick = replace(report("Failed", 50), received_extra_ticks=1)
    record = apply_report(sent(), untimed, at(50)).after
    assert apply_report(record, later_by_a_tick, at(60)).after.status is Status.FAILED


def test_retain_keeps_the_newest_and_the_deciding_final_at_any_limit() -> None:
    final = recorded("Delivered", 1)
    others = [recorded("Sent", t) for t in (2, 3, 4)]
    events = (final, *others)
    assert retain(events, 4) == events
    assert retain(events, 3) == (final, *others[1:])
    assert retain(events, 2) == (final, others[2])
    assert retain(events, 1) == (final,)
    assert retain(events, 0) == (final,)  # never fewer than one


def test_retain_without_a_final_keeps_the_newest_in_order() -> None:
    events = tuple(recorded("Sent", t) for t in (3, 1, 2, 4))
    assert [e.received_timestamp for e in retain(events, 2)] == [at(3), at(4)]
    assert [e.received_timestamp for e in retain(events, 1)] == [at(4)]


def test_retain_keeps_the_latest_of_several_finals() -> None:
    events = (recorded("Failed", 1), recorded("Delivered", 2), recorded("Sent", 3), recorded("Sent", 4))
    assert [e.delivery_status for e in retain(events, 2)] == ["Delivered", "Sent"]
    assert [e.received_timestamp for e in retain(events, 2)] == [at(2), at(4)]


def test_more_non_final_reports_than_the_history_holds_keep_the_newest() -> None:
    record = run(*(report("Sent", i) for i in range(MAX_EVENTS + 5)), start=sent())
    assert record.status is Status.ACCEPTED
    assert [e.received_timestamp for e in record.events] == [at(i) for i in range(5, MAX_EVENTS + 5)]


def test_a_report_too_old_for_a_full_history_is_counted_but_changes_no_status_or_history() -> None:
    record = run(*(report("Sent", 10 + i) for i in range(MAX_EVENTS)), start=sent())
    change = apply_report(record, report("Queued", 1), at(500))
    assert change.after.events == record.events and change.after.status is record.status
    assert change.after.report_count == record.report_count + 1 == MAX_EVENTS + 1


def test_every_applied_change_names_the_record_before_bumps_the_revision_and_stamps_the_time() -> None:
    first = apply_send(None, send(), T0)
    assert (first.before, first.outcome, first.changed) == (None, "applied", True)
    assert (first.after.message_id, first.after.revision, first.after.updated_at) == (MID, 1, T0)
    second = apply_report(first.after, report("Sent", 5), at(7))
    assert (second.before, second.outcome, second.changed) == (first.after, "applied", True)
    assert (second.after.revision, second.after.updated_at) == (2, at(7))
    expiry = apply_expiry(second.after, at(9))
    assert expiry is not None
    assert (expiry.before, expiry.after.revision, expiry.after.updated_at) == (second.after, 3, at(9))


def test_a_report_first_record_takes_its_message_id_and_numbers_and_keeps_the_sends() -> None:
    early = apply_report(None, report("Sent", 5), at(1))
    assert (early.before, early.after.revision) == (None, 1)
    assert (early.after.message_id, early.after.to, early.after.from_) == (MID, "+18335852071", "+18004567891")
    elsewhere = replace(report("Delivered", 6), to="+19999999999", from_="+18005550100")
    record = apply_report(sent(), elsewhere, at(7)).after
    assert (record.to, record.from_) == ("+18335852071", "+18004567891")


def test_a_report_is_kept_with_its_event_id_type_attempts_and_when_it_was_recorded() -> None:
    r = replace(report("Delivered", 5, event_id="ev-9"), delivery_attempts=ATTEMPTS_A, received_extra_ticks=3)
    [event] = apply_report(sent(), r, at(8)).after.events
    assert (event.event_id, event.event_type) == ("ev-9", "Microsoft.Communication.SMSDeliveryReportReceived")
    assert (event.recorded_at, event.delivery_attempts, event.received_extra_ticks) == (at(8), ATTEMPTS_A, 3)


def test_duplicates_leave_the_record_as_it_was() -> None:
    record = run(report("Delivered", 5), start=sent())
    again = apply_report(record, report("Delivered", 5), at(200))
    assert (again.before, again.after) == (record, record)
    resent = apply_send(record, send(), at(200))
    assert (resent.before, resent.after, resent.changed) == (record, record, False)


def test_the_deciding_reports_attempts_are_shown_else_the_latest_reported() -> None:
    final_with = replace(report("Delivered", 5), delivery_attempts=ATTEMPTS_A)
    later_sent = replace(report("Sent", 9), delivery_attempts=ATTEMPTS_B)
    assert run(final_with, later_sent, start=sent()).delivery_attempts == ATTEMPTS_A
    final_without = report("Delivered", 5)
    assert run(final_without, later_sent, start=sent()).delivery_attempts == ATTEMPTS_B


def expired_record() -> TrackingRecord:
    expiry = apply_expiry(sent(), at(999))
    assert expiry is not None
    return expiry.after


@pytest.mark.parametrize(
    ("start", "status"),
    [
        (sent, Status.ACCEPTED),
        (lambda: apply_send(None, send(accepted=False), T0).after, Status.REJECTED),
        (expired_record, Status.EXPIRED),
    ],
)
def test_a_record_without_a_final_report_shows_the_latest_attempts_reported(
    start: Callable[[], TrackingRecord], status: Status
) -> None:
    assert start().delivery_attempts == ()
    first = replace(report("Sent", 5), delivery_attempts=ATTEMPTS_A)
    second = replace(report("Queued", 9), delivery_attempts=ATTEMPTS_B)
    for order in itertools.permutations([first, second]):
        record = run(*order, start=start())
        assert (record.status, record.delivery_attempts) == (status, ATTEMPTS_B)
    assert run(first, start=start()).delivery_attempts == ATTEMPTS_A


def test_an_expired_record_says_why() -> None:
    assert expired_record().status_details == "No final delivery report within the expiry window."


def test_a_send_after_a_report_is_the_records_next_revision() -> None:
    early = apply_report(None, report("Sent", 5), at(1)).after
    change = apply_send(early, send(), at(2))
    assert (change.before, change.after.revision, change.after.updated_at) == (early, 2, at(2))


@pytest.mark.parametrize(("untimed_status", "timed_status"), [("Delivered", "Failed"), ("Failed", "Delivered")])
def test_a_timed_report_100_ns_after_an_untimed_ones_recording_is_the_later(
    untimed_status: str, timed_status: str
) -> None:
    untimed = replace(report(untimed_status, 0), received_timestamp=None)
    record = apply_report(sent(), untimed, at(50)).after
    timed = replace(report(timed_status, 50), received_extra_ticks=1)
    assert apply_report(record, timed, at(60)).after.status.value == timed_status


def test_a_record_made_by_an_early_report_was_created_no_later_than_that_report() -> None:
    early = run(report("Sent", 20), report("Delivered", 30), now=at(3600))
    assert early.created_at == at(20)  # not the ingest time, an hour later
    filled = apply_send(early, send(), at(4000)).after
    assert filled.created_at == T0  # the send's own time, which is earlier
    later_send = apply_send(early, replace(send(), at=at(50)), at(4000)).after
    assert later_send.created_at == at(20)  # never moved later
