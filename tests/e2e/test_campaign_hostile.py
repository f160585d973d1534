"""The campaign routes attacked by a careless or hostile client, over HTTP, against the whole stack
(the local host with its queue trigger on Azurite, and the ACS simulator).

The rule every case holds: never a 5xx; an accepted campaign is readable afterwards (``GET`` by
id answers it with the tag it was given, and the listing holds it once); a refused one is a 4xx
``application/problem+json`` and changes nothing (no campaign listed, nothing sent).

Hypothesis draws the hostile cases first and the test replays them against one stack (the
pattern of ``test_fuzz.py``), bounded by ``FUZZ_EXAMPLES`` so ``make test`` stays quick.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from tests.e2e.test_campaigns import PNG, Stack, stack, storage
from tests.e2e.test_fuzz import SPECIALS, _set, draw, hostile_json, hostile_text
from tests.support import poll_async

pytestmark = pytest.mark.e2e

__all__ = ["stack", "storage"]  # the fixtures, imported for pytest to find

EXAMPLES = max(10, int(os.environ.get("FUZZ_EXAMPLES", "60")) // 3)
FIELDS = {
    "body",
    "from",
    "message",
    "recipients",
    "attachments",
    "sendOptions",
    "sendOptions.tag",
    "sendOptions.enableDeliveryReport",
    "Idempotency-Key",
}


def body(tag: str | None = "hostile", recipients: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "from": "+18004567891",
        "message": "hello",
        "attachments": [{"contentType": "image/png", "contentInBase64": PNG}],
        "recipients": [{"to": to} for to in (recipients or ["+18335550001"])],
    }
    if tag is not None:
        document["sendOptions"] = {"tag": tag}
    return document | fields


async def post(stack: Stack, payload: bytes | dict[str, Any], key: str | None = None) -> tuple[int, Any, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"} | ({"Idempotency-Key": key} if key is not None else {})
    response = await stack.app.post("/api/campaigns", data=io.BytesIO(data), headers=headers)
    text = await response.text()
    assert response.status < 500, (payload if isinstance(payload, dict) else payload[:300], response.status, text)
    if response.status >= 400:
        assert response.headers["Content-Type"].startswith("application/problem+json"), text
    return response.status, json.loads(text) if text else None, response.headers


async def listed(stack: Stack) -> list[str]:
    """Every campaign id the listing holds, page after page."""
    ids: list[str] = []
    params: dict[str, str] = {"pageSize": "100"}
    while True:
        response = await stack.app.get("/api/campaigns", params=params)
        assert response.status == 200, await response.text()
        page = await response.json()
        ids += [c["campaignId"] for c in page["items"]]
        if not page["continuationToken"]:
            return ids
        params["continuationToken"] = page["continuationToken"]


async def finished(stack: Stack, campaign_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        campaign = await stack.campaign(campaign_id)
        return campaign if campaign["status"] not in ("Queued", "Sending") else None

    return await poll_async(done, deadline_seconds=60, interval=0.2)


async def assert_accepted_and_readable(stack: Stack, created: dict[str, Any], tag: str | None, total: int) -> None:
    campaign = await stack.campaign(created["campaignId"])
    assert campaign["tag"] == (tag or created["campaignId"]), (campaign["tag"], tag)
    assert campaign["total"] == total and created["total"] == total
    assert campaign["delivery"]["tag"] == campaign["tag"]
    assert (await listed(stack)).count(created["campaignId"]) == 1


def refused_fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"].split("[")[0] for e in problem.get("errors") or []}


# --- recipients the chunk queue must carry ----------------------------------------------------------


async def test_recipients_of_astral_characters_are_queued_and_counted_rejected(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    # 100 invalid numbers of 100 emoji each: one chunk, escaped in JSON 12 characters per emoji.
    recipients = ["\U0001f600" * 100 for _ in range(99)] + ['\x01"\\' * 40]
    status, created, _ = await post(stack, body("astral", recipients))
    assert status == 202, created
    await assert_accepted_and_readable(stack, created, "astral", 100)
    campaign = await finished(stack, created["campaignId"])
    assert (campaign["status"], campaign["sent"], campaign["rejected"]) == ("Completed", 100, 100)
    assert stack.simulator.messages == {}
    listing = await stack.app.get("/api/messages", params={"tag": "astral", "pageSize": "1000"})
    records = (await listing.json())["items"]
    assert sorted(r["to"][:63] for r in records) == sorted(to[:63] for to in recipients)  # kept, cut to 64
    assert {r["status"] for r in records} == {"Rejected"}


async def test_a_hundred_thousand_recipients_are_taken_and_one_more_is_refused(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    before = await listed(stack)
    too_many = body("too-many", ["x"] * 100_001)
    status, problem, _ = await post(stack, too_many)
    assert status == 400 and problem["errors"] == [
        {"field": "recipients", "message": "must list at most 100000 recipients"}
    ]
    assert await listed(stack) == before
    await stack.faults(throttle=1_000_000, retryAfter=3600)  # keep the worker from sending 100,000
    status, created, _ = await post(stack, body("many", ["x"] * 99_999 + ["+18335550002"]))
    assert status == 202, created
    await assert_accepted_and_readable(stack, created, "many", 100_000)
    assert (await stack.app.delete(f"/api/campaigns/{created['campaignId']}")).status == 202


# --- the Idempotency-Key -------------------------------------------------------------------------------


async def test_one_idempotency_key_sent_concurrently_creates_one_campaign_listed_once(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    answers = await asyncio.gather(*(post(stack, body("race"), key="race-1") for _ in range(8)))
    assert {status for status, _, _ in answers} == {202}
    assert len({created["campaignId"] for _, created, _ in answers}) == 1
    created = answers[0][1]
    await assert_accepted_and_readable(stack, created, "race", 1)
    campaign = await finished(stack, created["campaignId"])
    assert (campaign["sent"], campaign["accepted"]) == (1, 1)
    assert [m["to"] for m in stack.simulator.messages.values()] == ["+18335550001"]


async def test_one_idempotency_key_with_different_bodies_concurrently_sends_the_winner_as_it_was_given(
    stack: Stack,
) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    images = [base64.b64encode(bytes([n]) * (64 + n)).decode() for n in range(8)]
    bodies = [
        body(
            "race-bodies",
            message=f"body {n}",
            attachments=[{"contentType": "image/png", "contentInBase64": image}],
        )
        for n, image in enumerate(images)
    ]
    answers = await asyncio.gather(*(post(stack, b, key="race-2") for b in bodies))
    winners = [n for n, (status, _, _) in enumerate(answers) if status == 202]
    assert len(winners) == 1 and all(answers[n][0] == 409 for n in range(8) if n not in winners), answers
    [winner] = winners
    sent = await poll_async(lambda: _first_message(stack), deadline_seconds=60, interval=0.2)
    assert sent["message"] == f"body {winner}"
    assert sent["attachments"] == [{"contentType": "image/png", "sha256": _sha(images[winner])}]


async def _first_message(stack: Stack) -> dict[str, Any] | None:
    return next(iter(stack.simulator.messages.values()), None)


def _sha(content_in_base64: str) -> str:
    return hashlib.sha256(content_in_base64.encode()).hexdigest()


def idempotency_keys() -> st.SearchStrategy[str]:
    """What a client can put in a header (latin-1 without control characters: aiohttp's client refuses
    those as header injection; no space around it: HTTP drops it, so `` k`` and ``k`` are one key), of
    every length up to the server's header limit."""
    return (
        hostile_text()
        .map(lambda t: "".join(c for c in t if c == "\t" or (" " <= c <= "\xff" and c != "\x7f")).strip(" \t"))
        .filter(lambda t: len(t) <= 8000)
    )


async def test_hostile_idempotency_keys_name_one_campaign_or_are_refused(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    for key in dict.fromkeys(draw(idempotency_keys(), EXAMPLES)):
        before = await listed(stack)
        status, answer, _ = await post(stack, body(f"key-{len(before)}"), key=key)
        if status == 202:
            status_again, again, _ = await post(stack, body(f"key-{len(before)}"), key=key)
            assert (status_again, again["campaignId"]) == (202, answer["campaignId"]), key
            await assert_accepted_and_readable(stack, answer, f"key-{len(before)}", 1)
        else:
            assert status == 400, (key, answer)
            assert await listed(stack) == before


async def test_a_bad_idempotency_key_is_refused_naming_the_header(stack: Stack) -> None:
    for key in ("", "k" * 201):
        status, problem, _ = await post(stack, body("bad-key"), key=key)
        assert status == 400 and refused_fields(problem) == {"Idempotency-Key"}, (key, problem)


async def test_an_idempotency_key_of_bytes_that_are_not_utf8_names_one_campaign(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    payload = json.dumps(body("raw-key")).encode()
    answers = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection(stack.app.host, stack.app.port)
        writer.write(
            b"POST /api/campaigns HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
            b"Idempotency-Key: \xff\xfe\xc3(\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        raw = await reader.read()
        writer.close()
        head, _, text = raw.partition(b"\r\n\r\n")
        assert int(head.split()[1]) < 500, raw[:500]
        answers.append((int(head.split()[1]), text))
    if answers[0][0] == 202:
        first, again = (json.loads(text) for _, text in answers)
        assert again["campaignId"] == first["campaignId"]
        await assert_accepted_and_readable(stack, first, "raw-key", 1)


# --- every field, every type ---------------------------------------------------------------------------

CAMPAIGN_PATHS: list[tuple[str | int, ...]] = [
    ("from",),
    ("message",),
    ("recipients",),
    ("recipients", 0),
    ("recipients", 0, "to"),
    ("attachments",),
    ("attachments", 0),
    ("attachments", 0, "contentType"),
    ("attachments", 0, "contentInBase64"),
    ("sendOptions",),
    ("sendOptions", "tag"),
    ("sendOptions", "enableDeliveryReport"),
]


def _duplicate_keys(tag: str) -> bytes:
    """A body naming ``sendOptions`` twice (the last one wins, as in Python's and .NET's readers)."""
    rest = json.dumps(body(None, ["+18335550003"]))[1:]
    return ('{"sendOptions": {"tag": "first"}, "sendOptions": {"tag": ' + json.dumps(tag) + "}, " + rest).encode()


def campaign_cases() -> st.SearchStrategy[bytes]:
    mutated = st.tuples(st.sampled_from(CAMPAIGN_PATHS), hostile_json() | hostile_text()).map(
        lambda c: json.dumps(_set(body("fuzz"), c[0], c[1])).encode()
    )
    nested = st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth)
    duplicated = st.sampled_from(SPECIALS).map(_duplicate_keys)
    return mutated | nested | duplicated | st.binary(max_size=64)


async def test_hostile_campaign_bodies_are_refused_naming_a_field_or_accepted_and_readable(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    for raw in draw(campaign_cases(), EXAMPLES):
        before = await listed(stack)
        status, answer, _ = await post(stack, raw)
        if status == 202:
            sent = json.loads(raw)
            tag = (sent.get("sendOptions") or {}).get("tag")
            await assert_accepted_and_readable(stack, answer, tag, len(sent["recipients"]))
        else:
            assert status in (400, 413), (raw[:300], answer)
            assert status == 413 or FIELDS >= refused_fields(answer) != set(), (raw[:300], answer)
            assert await listed(stack) == before, raw[:300]


# --- campaign ids in the path, listings, cancel ----------------------------------------------------------


def campaign_id_paths() -> st.SearchStrategy[str]:
    return (
        hostile_text()
        .filter(bool)
        .map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe=""))
        .filter(lambda t: len(t) <= 6000)
    )


async def test_hostile_campaign_ids_are_404_on_get_and_delete(stack: Stack) -> None:
    known = str(uuid.uuid4())
    odd = [
        "%2e%2e",
        "..%2F..%2Fapi%2Fhealth",
        quote("{" + known + "}"),
        "urn:uuid:" + known,
        known.upper(),
        known.replace("-", ""),
        "\u0660" * 32,  # ARABIC-INDIC DIGIT ZERO, which int() reads as a hex digit
        quote("0_00000000000000000000000000000"),
    ]
    for path in odd + draw(campaign_id_paths(), EXAMPLES):
        for method in ("GET", "DELETE"):
            response = await stack.app.request(method, f"/api/campaigns/{path}")
            text = await response.text()
            assert response.status in (404, 405), (method, path, response.status, text)
            if response.status == 404 and text:
                assert response.headers["Content-Type"].startswith("application/problem+json"), (path, text)


async def test_hostile_listing_queries_are_refused_naming_the_parameter(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    for tag in ("page-1", "page-2"):
        assert (await post(stack, body(tag)))[0] == 202
    tokens = [
        base64.urlsafe_b64encode(b"999999999999999|" + b"0" * 36).decode(),
        base64.urlsafe_b64encode("\U0001f600".encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "=" * 5,
        "%00",
    ]
    queries = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "pageSize": st.sampled_from(["0", "1", "100", "101", "-1", "1e2", "٣", " 5", "5 ", "0x10"])
                | hostile_text(),
                "continuationToken": st.sampled_from(tokens) | hostile_text(),
            },
        )
        .map(lambda q: {k: v.encode("utf-8", "replace").decode() for k, v in q.items()})
        .filter(lambda q: sum(len(quote(v)) for v in q.values()) < 6000)  # the request line stays under 8,190 bytes
    )
    for params in queries:
        response = await stack.app.get("/api/campaigns", params=params)
        text = await response.text()
        assert response.status in (200, 400), (params, response.status, text)
        if response.status == 400:
            assert response.headers["Content-Type"].startswith("application/problem+json"), text
            assert refused_fields(json.loads(text)) <= {"pageSize", "continuationToken"}, (params, text)


async def test_cancel_twice_and_during_sending_leaves_the_campaign_cancelled_and_counted(stack: Stack) -> None:
    stack.simulator.config.report_delay_seconds = 3600
    recipients = [f"+18335{i:06d}" for i in range(5000)]
    status, created, _ = await post(stack, body("cancel-mid", recipients))
    assert status == 202

    async def sending() -> bool:
        return bool(stack.simulator.messages)

    await poll_async(sending, deadline_seconds=60, interval=0.05)
    first, second = await asyncio.gather(
        stack.app.delete(f"/api/campaigns/{created['campaignId']}"),
        stack.app.delete(f"/api/campaigns/{created['campaignId']}"),
    )
    assert (first.status, second.status) == (202, 202)
    assert (await first.json())["status"] == (await second.json())["status"] == "Cancelled"

    async def drained() -> dict[str, Any] | None:  # the chunks not sent are counted, then it completes
        campaign = await stack.campaign(created["campaignId"])
        return campaign if campaign["completedAt"] else None

    campaign = await poll_async(drained, deadline_seconds=60, interval=0.2)
    assert campaign["status"] == "Cancelled"
    sent_to = [m["to"] for m in stack.simulator.messages.values() if m["tag"] == "cancel-mid"]
    assert len(sent_to) == len(set(sent_to)) == campaign["accepted"] < 5000
    again = await stack.app.delete(f"/api/campaigns/{created['campaignId']}")
    assert again.status == 202 and (await again.json())["status"] == "Cancelled"
