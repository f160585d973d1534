"""``POST /api/messages`` with a real Azurite and ACS behind ``httpx.MockTransport``."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from mms_tracker.api.blueprints.messages import send_message
from mms_tracker.domain import Status
from mms_tracker.runtime import RUNTIME
from mms_tracker.settings import Settings
from tests.support import Azurite, app_environment, content_type, fixture, http_request, nonzero


class FakeAcs:
    """Answers like ACS: an id per E.164 recipient, the first result again for a repeated repeatabilityRequestId."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.by_request_id: dict[str, dict[str, Any]] = {}
        self.script: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if self.script:
            return self.script.pop(0)
        value = []
        for r in body["recipients"]:
            if r["repeatabilityRequestId"] in self.by_request_id:
                value.append(self.by_request_id[r["repeatabilityRequestId"]] | {"repeatabilityResult": "accepted"})
                continue
            item = {"to": r["to"], "messageId": str(uuid.uuid4()), "httpStatusCode": 202, "successful": True}
            self.by_request_id[r["repeatabilityRequestId"]] = item
            value.append(item)
        return httpx.Response(202, json={"value": value})

    @property
    def recipients_sent(self) -> list[str]:
        return [r["to"] for body in self.requests for r in body["recipients"]]


@pytest.fixture
async def acs(azurite: Azurite) -> AsyncIterator[FakeAcs]:
    fake = FakeAcs()
    settings = Settings.from_environment(app_environment(azurite.connection_string))
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(fake))
    yield fake
    await RUNTIME.aclose()


def post(body: Any) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_request("POST", "http://localhost/api/messages", body=raw)


def seed() -> dict[str, Any]:
    return copy.deepcopy(fixture("seed_send_request.json"))  # type: ignore[no-any-return]


async def test_seed_request_answers_two_accepted_and_one_invalid_item(acs: FakeAcs) -> None:
    response = await send_message(post(seed()))
    assert response.status_code == 202
    items = json.loads(response.body)["value"]
    assert [(i["to"], i["httpStatusCode"], i["successful"]) for i in items] == [
        ("+18335852071", 202, True),
        ("+11234567890", 202, True),
        ("+112345678910abc", 400, False),
    ]
    assert items[2]["errorMessage"] == "Invalid phone number format." and "messageId" not in items[2]
    assert acs.recipients_sent == ["+18335852071", "+11234567890"]
    sent = acs.requests[0]
    assert sent["sendOptions"] == {"enableDeliveryReport": True, "tag": "CustomerId"}
    assert all(r["repeatabilityRequestId"] and r["repeatabilityFirstSent"] for r in sent["recipients"])
    store = RUNTIME.store()
    for item in items[:2]:
        record = await store.get(item["messageId"])
        assert record is not None
        assert (record.status, record.to, record.from_, record.tag) == (
            Status.ACCEPTED,
            item["to"],
            "+18004567891",
            "CustomerId",
        )
    assert nonzero(await store.tag_counts("CustomerId")) == {"Accepted": 2, "Rejected": 1}


async def test_repeated_request_with_client_ids_is_answered_without_acs_even_after_restart(
    acs: FakeAcs, azurite: Azurite
) -> None:
    body = seed()
    body["recipients"] = [
        {
            "to": "+18335852071",
            "repeatabilityRequestId": str(uuid.uuid4()),
            "repeatabilityFirstSent": "Fri, 27 Nov 2026 09:00:00 GMT",
        },
        {
            "to": "+1bad",
            "repeatabilityRequestId": str(uuid.uuid4()),
            "repeatabilityFirstSent": "Fri, 27 Nov 2026 09:00:00 GMT",
        },
    ]
    first = json.loads((await send_message(post(body))).body)
    settings = RUNTIME.settings
    await RUNTIME.aclose()
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(acs))  # a new worker: fresh clients, same tables
    again = json.loads((await send_message(post(body))).body)
    assert again == first
    assert acs.recipients_sent == ["+18335852071"]
    assert acs.requests[0]["recipients"][0]["repeatabilityRequestId"] == body["recipients"][0]["repeatabilityRequestId"]
    assert nonzero(await RUNTIME.store().tag_counts("CustomerId")) == {"Accepted": 1, "Rejected": 1}


async def test_bad_input_is_a_problem_naming_the_field_and_sends_nothing(acs: FakeAcs) -> None:
    response = await send_message(post(seed() | {"from": "+19999999999"}))
    assert response.status_code == 400
    assert content_type(response) == "application/problem+json"
    assert json.loads(response.body)["errors"] == [
        {"field": "from", "message": "must be one of the numbers in MMS_SENDERS"}
    ]
    assert acs.requests == []


async def test_oversized_body_is_413(acs: FakeAcs) -> None:
    response = await send_message(post(b"x" * (3 * 1024 * 1024)))
    assert response.status_code == 413
    assert acs.requests == []


async def test_acs_throttling_after_retries_is_429_with_retry_after(acs: FakeAcs) -> None:
    acs.script = [httpx.Response(429, headers={"Retry-After": "1"})] * 4
    response = await send_message(post(seed()))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert content_type(response) == "application/problem+json"


async def test_acs_retry_after_is_passed_on_to_the_client(acs: FakeAcs) -> None:
    # A wait past ACS_RETRY_MAX_SECONDS (30 by default) is not waited out: the client hears ACS's own value.
    acs.script = [httpx.Response(429, headers={"Retry-After": "47"})]
    response = await send_message(post(seed()))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "47"
    assert len(acs.requests) == 1


async def test_acs_rejecting_a_recipient_is_recorded_as_rejected(acs: FakeAcs) -> None:
    acs.script = [
        httpx.Response(
            202,
            json={
                "value": [
                    {"to": "+18335852071", "httpStatusCode": 400, "successful": False, "errorMessage": "Blocked."},
                    {"to": "+11234567890", "messageId": "m-ok", "httpStatusCode": 202, "successful": True},
                ]
            },
        )
    ]
    body = seed()
    body["sendOptions"]["tag"] = "blocked-campaign"
    response = await send_message(post(body))
    assert response.status_code == 202
    assert nonzero(await RUNTIME.store().tag_counts("blocked-campaign")) == {"Accepted": 1, "Rejected": 2}


async def test_storage_unreachable_before_the_call_is_a_503_and_nothing_is_sent(azurite: Azurite) -> None:
    """No intent, no send (issue 19): the after-ACS case is tests/integration/test_send_intents.py."""
    fake = FakeAcs()
    down = Azurite()
    settings = Settings.from_environment(app_environment(down.connection_string, TRACKING_STORAGE_TIMEOUT_SECONDS="1"))
    RUNTIME.configure(settings, acs_transport=httpx.MockTransport(fake))
    try:
        body = seed()
        body["recipients"] = [{"to": "+18335852071"}]
        response = await send_message(post(body))
        assert response.status_code == 503
        assert fake.requests == []
    finally:
        await RUNTIME.aclose()
