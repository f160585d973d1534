"""An async client for the ACS MMS API (``POST {endpoint}/mms?api-version=2024-01-14-preview``).

Built on one :class:`httpx.AsyncClient` per worker. Authentication is either the access key
(HMAC-SHA256, byte for byte the scheme of the Azure SDK's ``HMACCredentialsPolicy``) or an
Entra ID token from ``DefaultAzureCredential``. Retries cover 429, 500, 502, 503, 504, timeouts
and connection errors, with exponential backoff and full jitter, honouring ``Retry-After``,
bounded in attempts and in total time; every attempt is signed afresh and carries the same body,
so the per-recipient ``repeatabilityRequestId``/``repeatabilityFirstSent`` let ACS recognise a
retry and never send twice.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..service.ports import (
    AcsAuthFailed,
    AcsBadGateway,
    AcsError,
    AcsRequestRejected,
    AcsThrottled,
    AcsTimeout,
    AcsUnavailable,
)

API_VERSION = "2024-01-14-preview"
ACS_SCOPE = "https://communication.azure.com//.default"
USER_AGENT = f"mms-tracker/{__version__} (+httpx/{httpx.__version__})"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
TOKEN_REFRESH_MARGIN_SECONDS = 300


class Signer(Protocol):
    """Adds authentication headers to a request that is about to be sent."""

    async def sign(self, request: httpx.Request) -> None: ...


class HmacSigner:
    """ACS access-key auth, the scheme of ``azure.communication.*``'s ``HMACCredentialsPolicy``."""

    def __init__(self, access_key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = access_key
        self._clock = clock

    async def sign(self, request: httpx.Request) -> None:
        date = email.utils.formatdate(self._clock(), usegmt=True)
        for name, value in self.headers(request.method, str(request.url), request.content, date).items():
            request.headers[name] = value

    def headers(self, method: str, url: str, body: bytes, date: str) -> dict[str, str]:
        """The signed headers for one request at ``date`` (RFC 1123)."""
        parts = urlsplit(url)
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        string_to_sign = f"{method.upper()}\n{path_and_query}\n{date};{parts.netloc};{content_hash}"
        signature = base64.b64encode(hmac.new(self._key, string_to_sign.encode(), hashlib.sha256).digest()).decode()
        return {
            "x-ms-date": date,
            "x-ms-content-sha256": content_hash,
            "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
        }


class TokenCredential(Protocol):
    async def get_token(self, *scopes: str) -> Any: ...


class EntraSigner:
    """Entra ID auth: a bearer token for the ACS scope, cached until shortly before it expires."""

    def __init__(self, credential: TokenCredential, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = asyncio.Lock()

    async def sign(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {await self._bearer()}"

    async def _bearer(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_on - TOKEN_REFRESH_MARGIN_SECONDS:
                token = await self._credential.get_token(ACS_SCOPE)
                self._token, self._expires_on = token.token, float(token.expires_on)
            return self._token


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    max_total_seconds: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class AcsClient:
    """Sends MMS through ACS; one instance (and one connection pool) per worker."""

    def __init__(
        self,
        endpoint: str,
        signer: Signer,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        attempt_seconds: float | None = None,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._signer = signer
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        timeout = timeout or httpx.Timeout(20.0, connect=5.0)
        # httpx bounds each phase (connect, write, read) on its own; one attempt as a whole is
        # bounded here, so a send's ACS budget is max_total_seconds + attempt_seconds.
        self._attempt_seconds = attempt_seconds or float(timeout.read or 20.0)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    @property
    def budget_seconds(self) -> float:
        """The longest one :meth:`send_mms` can take: the retry budget plus one whole attempt."""
        return self._retry.max_total_seconds + self._attempt_seconds

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST the MMS request; return ACS's JSON body (``{"value": [...]}``) or raise :class:`AcsError`."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        response = await self._send_with_retries(body)
        try:
            result = response.json()
        except ValueError:
            raise AcsBadGateway(
                "ACS answered with a body that is not JSON.", upstream_status=response.status_code, maybe_sent=True
            ) from None
        if not isinstance(result, dict) or not isinstance(result.get("value"), list):
            raise AcsBadGateway(
                "ACS answered without a value list.", upstream_status=response.status_code, maybe_sent=True
            )
        return result

    async def _send_with_retries(self, body: bytes) -> httpx.Response:
        deadline = self._clock() + self._retry.max_total_seconds
        attempt = 0
        maybe_sent = False  # once any attempt may have reached ACS, the outcome stays unknown
        while True:
            try:
                async with asyncio.timeout(self._attempt_seconds):
                    response = await self._send_single_request(body)
            except (httpx.TimeoutException, httpx.TransportError, TimeoutError) as exc:
                failure: AcsError = _transport_failure(exc)
            else:
                if response.status_code < 400:
                    return response
                failure = _status_failure(response)
            maybe_sent = maybe_sent or failure.maybe_sent
            failure.maybe_sent = maybe_sent
            if failure.upstream_status is not None and failure.upstream_status not in RETRYABLE_STATUSES:
                raise failure
            attempt += 1
            delay = failure.retry_after if failure.retry_after is not None else self._retry.backoff(attempt - 1)
            if attempt >= self._retry.max_attempts or self._clock() + delay > deadline:
                raise failure
            await self._sleep(delay)

    async def _send_single_request(self, body: bytes) -> httpx.Response:
        request = self._http.build_request(
            "POST",
            f"{self._endpoint}/mms",
            params={"api-version": API_VERSION},
            content=body,
            headers={"Content-Type": "application/json"},
        )
        await self._signer.sign(request)
        return await self._http.send(request)

    async def aclose(self) -> None:
        await self._http.aclose()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _status_failure(response: httpx.Response) -> AcsError:
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 429:
        return AcsThrottled("ACS is throttling requests; retry later.", upstream_status=status, retry_after=retry_after)
    if status in (401, 403):
        return AcsAuthFailed(
            "ACS refused the credentials; check ACS_CONNECTION_STRING "
            "(or the identity's role when using ACS_ENDPOINT).",
            upstream_status=status,
        )
    # 503 (and 429 above) mean the request was not taken; a 500, 502 or 504 may have come after
    # ACS accepted it, so the outcome is unknown until the call is repeated with the same pairs.
    if status == 503:
        return AcsUnavailable(f"ACS answered {status}.", upstream_status=status, retry_after=retry_after)
    if status == 500:
        return AcsUnavailable(
            f"ACS answered {status}.", upstream_status=status, retry_after=retry_after, maybe_sent=True
        )
    if status == 504:
        return AcsTimeout("ACS timed out.", upstream_status=status, retry_after=retry_after, maybe_sent=True)
    if status >= 500:
        return AcsBadGateway(
            f"ACS answered {status}.", upstream_status=status, retry_after=retry_after, maybe_sent=True
        )
    return AcsRequestRejected(f"ACS refused the request: {_acs_message(response)}", upstream_status=status)


def _transport_failure(exc: Exception) -> AcsError:
    """A failure without an answer; only a connection never made certainly sent nothing."""
    never_connected = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return AcsTimeout("ACS did not answer in time.", maybe_sent=not never_connected)
    return AcsBadGateway("ACS could not be reached.", maybe_sent=not never_connected)


def _acs_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or error.get("code") or response.status_code)[:300]
    except (ValueError, AttributeError):
        return str(response.status_code)
