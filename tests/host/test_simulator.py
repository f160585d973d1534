"""The ACS simulator: ACS's auth and answers, Event Grid's delivery semantics, steering and faults."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.communication.sms._shared.policy import HMACCredentialsPolicy
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest

from localdev.simulator import ACCESS_KEY_B64, MMS_CONTENT_TYPES, Simulator, SimulatorConfig
from mms_tracker.adapters.acs import AcsClient, HmacSigner, RetryPolicy
from mms_tracker.service.ports import AcsThrottled
from tests.support import SWAGGER_MMS_CONTENT_TYPES

PATH = "/mms?api-version=2024-01-14-preview"


def payload(*numbers: str, tag: str = "t", request_ids: list[str] | None = None) -> dict[str, Any]:
    recipients: list[dict[str, Any]] = []
    for i, n in enumerate(numbers):
        r: dict[str, Any] = {"to": n}
        if request_ids:
            r |= {"repeatabilityRequestId": request_ids[i], "repeatabilityFirstSent": "Fri, 27 Nov 2026 09:00:00 GMT"}
        recipients.append(r)
    return {
        "from": "+18004567891",
        "recipients": recipients,
        "attachments": [{"contentType": "image/png", "contentInBase64": "iVBORw0KGgo="}],
        "sendOptions": {"enableDeliveryReport": True, "tag": tag},
    }


class Receiver:
    """A webhook that answers like a Functions host, or as scripted."""

    def __init__(self) -> None:
        self.notifications: list[tuple[dict[str, str], list[dict[str, Any]]]] = []
        self.handshakes = 0
        self.script: list[int] = []
        self.kinds: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        kind = request.headers["aeg-event-type"]
        self.kinds.append(kind)
        if kind == "SubscriptionValidation":
            self.handshakes += 1
            return web.json_response({"validationResponse": body[0]["data"]["validationCode"]})
        if self.script:
            return web.Response(status=self.script.pop(0))
        self.notifications.append((dict(request.headers), body))
        return web.Response(status=202)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for _, batch in self.notifications for e in batch]


class Rig:
    def __init__(self, simulator: Simulator, sim_server: TestServer, receiver: Receiver) -> None:
        self.simulator, self.sim_server, self.receiver = simulator, sim_server, receiver
        self.base = str(sim_server.make_url("")).rstrip("/")
        self.clients: list[AcsClient] = []

    def acs(self, retry: RetryPolicy | None = None, **options: Any) -> AcsClient:
        client = AcsClient(
            self.base,
            HmacSigner(base64.b64decode(ACCESS_KEY_B64)),
            retry=retry or RetryPolicy(base_delay=0.01),
            **options,
        )
        self.clients.append(client)
        return client

    async def get(self, path: str) -> Any:
        async with httpx.AsyncClient() as client:
            return (await client.get(self.base + path)).json()

    async def raw_send(self, body: Any) -> httpx.Response:
        """A signed ``POST /mms`` whose answer is returned as it is (no client retries or mapping)."""
        request = httpx.Request("POST", self.base + PATH, json=body)
        await HmacSigner(base64.b64decode(ACCESS_KEY_B64)).sign(request)
        async with httpx.AsyncClient() as client:
            return await client.send(request)

    async def post(self, path: str, body: Any) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(self.base + path, json=body)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    receiver = Receiver()
    webhook = web.Application()
    webhook.router.add_post("/hook", receiver.handle)
    hook_server = TestServer(webhook)
    await hook_server.start_server()
    config = SimulatorConfig(
        webhook_url=str(hook_server.make_url("/hook")),
        report_delay_seconds=0.05,
        slow_report_seconds=0.5,
        retry_scale=0.001,
    )
    simulator = Simulator(config)
    sim_server = TestServer(simulator.build())
    await sim_server.start_server()
    rig = Rig(simulator, sim_server, receiver)
    yield rig
    for client in rig.clients:
        await client.aclose()
    await sim_server.close()
    await hook_server.close()


# --- auth ----------------------------------------------------------------------------------------


def sdk_signed(base: str, body: str, key_b64: str = ACCESS_KEY_B64, path: str = PATH) -> LegacyHttpRequest:
    request = LegacyHttpRequest("POST", base + path)
    request.set_text_body(body)
    HMACCredentialsPolicy(base, key_b64).on_request(PipelineRequest(request, PipelineContext(None)))
    return request


async def raw_post(
    rig: Rig, request: LegacyHttpRequest, body: bytes | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent_headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"} | (headers or {})
    async with httpx.AsyncClient() as client:
        return await client.post(request.url, content=body if body is not None else request.body, headers=sent_headers)


async def test_request_signed_by_the_azure_sdk_policy_is_accepted(rig: Rig) -> None:
    response = await raw_post(rig, sdk_signed(rig.base, json.dumps(payload("+18335852071"))))
    assert response.status_code == 202, response.text
    assert response.json()["value"][0]["successful"] is True


@pytest.mark.parametrize("tamper", ["key", "body", "path", "date"])
async def test_tampered_requests_are_401_with_an_acs_error(rig: Rig, tamper: str) -> None:
    body = json.dumps(payload("+18335852071"))
    if tamper == "key":
        response = await raw_post(rig, sdk_signed(rig.base, body, base64.b64encode(b"wrong").decode()))
    elif tamper == "body":
        response = await raw_post(rig, sdk_signed(rig.base, body), body=body.replace("8335", "8336").encode())
    elif tamper == "path":
        signed = sdk_signed(rig.base, body, path="/mms?api-version=2021-03-07")
        signed.url = rig.base + PATH
        response = await raw_post(rig, signed)
    else:
        stale = email.utils.formatdate(time.time() - 3600, usegmt=True)
        response = await raw_post(rig, sdk_signed(rig.base, body), headers={"x-ms-date": stale})
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}
    assert rig.simulator.messages == {}


# --- the MMS API ---------------------------------------------------------------------------------


async def test_answers_per_recipient_like_the_acs_sample_with_unique_ids(rig: Rig) -> None:
    result = await rig.acs().send_mms(payload("+18335852071", "+11234567890", "+112345678910abc"))
    items = result["value"]
    assert [(i["to"], i["httpStatusCode"], i["successful"]) for i in items] == [
        ("+18335852071", 202, True),
        ("+11234567890", 202, True),
        ("+112345678910abc", 400, False),
    ]
    assert items[2]["errorMessage"] == "Invalid phone number format."
    assert items[0]["messageId"] != items[1]["messageId"]


async def test_malformed_body_is_400(rig: Rig) -> None:
    with pytest.raises(Exception, match="refused the request"):
        await rig.acs().send_mms({"recipients": []})


def test_the_simulator_knows_exactly_the_swagger_content_types() -> None:
    assert list(MMS_CONTENT_TYPES) == SWAGGER_MMS_CONTENT_TYPES


@pytest.mark.parametrize("content_type", [*SWAGGER_MMS_CONTENT_TYPES, "IMAGE/PNG", "Audio/X-Wav"])
async def test_every_swagger_content_type_is_accepted_in_any_case(rig: Rig, content_type: str) -> None:
    body = payload("+18335852071")
    body["attachments"][0]["contentType"] = content_type
    assert (await rig.acs().send_mms(body))["value"][0]["successful"] is True


@pytest.mark.parametrize("content_type", ["application/pdf", "video/webm", "image/tiff", "image/jpg", ""])
async def test_a_content_type_outside_the_enum_is_400_with_an_acs_error(rig: Rig, content_type: str) -> None:
    body = payload("+18335852071")
    body["attachments"][0]["contentType"] = content_type
    response = await rig.raw_send(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert rig.simulator.messages == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repeatabilityRequestId", "not-a-uuid"),
        ("repeatabilityRequestId", "0f8fad5b-d9cb-469f-a165-70867728950e\n"),
        ("repeatabilityFirstSent", "2026-11-27T09:00:00Z"),
        ("repeatabilityFirstSent", "Fri, 27 Nov 2026 09:00:00 +0000"),
    ],
)
async def test_repeatability_values_outside_the_swagger_formats_are_400(rig: Rig, field: str, value: str) -> None:
    body = payload("+18335852071", request_ids=["0f8fad5b-d9cb-469f-a165-70867728950e"])
    body["recipients"][0][field] = value
    response = await rig.raw_send(body)
    assert response.status_code == 400
    assert rig.simulator.messages == {}


async def test_repeated_repeatability_id_returns_the_first_result_and_sends_nothing(rig: Rig) -> None:
    body = payload("+18335852071", request_ids=[str(uuid.uuid4())])
    first = (await rig.acs().send_mms(body))["value"][0]
    again = (await rig.acs().send_mms(body))["value"][0]
    assert again["messageId"] == first["messageId"]
    assert again["repeatabilityResult"] == "rejected"
    assert len(rig.simulator.messages) == 1
    await until(lambda: len(rig.receiver.events) >= 1)
    await asyncio.sleep(0.2)  # a second report would have arrived by now
    assert len(rig.receiver.events) == 1


# --- delivery ------------------------------------------------------------------------------------


async def test_handshake_comes_first_then_a_notification_per_report(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+18335852071", "+11234567890", tag="camp"))
    await until(lambda: len(rig.receiver.events) == 2)
    assert rig.receiver.kinds[0] == "SubscriptionValidation" and rig.receiver.handshakes == 1
    headers, [event] = rig.receiver.notifications[0]
    assert headers["aeg-event-type"] == "Notification" and headers["aeg-delivery-count"] == "0"
    assert event["eventType"] == "Microsoft.Communication.SMSDeliveryReportReceived"
    data = event["data"]
    assert set(data) == {
        "messageId",
        "from",
        "to",
        "deliveryStatus",
        "deliveryStatusDetails",
        "receivedTimestamp",
        "deliveryAttempts",
        "tag",
    }
    assert data["deliveryStatus"] == "Delivered" and data["tag"] == "camp"


async def test_redelivers_after_500_until_success(rig: Rig) -> None:
    rig.receiver.script = [500, 500]
    await rig.acs().send_mms(payload("+18335852071"))
    await until(lambda: len(rig.receiver.events) == 1)
    headers, _ = rig.receiver.notifications[0]
    assert headers["aeg-delivery-count"] == "2"
    [delivery] = (await rig.get("/simulator/deliveries"))["items"]
    assert delivery["attempts"] == 3 and delivery["outcome"] == "delivered"


async def test_no_redelivery_after_400_and_the_event_is_dead_lettered(rig: Rig) -> None:
    rig.receiver.script = [400]
    await rig.acs().send_mms(payload("+18335852071"))
    await until(lambda: len(rig.simulator.dead_letters) == 1)
    await asyncio.sleep(0.1)
    assert rig.receiver.events == []
    assert rig.simulator.dead_letters[0].last_status == 400


async def test_batches_group_due_events(rig: Rig) -> None:
    rig.simulator.config.batch_size = 10
    await rig.acs().send_mms(payload(*[f"+1833585{n:04d}" for n in range(5)]))
    await until(lambda: len(rig.receiver.events) == 5)
    assert len(rig.receiver.notifications) < 5


# --- steering ------------------------------------------------------------------------------------


async def test_number_ending_4040_gets_a_failed_report(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+18335554040"))
    await until(lambda: len(rig.receiver.events) == 1)
    assert rig.receiver.events[0]["data"]["deliveryStatus"] == "Failed"
    assert rig.receiver.events[0]["data"]["deliveryStatusDetails"] == "Recipient unreachable."


async def test_number_ending_4044_gets_no_report(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+18335554044", "+18335552071"))
    await until(lambda: len(rig.receiver.events) == 1)
    await asyncio.sleep(0.2)
    assert [e["data"]["to"] for e in rig.receiver.events] == ["+18335552071"]


async def test_number_ending_2002_gets_duplicated_reports(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+18335552002"))
    await until(lambda: len(rig.receiver.events) == 3)
    ids = [e["id"] for e in rig.receiver.events]
    assert len(set(ids)) == 2
    assert len({json.dumps(e["data"], sort_keys=True) for e in rig.receiver.events}) == 1


async def test_number_ending_3003_gets_two_finals_newest_first(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+18335553003"))
    await until(lambda: len(rig.receiver.events) == 2)
    first, second = (e["data"] for e in rig.receiver.events)
    assert (first["deliveryStatus"], second["deliveryStatus"]) == ("Delivered", "Failed")
    assert first["receivedTimestamp"] > second["receivedTimestamp"]


async def test_number_ending_8008_is_delayed(rig: Rig) -> None:
    started = time.monotonic()
    await rig.acs().send_mms(payload("+18335558008", "+18335552071"))
    await until(lambda: len(rig.receiver.events) == 2)
    assert rig.receiver.events[-1]["data"]["to"] == "+18335558008"
    assert time.monotonic() - started >= 0.5


async def test_throttle_fault_answers_429_with_retry_after_for_n_requests(rig: Rig) -> None:
    assert (await rig.post("/simulator/faults", {"throttle": 2, "retryAfter": 7})).status_code == 200
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    acs = rig.acs(RetryPolicy(max_attempts=2), sleep=record)
    with pytest.raises(AcsThrottled):
        await acs.send_mms(payload("+18335852071"))
    assert sleeps == [7.0]
    assert (await rig.acs().send_mms(payload("+18335852071")))["value"][0]["successful"] is True


async def test_unavailable_fault_then_success_sends_once(rig: Rig) -> None:
    await rig.post("/simulator/faults", {"unavailable": 1})
    result = await rig.acs().send_mms(payload("+18335852071", request_ids=[str(uuid.uuid4())]))
    assert result["value"][0]["successful"] is True
    assert rig.simulator.stats["unavailable"] == 1 and len(rig.simulator.messages) == 1


async def test_lost_response_is_retried_and_the_message_is_sent_once(rig: Rig) -> None:
    await rig.post("/simulator/faults", {"loseResponse": 1})
    result = await rig.acs().send_mms(payload("+18335852071", request_ids=[str(uuid.uuid4())]))
    assert result["value"][0]["repeatabilityResult"] == "rejected"  # ACS saw it before: not sent again
    assert rig.simulator.stats["lost_responses"] == 1
    assert len(rig.simulator.messages) == 1


async def test_reset_clears_state(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+18335852071"))
    assert (await rig.post("/simulator/reset", {})).status_code == 204
    assert (await rig.get("/simulator/messages"))["items"] == []
    assert (await rig.get("/simulator/stats"))["sent"] == 0
