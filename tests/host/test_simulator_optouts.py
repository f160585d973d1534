"""The simulator's inbound replies (SMSReceived), its STOP-replying number and the Opt-Out Management API."""

from __future__ import annotations

import base64

import httpx

from localdev.simulator import ACCESS_KEY_B64
from mms_tracker.adapters.acs import HmacSigner
from mms_tracker.domain.inbound import parse_inbound_envelope
from tests.host.test_simulator import Rig, payload, rig, until

__all__ = ["rig"]  # the fixture, shared with test_simulator

# Azure/azure-rest-api-specs, specification/communication/data-plane/Sms/preview/2024-12-10-preview/
# examples/OptOutAdd.json, OptOutRemove.json, OptOutCheck.json: POST /sms/optouts:{add,remove,check},
# body {"from", "recipients": [{"to"}]}, 200 {"value": [{"to", "httpStatusCode", "isOptedOut" (check)}]}.
OPTOUT = "/sms/optouts:{}?api-version=2024-12-10-preview"


async def signed(rig: Rig, action: str, body: object, path: str | None = None) -> httpx.Response:
    request = httpx.Request("POST", rig.base + (path or OPTOUT.format(action)), json=body)
    await HmacSigner(base64.b64decode(ACCESS_KEY_B64)).sign(request)
    async with httpx.AsyncClient() as client:
        return await client.send(request)


async def test_inbound_publishes_an_sms_received_event_the_app_parses(rig: Rig) -> None:
    answer = await rig.post("/simulator/inbound", {"from": "+14255550123", "to": "+18004567891", "message": " stop"})
    assert answer.status_code == 202
    await until(lambda: len(rig.receiver.events) == 1)
    [event] = rig.receiver.events
    assert event["eventType"] == "Microsoft.Communication.SMSReceived"
    assert set(event["data"]) == {"messageId", "from", "to", "message", "receivedTimestamp"}
    reply = parse_inbound_envelope(event)
    made = reply.change()
    assert (reply.sender, reply.recipient) == ("+18004567891", "+14255550123")
    assert made is not None and made.opted_out and made.keyword == "STOP"


async def test_inbound_without_the_three_strings_is_400(rig: Rig) -> None:
    assert (await rig.post("/simulator/inbound", {"from": "+14255550123", "to": "+18004567891"})).status_code == 400


async def test_number_ending_7867_replies_stop_to_the_sender(rig: Rig) -> None:
    await rig.acs().send_mms(payload("+14255557867"))
    await until(lambda: len(rig.receiver.events) == 2)
    types = sorted(e["eventType"] for e in rig.receiver.events)
    assert types == ["Microsoft.Communication.SMSDeliveryReportReceived", "Microsoft.Communication.SMSReceived"]
    [stop] = [e for e in rig.receiver.events if e["eventType"].endswith("SMSReceived")]
    assert stop["data"]["from"] == "+14255557867" and stop["data"]["to"] == "+18004567891"
    assert stop["data"]["message"] == "STOP"


async def test_optout_add_check_remove_as_the_published_examples(rig: Rig) -> None:
    body = {"from": "+18001234567", "recipients": [{"to": "+15555555551"}, {"to": "+15555555552"}, {"to": "bad"}]}
    added = await signed(rig, "add", {"from": "+18001234567", "recipients": [{"to": "+15555555551"}]})
    assert added.status_code == 200 and added.json() == {"value": [{"to": "+15555555551", "httpStatusCode": 200}]}
    checked = await signed(rig, "check", body)
    assert checked.json()["value"] == [
        {"to": "+15555555551", "isOptedOut": True, "httpStatusCode": 200},
        {"to": "+15555555552", "isOptedOut": False, "httpStatusCode": 200},
        {"to": "bad", "httpStatusCode": 400},
    ]
    other_sender = await signed(rig, "check", {"from": "+18001234568", "recipients": [{"to": "+15555555551"}]})
    assert other_sender.json()["value"][0]["isOptedOut"] is False
    await signed(rig, "remove", {"from": "+18001234567", "recipients": [{"to": "+15555555551"}]})
    assert (await signed(rig, "check", body)).json()["value"][0]["isOptedOut"] is False


async def test_optout_api_checks_signature_and_version(rig: Rig) -> None:
    body = {"from": "+18001234567", "recipients": [{"to": "+15555555551"}]}
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(rig.base + OPTOUT.format("add"), json=body)
    assert unsigned.status_code == 401
    old = await signed(rig, "add", body, path="/sms/optouts:add?api-version=2024-01-14-preview")
    assert old.status_code == 400
    assert (await signed(rig, "add", {"from": "+18001234567"})).status_code == 400
    assert rig.simulator.optouts.pairs == set()
