"""The ports: what the use cases need from the outside world, as Protocols, and the failures
each may raise. Adapters implement them (``adapters.tables.TableStore``, ``adapters.acs.AcsClient``);
tests bring hand-written fakes (``tests/fakes.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain import Change, Status, TrackingRecord


class StorageUnavailable(Exception):
    """Table storage did not answer in time, or answered with an error that may pass on retry."""


class StorageConflict(StorageUnavailable):
    """Optimistic concurrency kept failing; the caller should let the event be redelivered."""


class StorageRejected(Exception):
    """Table storage refused a request for good (a 4xx other than 404, 408, 409, 412, 429): never retried."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class InvalidContinuationToken(ValueError):
    """A continuation token that this store did not issue for this query."""


@dataclass(frozen=True)
class Page:
    items: list[TrackingRecord]
    continuation_token: str | None


class TrackingStore(Protocol):
    """Where tracking records live; ``adapters.tables.TableStore`` is the adapter."""

    async def get(self, message_id: str) -> TrackingRecord | None: ...

    async def apply(
        self,
        message_id: str,
        decide: Callable[[TrackingRecord | None], Change | None],
        *,
        tag: str | None = None,
        expect_new: bool = False,
    ) -> Change | None:
        """Read the record, ``decide`` a change, write it under optimistic concurrency; retry on conflict."""
        ...

    async def add_due(self, message_id: str, due_at: dt.datetime) -> None: ...

    async def due(self, hour: dt.datetime) -> list[tuple[str, dt.datetime]]: ...

    async def remove_due(self, message_id: str, due_at: dt.datetime) -> None: ...

    async def due_cursor(self) -> dt.datetime | None: ...

    async def set_due_cursor(self, hour: dt.datetime) -> None: ...

    async def record_poison(self, envelope: Mapping[str, Any], reason: str, now: dt.datetime) -> None: ...

    async def add_retirement(self, message_id: str, at: dt.datetime) -> None:
        """Look at this message again at ``at`` for deletion (retention)."""
        ...

    async def retirements(self, day: dt.datetime, limit: int) -> list[tuple[str, dt.datetime]]:
        """At most ``limit`` of the messages to look at on ``day``."""
        ...

    async def remove_retirement(self, message_id: str, at: dt.datetime) -> None: ...

    async def retirement_cursor(self) -> dt.datetime | None: ...

    async def set_retirement_cursor(self, day: dt.datetime) -> None: ...

    async def retire(self, message_id: str, now: dt.datetime, keep: dt.timedelta) -> dt.datetime | None:
        """Delete the record (and count it out) if it was completed ``keep`` ago or more; else say when
        to look again. None when it is gone (deleted now, or never there)."""
        ...

    async def list_tag(self, tag: str, status: Status | None, page_size: int, continuation_token: str | None) -> Page:
        """One page of a tag's records (without history), optionally of one status."""
        ...

    async def tag_counts(self, tag: str) -> Mapping[str, int]:
        """Messages per status in a tag."""
        ...


@dataclass(frozen=True)
class TagActivity:
    tag: str
    last_activity_at: dt.datetime


@dataclass(frozen=True)
class PoisonEntry:
    """An event that could never be processed, as inspection shows it."""

    event_id: str
    event_type: str
    reason: str
    recorded_at: str
    payload: str  # the first characters of the payload (``POISON_PREVIEW_CHARS`` in the adapter)


class Dashboards(Protocol):
    """The reads behind the dashboard and the exports (``adapters.tables.TableStore``)."""

    async def tag_counters(self, tag: str) -> Mapping[str, int]:
        """Every counter of the tag: statuses, latency buckets, failure reasons (``domain.statistics``)."""
        ...

    async def tag_activity(
        self, page_size: int, continuation_token: str | None
    ) -> tuple[list[TagActivity], str | None]:
        """One page of tags, newest activity first."""
        ...

    async def list_tag(self, tag: str, status: Status | None, page_size: int, continuation_token: str | None) -> Page:
        """One page of a tag's records (without history), optionally of one status."""
        ...

    async def poison_page(
        self, since: dt.date, page_size: int, continuation_token: str | None
    ) -> tuple[list[PoisonEntry], str | None]:
        """One page of the poison entries recorded on ``since`` or later."""
        ...


class AcsError(Exception):
    """ACS could not be reached or refused the request; ``status`` is what our API answers.

    ``maybe_sent`` is true when some attempt may have reached ACS and been accepted without its
    answer reaching us (a timeout after the request was written, a 500, 502 or 504, a dropped
    connection): the send's intent is then kept, and the reconciler repeats the call with the
    same repeatability pairs to learn the outcome. False when ACS certainly sent nothing.
    """

    status = 502

    def __init__(
        self,
        detail: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        # When ``maybe_sent``: each recipient's repeatability pair as sent ({to, repeatabilityRequestId,
        # repeatabilityFirstSent}), so the client can repeat the request with exactly those.
        self.pairs: list[dict[str, str]] = []


class AcsThrottled(AcsError):
    status = 429


class AcsUnavailable(AcsError):
    status = 503


class AcsTimeout(AcsError):
    status = 504


class AcsBadGateway(AcsError):
    status = 502


class AcsAuthFailed(AcsError):
    status = 502


class AcsRequestRejected(AcsError):
    """ACS answered a 4xx other than 401/403/429 for the whole request."""

    status = 400


class IntentTooLarge(ValueError):
    """A send request too large to be kept durably as an intent: nothing is sent (413)."""


@dataclass(frozen=True)
class SendIntent:
    """What a send is about to ask of ACS, kept durably before the call (status ``Sending``, internal).

    ``payload`` is the ACS request body itself, with every recipient's repeatability pair, so the
    reconciler can repeat the call and ACS recognise it. ``clients`` lists, for recipients that
    came with the client's own ``repeatabilityRequestId``, (position in ``payload["recipients"]``,
    that id, the request fingerprint), so their results can be kept for a repeated request.
    """

    intent_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    payload: Mapping[str, Any]
    clients: tuple[tuple[int, str, str], ...] = ()
    attempts: int = 0
    last_error: str | None = None
    # Recipients refused before the call (not E.164): (key, to, error), the key being
    # ``rejected-<client id>`` or else their position, for ``rejected-<intent id>-<position>``: the
    # id their record has on every path.
    refused: tuple[tuple[str, str, str], ...] = ()
    # Until when the intent is in someone's hands: the send itself (until its deadline), or a
    # reconciler run that claimed it; the reconciler takes only intents no one holds.
    claimed_until: dt.datetime | None = None
    version: str | None = field(default=None, compare=False)  # storage's ETag, for claiming
    # The send's W3C trace context (telemetry on): the reconciler writes the records with it, so
    # a later report's span still links to the send.
    traceparent: str | None = None
    # A campaign chunk's send: (campaign id, chunk index, recipients in the chunk), so that when
    # the reconciler records it, the campaign counts the chunk from ACS's answer (issue 25).
    campaign_chunk: tuple[str, int, int] | None = None


class SendIntents(Protocol):
    """Intents of sends in flight: written before the ACS call, removed once every record is written."""

    async def put_intent(self, intent: SendIntent) -> None:
        """Keep ``intent`` durably (or raise :class:`IntentTooLarge`, a storage error)."""
        ...

    async def remove_intent(self, intent: SendIntent) -> None: ...

    async def intents_before(self, moment: dt.datetime, limit: int) -> list[SendIntent]:
        """At most ``limit`` intents created before ``moment``, oldest first."""
        ...

    async def note_intent_attempt(self, intent: SendIntent, error: str) -> None:
        """Count one more reconciliation attempt of ``intent`` that got no answer, with why."""
        ...

    async def claim_intent(self, intent: SendIntent, until: dt.datetime) -> bool:
        """Hold ``intent`` until ``until`` if it is unchanged since it was read; False if another
        run claimed or removed it meanwhile."""
        ...


class MmsSender(Protocol):
    """The ACS port: one call, ACS's JSON body back (``{"value": [...]}``), or an ``AcsError``."""

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]: ...


class SendResults(Protocol):
    """Results kept by client ``repeatabilityRequestId``, so a repeated request is answered without ACS.

    Each value is what the send path stored: ``{"item": <the ACS item>, "request": <fingerprint>}``,
    or, while the call's outcome is unknown, the claim ``{"request": <fingerprint>}`` alone.
    """

    async def get_send_results(self, request_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    async def put_send_results(self, results: Mapping[str, dict[str, Any]]) -> None: ...

    async def claim_send_ids(self, claims: Mapping[str, str]) -> tuple[set[str], set[str]]:
        """Claim each free id for its fingerprint (insert if absent); return the ids claimed here,
        and the ids already held (claimed or answered) for another fingerprint."""
        ...

    async def release_send_claims(self, claims: Mapping[str, str]) -> None:
        """Remove each id's claim if it is still a claim (no result) for that fingerprint."""
        ...


class PublishFailed(Exception):
    """The topic did not accept the events (5xx, 429, timeout, connection or credential trouble); retry later."""


class StatusEventPublisher(Protocol):
    """The Event Grid topic port: publish CloudEvents (as dicts) in one request, or raise ``PublishFailed``."""

    async def publish(self, events: Sequence[Mapping[str, Any]]) -> None: ...


@dataclass(frozen=True)
class PendingEntry:
    """One status event the topic has not yet accepted, as the retry timer finds it."""

    message_id: str
    revision: int
    since: dt.datetime
    attempts: int


class StatusOutbox(Protocol):
    """Where pending status events wait (in their records, indexed for the retry timer)."""

    async def get(self, message_id: str) -> TrackingRecord | None: ...

    async def pending_status_events(self, now: dt.datetime, limit: int) -> list[PendingEntry]:
        """At most ``limit`` pending events whose next attempt is due."""
        ...

    async def postpone_status_event(self, entry: PendingEntry, next_at: dt.datetime) -> None: ...

    async def acknowledge_status_events(self, accepted: Sequence[tuple[TrackingRecord, list[int]]]) -> None:
        """The topic accepted these events (per record, its revisions): they are no longer pending."""
        ...

    async def drop_status_entry(self, message_id: str, revision: int) -> None: ...
