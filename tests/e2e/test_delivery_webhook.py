"""Delivery reports through the local host's Event Grid webhook into Azurite, read back over HTTP."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from mms_tracker.runtime import RUNTIME
from tests.support import Azurite, app_environment, fixture, free_port, nonzero, poison_rows, serve_function_app

pytestmark = pytest.mark.e2e

WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_delivery_report"
NOTIFY = {"aeg-event-type": "Notification"}
SMS_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"


def grid_event() -> dict[str, Any]:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    return copy.deepcopy(event)  # type: ignore[no-any-return]


def cloud_event(event_id: str, message_id: str, status: str, received: str, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/acs",
        "type": SMS_REPORT,
        "time": "2024-01-01T00:00:00Z",
        "subject": "/phonenumber/18335852071",
        "data": {
            "MessageId": message_id,
            "From": "18004567891",
            "To": "+18335852071",
            "DeliveryStatus": status,
            "DeliveryStatusDetails": f"{status}.",
            "ReceivedTimestamp": received,
            **extra,
        },
    }


async def get_record(client: Any, message_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/messages/{message_id}")
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_official_fixture_event_is_recorded(app_client: Any) -> None:
    event = grid_event()
    response = await app_client.post(WEBHOOK, json=[event], headers=NOTIFY)
    assert response.status == 202
    record = await get_record(app_client, event["data"]["messageId"])
    assert record["status"] == "Delivered"
    assert record["statusDetails"] == "No error."
    assert record["from"] == "+15555555555"
    assert record["completedAt"] == "2020-09-18T00:22:20.285574Z"
    assert record["deliveryAttempts"] == [
        {"timestamp": "2020-09-18T00:22:14.931591Z", "segmentsSucceeded": 1, "segmentsFailed": 0}
    ]
    [history] = record["events"]
    assert history["eventId"] == event["id"] and history["eventType"] == SMS_REPORT


async def test_pascal_case_cloud_event_with_capital_tag_is_recorded_and_indexed(app_client: Any) -> None:
    event = cloud_event("ce-1", "m-pascal", "Failed", "2024-01-01T00:00:01.1234567Z", Tag="Spring")
    response = await app_client.post(WEBHOOK, json=event, headers=NOTIFY)
    assert response.status == 202
    record = await get_record(app_client, "m-pascal")
    assert (record["status"], record["tag"], record["from"]) == ("Failed", "Spring", "+18004567891")
    counts = nonzero(await RUNTIME.store().tag_counts("Spring"))
    assert counts == {"Failed": 1}


async def test_cloudevents_batch_is_recorded_per_event(app_client: Any) -> None:
    batch = [
        cloud_event("b-1", "m-batch", "Failed", "2024-01-01T00:00:01Z"),
        cloud_event("b-2", "m-batch", "Delivered", "2024-01-01T00:00:02Z"),
        cloud_event("b-3", "m-other", "Delivered", "2024-01-01T00:00:03Z"),
    ]
    response = await app_client.post(WEBHOOK, json=batch, headers=NOTIFY)
    assert response.status == 202
    record = await get_record(app_client, "m-batch")
    assert record["status"] == "Delivered"
    assert [e["eventId"] for e in record["events"]] == ["b-1", "b-2"]
    assert (await get_record(app_client, "m-other"))["status"] == "Delivered"


async def test_redelivered_event_is_recorded_once(app_client: Any) -> None:
    event = grid_event()
    for _ in range(3):
        assert (await app_client.post(WEBHOOK, json=[event], headers=NOTIFY)).status == 202
    record = await get_record(app_client, event["data"]["messageId"])
    assert len(record["events"]) == 1


async def test_poison_event_is_acknowledged_and_kept_for_inspection(app_client: Any) -> None:
    event = grid_event()
    del event["data"]["messageId"]
    event["id"] = "poison-1"
    response = await app_client.post(WEBHOOK, json=[event], headers=NOTIFY)
    assert response.status == 202
    entries = await poison_rows(RUNTIME.store(), dt.datetime.now(dt.UTC))
    assert [(e["eventId"], e["reason"]) for e in entries] == [("poison-1", "no messageId")]


async def test_unknown_message_is_404_problem(app_client: Any) -> None:
    response = await app_client.get("/api/messages/never-sent")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert (await response.json())["status"] == 404


async def test_storage_outage_answers_500_so_event_grid_redelivers(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = Azurite()
    closed.table_port = free_port()
    env = app_environment(closed.connection_string, TRACKING_STORAGE_TIMEOUT_SECONDS="1")
    client = await serve_function_app(monkeypatch, env)
    try:
        response = await client.post(WEBHOOK, json=[grid_event()], headers=NOTIFY)
        assert response.status == 500
        lookup = await client.get("/api/messages/any")
        assert lookup.status == 503
        assert lookup.headers["Content-Type"].startswith("application/problem+json")
    finally:
        await client.close()
        await RUNTIME.aclose()


# --- the batched ingest endpoint ---------------------------------------------------------------

BATCHED = "/api/events/delivery-reports"


async def test_batched_endpoint_answers_the_validation_handshake(app_client: Any) -> None:
    response = await app_client.post(
        BATCHED,
        json=fixture("subscription_validation.eventgrid.json"),
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert response.status == 200
    assert await response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    options = await app_client.options(BATCHED, headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert options.status == 200 and options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


async def test_batched_endpoint_records_every_event_of_a_batch_and_acknowledges_poison(app_client: Any) -> None:
    batch = [grid_event() | {"id": f"batch-{i}"} for i in range(40)]
    for i, event in enumerate(batch):
        event["data"] = event["data"] | {"messageId": f"batched-{i}", "tag": "batched"}
    poison = grid_event() | {"id": "batch-poison", "data": {"deliveryStatus": "Delivered"}}
    duplicate = copy.deepcopy(batch[0])
    response = await app_client.post(BATCHED, json=[*batch, poison, duplicate], headers=NOTIFY)
    assert response.status == 200
    assert nonzero(await RUNTIME.store().tag_counts("batched")) == {"Delivered": 40}
    record = await get_record(app_client, "batched-0")
    assert len(record["events"]) == 1
    entries = await poison_rows(RUNTIME.store(), dt.datetime.now(dt.UTC))
    assert [e["eventId"] for e in entries] == ["batch-poison"]


@pytest.mark.parametrize("headers", [{}, {"aeg-event-type": "Bogus"}])
async def test_batched_endpoint_without_a_known_event_type_is_400(app_client: Any, headers: dict[str, str]) -> None:
    response = await app_client.post(BATCHED, json=[grid_event()], headers=headers)
    assert response.status == 400


async def test_batched_endpoint_needs_the_function_key(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await serve_function_app(monkeypatch, app_environment(azurite.connection_string), function_key="k-1")
    try:
        assert (await client.post(BATCHED, json=[grid_event()], headers=NOTIFY)).status == 401
        assert (await client.post(f"{BATCHED}?code=k-1", json=[grid_event()], headers=NOTIFY)).status == 200
    finally:
        await client.close()
        await RUNTIME.aclose()


async def test_batched_endpoint_answers_503_when_storage_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = Azurite()
    client = await serve_function_app(
        monkeypatch, app_environment(closed.connection_string, TRACKING_STORAGE_TIMEOUT_SECONDS="1")
    )
    try:
        response = await client.post(BATCHED, json=[grid_event()], headers=NOTIFY)
        assert response.status == 503
        assert response.headers["Content-Type"].startswith("application/problem+json")
    finally:
        await client.close()
        await RUNTIME.aclose()


async def test_batched_endpoint_answers_the_cloudevents_abuse_protection_handshake(app_client: Any) -> None:
    # CloudEvents v1.0 abuse protection as Event Grid uses it (learn.microsoft.com, azure/event-grid/
    # webhook-event-delivery): the OPTIONS answer carries WebHook-Allowed-Origin (the request's origin),
    # WebHook-Allowed-Rate (a rate or "*" for no limit) and an Allow header naming POST.
    response = await app_client.options(
        "/api/events/delivery-reports", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert response.status == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert response.headers["WebHook-Allowed-Rate"] == "*"
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("unreadable", ["yesterday", 12345, "0001-01-01T00:00:00+14:00"])
async def test_an_unreadable_event_time_fails_the_trigger_as_in_azure_and_the_batched_path_records_it(
    app_client: Any, unreadable: Any
) -> None:
    """The trigger: the worker's conversion fails before the app runs, so the delivery fails (Event
    Grid retries, then dead-letters) and nothing is written, not even poison. The batched webhook is
    the app's own code, which reads no event time: the report is recorded."""
    report = grid_event() | {"id": "odd-time", "eventTime": unreadable}
    cloud = cloud_event("odd-ce-time", "m-odd-ce-time", "Delivered", "2024-01-01T00:00:01Z") | {"time": unreadable}
    response = await app_client.post(WEBHOOK, json=[report], headers=NOTIFY)
    cloud_response = await app_client.post(WEBHOOK, json=cloud, headers=NOTIFY)
    assert (response.status, cloud_response.status) == (500, 500)
    assert (await app_client.get(f"/api/messages/{report['data']['messageId']}")).status == 404
    assert (await app_client.get("/api/messages/m-odd-ce-time")).status == 404
    assert await poison_rows(RUNTIME.store(), dt.datetime.now(dt.UTC)) == []

    batched = await app_client.post(BATCHED, json=[report, cloud], headers=NOTIFY)
    assert batched.status == 200
    assert (await get_record(app_client, report["data"]["messageId"]))["status"] == "Delivered"
    assert (await get_record(app_client, "m-odd-ce-time"))["status"] == "Delivered"
