"""The ACS client through ``httpx.MockTransport``: signing, retries, repeatability, error mapping."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from collections.abc import Callable

import httpx
import pytest
from azure.communication.sms._shared.policy import HMACCredentialsPolicy
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest

from mms_tracker.adapters.acs import USER_AGENT, AcsClient, EntraSigner, HmacSigner, RetryPolicy, retry_after_seconds
from mms_tracker.service.ports import (
    AcsAuthFailed,
    AcsBadGateway,
    AcsError,
    AcsRequestRejected,
    AcsThrottled,
    AcsTimeout,
    AcsUnavailable,
)

KEY_B64 = base64.b64encode(b"test-access-key-0123456789").decode()
ENDPOINT = "https://acs-test.communication.azure.com"
PAYLOAD = {
    "from": "+18004567891",
    "recipients": [
        {
            "to": "+18335852071",
            "repeatabilityRequestId": "r-1",
            "repeatabilityFirstSent": "Fri, 27 Nov 2026 09:00:00 GMT",
        }
    ],
    "attachments": [{"contentType": "image/png", "contentInBase64": "iVBORw0KGgo="}],
    "sendOptions": {"enableDeliveryReport": True, "tag": "t"},
}
OK_BODY = {"value": [{"to": "+18335852071", "messageId": "m-1", "httpStatusCode": 202, "successful": True}]}


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Sleeps:
    """A virtual clock: sleeping advances ``now`` instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 0.0

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay


def client(
    handler: Recorder,
    sleeps: Sleeps | None = None,
    *,
    retry: RetryPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AcsClient:
    return AcsClient(
        ENDPOINT,
        HmacSigner(base64.b64decode(KEY_B64)),
        transport=httpx.MockTransport(handler),
        retry=retry or RetryPolicy(base_delay=0.01),
        sleep=sleeps or Sleeps(),
        clock=clock,
    )


def ok() -> httpx.Response:
    return httpx.Response(202, json=OK_BODY)


# --- signing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["https://acs-test.communication.azure.com", "http://127.0.0.1:7072"])
def test_signature_matches_the_azure_sdk_hmac_policy_byte_for_byte(host: str) -> None:
    url = f"{host}/mms?api-version=2024-01-14-preview"
    body = json.dumps(PAYLOAD, separators=(",", ":"))
    legacy = LegacyHttpRequest("POST", url)
    legacy.set_text_body(body)
    HMACCredentialsPolicy(host, KEY_B64).on_request(PipelineRequest(legacy, PipelineContext(None)))
    ours = HmacSigner(base64.b64decode(KEY_B64)).headers("POST", url, body.encode(), legacy.headers["x-ms-date"])
    for name in ("x-ms-date", "x-ms-content-sha256", "Authorization"):
        assert ours[name] == legacy.headers[name], name


async def test_request_is_signed_and_names_the_app() -> None:
    handler = Recorder(ok())
    await client(handler).send_mms(PAYLOAD)
    [request] = handler.requests
    assert request.url.path == "/mms" and request.url.params["api-version"] == "2024-01-14-preview"
    assert request.headers["Authorization"].startswith("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&")
    assert request.headers["User-Agent"] == USER_AGENT
    assert json.loads(request.content) == PAYLOAD


async def test_entra_token_is_cached_until_shortly_before_expiry() -> None:
    class Token:
        def __init__(self, token: str, expires_on: float) -> None:
            self.token, self.expires_on = token, expires_on

    class Credential:
        def __init__(self) -> None:
            self.calls: list[tuple[str, ...]] = []

        async def get_token(self, *scopes: str) -> Token:
            self.calls.append(scopes)
            return Token(f"tok-{len(self.calls)}", now[0] + 3600)

    now = [1000.0]
    credential = Credential()
    signer = EntraSigner(credential, clock=lambda: now[0])
    first = httpx.Request("POST", ENDPOINT)
    await signer.sign(first)
    now[0] += 3000  # still more than 5 minutes left
    await signer.sign(httpx.Request("POST", ENDPOINT))
    now[0] += 400  # inside the refresh margin
    last = httpx.Request("POST", ENDPOINT)
    await signer.sign(last)
    assert credential.calls == [("https://communication.azure.com//.default",)] * 2
    assert first.headers["Authorization"] == "Bearer tok-1" and last.headers["Authorization"] == "Bearer tok-2"


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_status_is_retried_with_the_same_body_signed_afresh(status: int) -> None:
    handler = Recorder(httpx.Response(status), ok())
    ticks = iter([1000.0, 1001.0])
    acs = AcsClient(
        ENDPOINT,
        HmacSigner(b"k", clock=lambda: next(ticks, 1002.0)),
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(base_delay=0.01),
        sleep=Sleeps(),
    )
    assert await acs.send_mms(PAYLOAD) == OK_BODY
    first, second = handler.requests
    assert first.content == second.content
    assert json.loads(second.content)["recipients"][0]["repeatabilityRequestId"] == "r-1"
    assert first.headers["x-ms-date"] != second.headers["x-ms-date"]
    assert first.headers["Authorization"] != second.headers["Authorization"]


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_connection_errors_and_timeouts_are_retried(failure: Exception) -> None:
    handler = Recorder(failure, ok())
    assert await client(handler).send_mms(PAYLOAD) == OK_BODY
    assert len(handler.requests) == 2


async def test_retry_after_in_seconds_is_honoured() -> None:
    sleeps = Sleeps()
    handler = Recorder(httpx.Response(429, headers={"Retry-After": "3"}), ok())
    await client(handler, sleeps).send_mms(PAYLOAD)
    assert sleeps.delays == [3.0]


async def test_retry_after_as_http_date_is_honoured() -> None:
    sleeps = Sleeps()
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    handler = Recorder(httpx.Response(503, headers={"Retry-After": when}), ok())
    await client(handler, sleeps).send_mms(PAYLOAD)
    assert 3.5 < sleeps.delays[0] <= 5.0


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    assert (
        retry_after_seconds(
            "Fri, 27 Nov 2026 09:00:10 GMT",
            now=email.utils.parsedate_to_datetime("Fri, 27 Nov 2026 09:00:00 GMT").timestamp(),
        )
        == 10.0
    )
    assert retry_after_seconds("soon") is None


@pytest.mark.parametrize(("status", "error"), [(400, AcsRequestRejected), (401, AcsAuthFailed), (403, AcsAuthFailed)])
async def test_other_client_errors_are_not_retried(status: int, error: type[Exception]) -> None:
    handler = Recorder(httpx.Response(status, json={"error": {"code": "X", "message": "nope"}}), ok())
    with pytest.raises(error):
        await client(handler).send_mms(PAYLOAD)
    assert len(handler.requests) == 1


async def test_attempts_are_bounded() -> None:
    handler = Recorder(*[httpx.Response(503) for _ in range(10)])
    with pytest.raises(AcsUnavailable):
        await client(handler, retry=RetryPolicy(max_attempts=3, base_delay=0.01)).send_mms(PAYLOAD)
    assert len(handler.requests) == 3


async def test_total_time_is_bounded() -> None:
    handler = Recorder(*[httpx.Response(429, headers={"Retry-After": "20"}) for _ in range(5)])
    sleeps = Sleeps()
    with pytest.raises(AcsThrottled) as caught:
        await client(
            handler, sleeps, retry=RetryPolicy(max_attempts=10, max_total_seconds=30), clock=lambda: sleeps.now
        ).send_mms(PAYLOAD)
    assert sleeps.delays == [20.0]  # a second 20 s wait would pass the 30 s bound
    assert caught.value.retry_after == 20.0


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        (httpx.Response(429), AcsThrottled, 429),
        (httpx.Response(503), AcsUnavailable, 503),
        (httpx.Response(500), AcsUnavailable, 503),
        (httpx.Response(502), AcsBadGateway, 502),
        (httpx.Response(504), AcsTimeout, 504),
        (httpx.ReadTimeout("slow"), AcsTimeout, 504),
        (httpx.ConnectError("refused"), AcsBadGateway, 502),
        (httpx.Response(401), AcsAuthFailed, 502),
    ],
)
async def test_upstream_failures_map_to_the_contract_statuses(
    answer: httpx.Response | Exception, error: type[Exception], status: int
) -> None:
    handler = Recorder(*[answer] * 4)
    with pytest.raises(error) as caught:
        await client(handler).send_mms(PAYLOAD)
    assert caught.value.status == status  # type: ignore[attr-defined]


async def test_auth_failure_names_the_setting_never_the_key() -> None:
    with pytest.raises(AcsAuthFailed) as caught:
        await client(Recorder(httpx.Response(401))).send_mms(PAYLOAD)
    assert "ACS_CONNECTION_STRING" in caught.value.detail
    assert KEY_B64 not in caught.value.detail


# --- whether ACS may have sent anything (the send's intent is kept when it may) -----------------


@pytest.mark.parametrize(
    ("answers", "maybe_sent"),
    [
        ([httpx.Response(429)] * 4, False),  # throttled: nothing taken
        ([httpx.Response(503)] * 4, False),
        ([httpx.ConnectError("refused")] * 4, False),  # never connected
        ([httpx.ConnectTimeout("slow to connect")] * 4, False),
        ([httpx.Response(400, json={"error": {"code": "BadRequest"}})], False),
        ([httpx.Response(401)], False),
        ([httpx.Response(500)] * 4, True),  # a 500, 502 or 504 may follow an accepted request
        ([httpx.Response(502)] * 4, True),
        ([httpx.Response(504)] * 4, True),
        ([httpx.ReadTimeout("no answer")] * 4, True),  # the request was written; its answer lost
        ([httpx.RemoteProtocolError("dropped")] * 4, True),
        ([httpx.ReadTimeout("lost"), httpx.Response(503), httpx.Response(503), httpx.Response(503)], True),
        ([httpx.Response(503), httpx.Response(503), httpx.Response(503), httpx.ConnectError("refused")], False),
    ],
)
async def test_a_failure_says_whether_acs_may_have_sent(
    answers: list[httpx.Response | Exception], maybe_sent: bool
) -> None:
    with pytest.raises(AcsError) as caught:
        await client(Recorder(*answers)).send_mms(PAYLOAD)
    assert caught.value.maybe_sent is maybe_sent


async def test_a_2xx_that_is_not_acs_json_may_have_sent() -> None:
    with pytest.raises(AcsBadGateway) as caught:
        await client(Recorder(httpx.Response(202, text="<html>"))).send_mms(PAYLOAD)
    assert caught.value.maybe_sent is True


async def test_one_attempt_is_bounded_as_a_whole_and_counts_as_maybe_sent() -> None:
    stalled = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await stalled.wait()  # never answers
        return ok()

    acs = AcsClient(
        ENDPOINT,
        HmacSigner(base64.b64decode(KEY_B64)),
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=1),
        attempt_seconds=0.05,
    )
    assert acs.budget_seconds == RetryPolicy().max_total_seconds + 0.05
    with pytest.raises(AcsTimeout) as caught:
        await acs.send_mms(PAYLOAD)
    assert caught.value.maybe_sent is True
