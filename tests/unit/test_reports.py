"""The one delivery-report parser, for both schemas and every casing the official samples use."""

from __future__ import annotations

import datetime as dt
import json
import time

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from mms_tracker.api.events import event_envelope
from mms_tracker.domain import MAX_TAG_CHARS, DeliveryAttempt, DeliveryReport
from mms_tracker.domain.reports import (
    MAX_DETAILS_CHARS,
    MAX_ID_CHARS,
    PoisonEvent,
    parse_envelope,
    parse_instant,
    parse_timestamp,
)
from tests.support import fixture


def decode(event: dict[str, object]) -> func.EventGridEvent | func.CloudEvent:
    """What the trigger receives: the azure-functions converter's output."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})


def parse_report(event: func.EventGridEvent | func.CloudEvent) -> DeliveryReport:
    """What the trigger does with its event: its envelope, through the one domain parser."""
    return parse_envelope(event_envelope(event))


def grid_fixture() -> dict[str, object]:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    return event  # type: ignore[no-any-return]


def test_official_event_grid_sample_is_parsed() -> None:
    report = parse_report(decode(grid_fixture()))
    assert report.message_id == "Outgoing_202009180022138813a09b-0cbf-4304-9b03-1546683bb910"
    assert report.event_id == report.message_id
    assert report.delivery_status == "Delivered"
    assert report.from_ == "+15555555555"  # the sample omits the +
    assert report.received_timestamp == dt.datetime(2020, 9, 18, 0, 22, 20, 285574, tzinfo=dt.UTC)
    assert report.delivery_attempts[0].segments_succeeded == 1
    assert report.tag is None


def test_pascal_case_cloud_event_with_tag_is_parsed() -> None:
    event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/acs",
        "time": "2024-01-01T00:00:00Z",
        "type": "Microsoft.Communication.SMSDeliveryReportReceived",
        "data": {
            "MessageId": "m-1",
            "From": "+18004567891",
            "To": "+18335852071",
            "DeliveryStatus": "Failed",
            "DeliveryStatusDetails": "Carrier refused",
            "ReceivedTimestamp": "2024-01-01T00:00:01.1234567Z",
            "Tag": "Campaign-A",
            "DeliveryAttempts": [{"Timestamp": "2024-01-01T00:00:00Z", "SegmentsSucceeded": 0, "SegmentsFailed": 1}],
        },
    }
    report = parse_report(decode(event))
    assert (report.message_id, report.delivery_status, report.tag) == ("m-1", "Failed", "Campaign-A")
    assert report.delivery_attempts[0].segments_failed == 1


def test_an_mms_report_type_no_source_defines_is_poison() -> None:
    # The Event Grid schema for ACS (azure-rest-api-specs, specification/eventgrid/data-plane/
    # Microsoft.Communication/) defines SMSDeliveryReportReceived only; ACS uses it for MMS too.
    event = grid_fixture() | {"eventType": "Microsoft.Communication.MMSDeliveryReportReceived"}
    with pytest.raises(PoisonEvent, match="unknown event type"):
        parse_report(decode(event))


def test_optional_fields_may_be_absent() -> None:
    event = grid_fixture() | {"data": {"messageId": "m", "deliveryStatus": "Delivered"}}
    report = parse_report(decode(event))
    assert report.received_timestamp is None and report.to is None and report.delivery_attempts == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eventType": "Microsoft.Storage.BlobCreated"}, "unknown event type"),
        ({"data": {"deliveryStatus": "Delivered"}}, "no messageId"),
        ({"data": {"messageId": "m"}}, "no deliveryStatus"),
        ({"data": ["not", "an", "object"]}, "not an object"),
        ({"data": {"messageId": "m", "deliveryStatus": "Delivered", "receivedTimestamp": "yesterday"}}, "timestamp"),
    ],
)
def test_unprocessable_events_are_poison(change: dict[str, object], reason: str) -> None:
    with pytest.raises(PoisonEvent, match=reason):
        parse_report(decode(grid_fixture() | change))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-09-18T00:22:20.2855749Z", dt.datetime(2020, 9, 18, 0, 22, 20, 285574, tzinfo=dt.UTC)),
        ("2020-09-18T00:22:20Z", dt.datetime(2020, 9, 18, 0, 22, 20, tzinfo=dt.UTC)),
        ("2020-09-18T02:22:20.5+02:00", dt.datetime(2020, 9, 18, 0, 22, 20, 500000, tzinfo=dt.UTC)),
        ("2020-09-18T00:22:20", dt.datetime(2020, 9, 18, 0, 22, 20, tzinfo=dt.UTC)),
    ],
)
def test_timestamps_in_every_form_acs_writes(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2020-13-01T00:00:00Z"])
def test_timestamps_outside_the_calendar_are_poison_not_a_crash(text: str) -> None:
    event = grid_fixture()
    event["data"] = dict(event["data"]) | {"receivedTimestamp": text}  # type: ignore[call-overload]
    with pytest.raises(PoisonEvent, match="timestamp"):
        parse_report(decode(event))


def test_the_seventh_fractional_digit_is_kept_for_ordering() -> None:
    # ACS writes 7 digits (the Event Grid sample in azure-rest-api-specs: "2020-09-18T00:22:20.2855749Z").
    assert parse_instant("2020-09-18T00:22:20.2855749Z") == (
        dt.datetime(2020, 9, 18, 0, 22, 20, 285574, tzinfo=dt.UTC),
        9,
    )
    assert parse_instant("2020-09-18T00:22:20.1Z")[1] == 0


def report_with(**data: object) -> DeliveryReport:
    event = grid_fixture()
    event["data"] = dict(event["data"]) | data  # type: ignore[call-overload]
    return parse_report(decode(event))


def test_a_message_id_too_long_to_be_a_key_is_poison() -> None:
    assert len(report_with(messageId="m" * MAX_ID_CHARS).message_id) == MAX_ID_CHARS
    with pytest.raises(PoisonEvent, match="messageId"):
        report_with(messageId="m" * (MAX_ID_CHARS + 1))


def test_free_text_is_cut_to_fit_storage_and_an_overlong_tag_is_dropped() -> None:
    report = report_with(deliveryStatusDetails="é" * 40_000, tag="t" * 600, to="+1" + "9" * 100_000)
    assert report.delivery_status_details is not None and len(report.delivery_status_details) == MAX_DETAILS_CHARS
    assert report.tag is None
    assert report.to is not None and len(report.to) <= 64
    assert report_with(tag="t" * MAX_TAG_CHARS).tag == "t" * MAX_TAG_CHARS


def test_lone_surrogates_and_nested_values_are_not_text() -> None:
    report = report_with(deliveryStatusDetails="bad \ud800 text", tag={"nested": ["x"]})
    assert report.delivery_status_details == "bad \ufffd text"
    assert report.tag is None
    with pytest.raises(PoisonEvent, match="messageId"):
        report_with(messageId="m\udc00")


def test_a_message_id_with_a_slash_could_never_be_read_back_so_it_is_poison() -> None:
    for unreadable in ("a/b", ".", ".."):
        with pytest.raises(PoisonEvent, match="messageId"):
            report_with(messageId=unreadable)
    assert report_with(messageId="a\\b#?%").message_id == "a\\b#?%"


# --- specifications sharpened by mutation testing (make mutation) -------------------------------

GRID_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"


def test_the_poison_record_keeps_an_event_grid_event_under_its_schemas_names() -> None:
    sample = grid_fixture()
    assert event_envelope(decode(sample)) == {
        "id": sample["id"],
        "eventType": GRID_TYPE,
        "topic": sample["topic"],
        "subject": "/phonenumber/15555555555",
        "eventTime": "2020-09-18T00:22:20+00:00",
        "dataVersion": "1.0",
        "data": sample["data"],
    }


def test_the_poison_record_keeps_a_cloud_event_under_its_schemas_names() -> None:
    event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/acs",
        "subject": "s",
        "time": "2024-01-01T00:00:00Z",
        "type": GRID_TYPE,
        "data": {"MessageId": "m"},
    }
    assert event_envelope(decode(event)) == {
        "specversion": "1.0",
        "id": "ce-1",
        "type": GRID_TYPE,
        "source": "/acs",
        "subject": "s",
        "time": "2024-01-01T00:00:00+00:00",
        "data": {"MessageId": "m"},
    }
    del event["time"]
    assert event_envelope(decode(event))["time"] is None


def envelope(**data: object) -> dict[str, object]:
    return {"id": "ev-1", "eventType": GRID_TYPE, "data": {"messageId": "m", "deliveryStatus": "Delivered"} | data}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (["not", "an", "object"], "event is not an object"),
        ({"id": "ev-1", "data": {}}, "unknown event type ''"),
        ({"id": "ev-1", "eventType": "Other", "data": {}}, "unknown event type 'Other'"),
        ({"id": "ev-1", "eventType": GRID_TYPE, "data": "{nope"}, "data is not JSON"),
        ({"id": "ev-1", "eventType": GRID_TYPE, "data": "[1]"}, "data is not an object"),
        ({"id": "ev-1", "eventType": GRID_TYPE, "data": {"deliveryStatus": "Delivered"}}, "no messageId"),
        ({"id": "ev-1", "eventType": GRID_TYPE, "data": {"messageId": True}}, "no messageId"),
        ({"id": "ev-1", "eventType": GRID_TYPE, "data": {"messageId": "  "}}, "no messageId"),
        (
            envelope(messageId="m" * (MAX_ID_CHARS + 1)),
            f"messageId is not a message id (over {MAX_ID_CHARS} characters, a '/', or not unicode)",
        ),
        ({"id": "ev-1", "eventType": GRID_TYPE, "data": {"messageId": "m"}}, "no deliveryStatus"),
        ({"eventType": GRID_TYPE, "data": {"messageId": "m", "deliveryStatus": "Delivered"}}, "no event id"),
        (envelope(receivedTimestamp=1600388540), "timestamp is not a string"),
        (envelope(receivedTimestamp="yesterday"), "unreadable timestamp"),
        (envelope(receivedTimestamp="2020-02-30T00:00:00Z"), "unreadable timestamp"),
    ],
)
def test_each_poison_event_says_exactly_why(event: object, reason: str) -> None:
    with pytest.raises(PoisonEvent) as caught:
        parse_envelope(event)
    assert str(caught.value) == reason


def test_data_sent_as_a_json_string_is_parsed() -> None:
    report = parse_envelope({"id": "ev-1", "eventType": GRID_TYPE, "data": json.dumps(envelope()["data"])})
    assert (report.message_id, report.delivery_status) == ("m", "Delivered")


def test_the_report_keeps_its_event_type_seventh_digit_and_attempt_times() -> None:
    report = parse_report(decode(grid_fixture()))
    assert report.event_type == GRID_TYPE
    assert report.received_extra_ticks == 9
    assert report.delivery_attempts == (
        DeliveryAttempt(dt.datetime(2020, 9, 18, 0, 22, 14, 931591, tzinfo=dt.UTC), 1, 0),
    )


@pytest.mark.parametrize("absent", [None, ""])
def test_an_absent_timestamp_is_no_timestamp(absent: object) -> None:
    assert parse_instant(absent) == (None, 0)
    assert parse_envelope(envelope(receivedTimestamp=absent)).received_timestamp is None


@pytest.mark.parametrize("zone", ["Z", "z"])
def test_a_z_zone_in_either_case_is_utc(zone: str) -> None:
    assert parse_instant("2020-09-18T00:22:20.2855749" + zone) == (
        dt.datetime(2020, 9, 18, 0, 22, 20, 285574, tzinfo=dt.UTC),
        9,
    )


def test_timestamps_are_utc_whatever_the_hosts_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        moment = parse_timestamp("2020-09-18T02:22:20+02:00")
        assert moment is not None and moment.isoformat() == "2020-09-18T00:22:20+00:00"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("count", "read_as"),
    [(0, 0), (7, 7), (100, 100), (2**31 - 1, 2**31 - 1), (2**31, 0), (-1, 0), (True, 0), ("3", 0), (1.0, 0)],
)
def test_a_segment_count_that_is_not_a_plausible_count_reads_as_zero(count: object, read_as: int) -> None:
    attempt = {"timestamp": None, "segmentsSucceeded": count, "segmentsFailed": count}
    [parsed] = parse_envelope(envelope(deliveryAttempts=[attempt])).delivery_attempts
    assert (parsed.segments_succeeded, parsed.segments_failed) == (read_as, read_as)
    assert type(parsed.segments_succeeded) is int


def test_details_at_the_limit_are_kept_whole_and_one_past_it_end_in_an_ellipsis() -> None:
    exact = "d" * MAX_DETAILS_CHARS
    assert parse_envelope(envelope(deliveryStatusDetails=exact)).delivery_status_details == exact
    cut = parse_envelope(envelope(deliveryStatusDetails=exact + "x")).delivery_status_details
    assert cut == "d" * (MAX_DETAILS_CHARS - 1) + "…"
