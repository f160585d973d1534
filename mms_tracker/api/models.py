"""The API's shapes, declared once (pydantic v2): requests, queries, responses and problems.

The same declarations validate what comes in, shape what goes out, and, through
``model_json_schema()``, make the OpenAPI document (``openapi.py``), so the document and the
behaviour cannot drift apart. What a JSON Schema cannot say is checked after the shape, in
``validation.py``, with the settings it needs (the allowed senders, the attachment budget), and
named in the document's descriptions: a sender outside ``MMS_SENDERS``, attachments over the
byte budget, an RFC 1123 date that is not a real date, one repeatability id on two recipients.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..domain import MAX_TAG_CHARS, DeliveryAttempt, RecordedEvent, Status, TrackingRecord
from ..domain.phone import E164_PATTERN
from ..domain.text import opt_iso_z

MAX_RECIPIENTS = 100
MAX_ATTACHMENTS = 10
MAX_MESSAGE_CHARS = 1000
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
TAGS_PAGE_SIZE_DEFAULT = 20
TAGS_PAGE_SIZE_MAX = 100
PAGE_SIZE_MAX_CAMPAIGNS = 100  # each listed campaign is read afresh
# The API's ``MmsContentType`` enum, in its own spelling and order: Azure/azure-rest-api-specs,
# specification/communication/data-plane/Sms/preview/2024-01-14-preview/communicationservicessms.json,
# ``MmsSendRequestAttachment.contentType``. Matched case-insensitively, forwarded as spelled here.
MMS_CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "audio/wav",
    "audio/x-wav",
    "audio/ac3",
    "audio/amr",
    "video/mp4",
    "video/x-msvideo",
    "text/plain",
)
_CANONICAL_CONTENT_TYPES = {t.lower(): t for t in MMS_CONTENT_TYPES}
# ``MmsRecipient`` (same swagger): repeatabilityRequestId is "a client-generated, 36-character
# hexadecimal case-insensitive encoding of a UUID (GUID)"; repeatabilityFirstSent an RFC 1123
# date, "eg- Tue, 26 Mar 2019 16:06:51 GMT".
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
RFC1123_PATTERN = (
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$"
)
# Standard base64 with its padding, exactly what ``base64.b64decode(..., validate=True)`` takes.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _any_case(words: tuple[str, ...]) -> str:
    """A pattern matching any of ``words`` in any letter case (JSON Schema has no case-insensitive flag)."""

    def letters(word: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)  # only / - and digits

    return "^(?:" + "|".join(letters(w) for w in words) + ")$"


def _canonical_content_type(value: str) -> str:
    return _CANONICAL_CONTENT_TYPES[value.lower()]


class _Shape(BaseModel):
    """A request shape: JSON types exactly (no coercion); unknown fields are ignored, as ACS does."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=False)


class MmsRecipient(_Shape):
    to: str = Field(min_length=1, description="E.164; any other value is answered in its own item with 400.")
    repeatabilityRequestId: str | None = Field(default=None, pattern=UUID_PATTERN, description="A UUID.")
    repeatabilityFirstSent: str | None = Field(
        default=None,
        pattern=RFC1123_PATTERN,
        description="An RFC 1123 date (Tue, 26 Mar 2019 16:06:51 GMT), a real one; given with repeatabilityRequestId.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {
                "repeatabilityRequestId": ["repeatabilityFirstSent"],
                "repeatabilityFirstSent": ["repeatabilityRequestId"],
            }
        }
    )

    @model_validator(mode="after")
    def _pair(self) -> MmsRecipient:
        given = self.model_fields_set  # "given", as JSON Schema's dependentRequired counts it: null included
        if ("repeatabilityRequestId" in given) != ("repeatabilityFirstSent" in given):
            raise ValueError("repeatabilityRequestId and repeatabilityFirstSent go together")
        return self


class MmsAttachment(_Shape):
    contentType: Annotated[str, AfterValidator(_canonical_content_type)] = Field(
        pattern=_any_case(MMS_CONTENT_TYPES),
        description="One of the MmsContentType enum, in any case: " + ", ".join(MMS_CONTENT_TYPES),
    )
    contentInBase64: str = Field(min_length=1, pattern=BASE64_PATTERN, json_schema_extra={"contentEncoding": "base64"})


class MmsSendOptions(_Shape):
    enableDeliveryReport: bool | None = Field(default=None, description="Ignored: reports are always requested.")
    tag: str | None = Field(
        default=None,
        max_length=MAX_TAG_CHARS,
        description="Any Unicode text (ACS's MmsSendOptions.tag is any string; here at most 256 characters). "
        "Every tag accepted here is served by /tags/summary?tag=, /tags/messages.csv?tag=, /messages?tag= "
        "and the dashboard; the path forms /tags/{tag}/... only when the tag is one path segment.",
    )


class _MmsContent(_Shape):
    """What a send and a campaign share: the sender, the message, its attachments and the tag."""

    from_: str | None = Field(
        default=None, alias="from", pattern=f"^{E164_PATTERN}$", description="One of MMS_SENDERS."
    )
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    attachments: list[MmsAttachment] = Field(
        min_length=1, max_length=MAX_ATTACHMENTS, description="Decoded, at most MMS_MAX_ATTACHMENT_BYTES in total."
    )
    sendOptions: MmsSendOptions | None = None


class MmsSendMessageRequest(_MmsContent):
    """The ACS ``MmsSendMessageRequest``: ``from`` is optional (the first of MMS_SENDERS) and must be one of them."""

    recipients: list[MmsRecipient] = Field(min_length=1, max_length=MAX_RECIPIENTS)

    model_config = ConfigDict(
        json_schema_extra={
            "description": "The ACS MmsSendMessageRequest. Beyond the shape: `from` must be one of MMS_SENDERS, "
            "the decoded attachments fit MMS_MAX_ATTACHMENT_BYTES, repeatabilityRequestId and "
            "repeatabilityFirstSent go together, and no repeatabilityRequestId is given to two recipients."
        }
    )


MAX_CAMPAIGN_RECIPIENTS = 100_000


class CampaignRecipient(_Shape):
    to: str = Field(min_length=1, description="E.164; any other value is counted as Rejected, not refused.")


class CampaignCreateRequest(_MmsContent):
    """``POST /api/campaigns``: the ACS request's ``from``, ``message``, ``attachments`` and
    ``sendOptions.tag``, with up to 100,000 recipients (sent in chunks of 100)."""

    recipients: list[CampaignRecipient] = Field(min_length=1, max_length=MAX_CAMPAIGN_RECIPIENTS)


class ListMessagesQuery(BaseModel):
    """``GET /api/messages``: its query string (values arrive as text, so numbers are parsed)."""

    model_config = ConfigDict(extra="ignore")

    tag: str = Field(min_length=1, max_length=MAX_TAG_CHARS, description="The tag the messages were sent with.")
    status: Status | None = Field(default=None, description="Only messages in this status.")
    pageSize: int = Field(default=PAGE_SIZE_DEFAULT, ge=1, le=PAGE_SIZE_MAX, description="Items per page.")
    continuationToken: str | None = Field(
        default=None, min_length=1, description="The continuationToken of the previous page, unchanged."
    )


class ListCampaignsQuery(BaseModel):
    """``GET /api/campaigns``: its query string."""

    model_config = ConfigDict(extra="ignore")

    pageSize: int = Field(default=PAGE_SIZE_DEFAULT, ge=1, le=PAGE_SIZE_MAX_CAMPAIGNS, description="Items per page.")
    continuationToken: str | None = Field(
        default=None, min_length=1, description="The continuationToken of the previous page, unchanged."
    )


# --- responses ------------------------------------------------------------------------------


_time = opt_iso_z


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MmsSendResultItem(_Out):
    model_config = ConfigDict(extra="allow", strict=True)  # ACS's own fields pass through

    to: str
    messageId: str | None = None
    httpStatusCode: int
    successful: bool
    errorMessage: str | None = None
    repeatabilityResult: str | None = Field(default=None, pattern="^(?:accepted|rejected)$")


class MmsSendResult(_Out):
    value: list[MmsSendResultItem]


class DeliveryAttemptOut(_Out):
    model_config = ConfigDict(extra="forbid", strict=True, title="DeliveryAttempt")

    timestamp: str | None = Field(json_schema_extra={"format": "date-time"})
    segmentsSucceeded: int
    segmentsFailed: int

    @classmethod
    def of(cls, attempt: DeliveryAttempt) -> DeliveryAttemptOut:
        return cls(
            timestamp=_time(attempt.timestamp),
            segmentsSucceeded=attempt.segments_succeeded,
            segmentsFailed=attempt.segments_failed,
        )


class DeliveryEvent(_Out):
    eventId: str
    eventType: str
    deliveryStatus: str
    deliveryStatusDetails: str | None
    receivedTimestamp: str | None = Field(
        json_schema_extra={"format": "date-time"},
        description="As the report carried it. One more than REPORT_MAX_FUTURE_SKEW_SECONDS (default 300) past "
        "recordedAt counts as received at recordedAt: it cannot outrank the reports that follow.",
    )
    recordedAt: str = Field(json_schema_extra={"format": "date-time"})
    tag: str | None = Field(description="The report's own tag; a message stays in the first tag recorded for it.")

    @classmethod
    def of(cls, event: RecordedEvent) -> DeliveryEvent:
        return cls(
            eventId=event.event_id,
            eventType=event.event_type,
            deliveryStatus=event.delivery_status,
            deliveryStatusDetails=event.delivery_status_details,
            receivedTimestamp=_time(event.received_timestamp),
            recordedAt=_time(event.recorded_at) or "",
            tag=event.tag,
        )


class MessageSummary(_Out):
    messageId: str
    to: str | None
    from_: str | None = Field(alias="from")
    tag: str | None
    status: Status
    statusDetails: str | None
    createdAt: str = Field(json_schema_extra={"format": "date-time"})
    updatedAt: str = Field(json_schema_extra={"format": "date-time"})
    completedAt: str | None = Field(
        json_schema_extra={"format": "date-time"},
        description="Null until the status is final: the deciding report's receivedTimestamp (its recordedAt "
        "when that lay past REPORT_MAX_FUTURE_SKEW_SECONDS), or the expiry or rejection time.",
    )
    deliveryAttempts: list[DeliveryAttemptOut]

    @classmethod
    def fields_of(cls, record: TrackingRecord) -> dict[str, Any]:
        return {
            "messageId": record.message_id,
            "to": record.to,
            "from": record.from_,
            "tag": record.tag,
            "status": record.status,
            "statusDetails": record.status_details,
            "createdAt": _time(record.created_at),
            "updatedAt": _time(record.updated_at),
            "completedAt": _time(record.completed_at),
            "deliveryAttempts": [DeliveryAttemptOut.of(a) for a in record.delivery_attempts],
        }

    @classmethod
    def of(cls, record: TrackingRecord) -> MessageSummary:
        return cls.model_validate(cls.fields_of(record))


class MessageRecord(MessageSummary):
    """A tracking record with every distinct delivery report."""

    events: list[DeliveryEvent]

    @classmethod
    def of(cls, record: TrackingRecord) -> MessageRecord:
        return cls.model_validate(cls.fields_of(record) | {"events": [DeliveryEvent.of(e) for e in record.events]})


class MessagePage(_Out):
    items: list[MessageSummary]
    continuationToken: str | None


class ByStatus(_Out):
    Accepted: int = Field(ge=0)
    Delivered: int = Field(ge=0)
    Failed: int = Field(ge=0)
    Rejected: int = Field(ge=0)
    Expired: int = Field(ge=0)


class LatencyOut(_Out):
    """Send to final report (``completedAt - createdAt``) over Delivered messages, from a fixed-bucket
    histogram: each percentile is the upper edge of its bucket (null while nothing is Delivered)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Latency")

    p50Seconds: float | None
    p90Seconds: float | None
    p99Seconds: float | None
    count: int = Field(ge=0)
    histogram: list[LatencyBucket] = Field(description="Delivered messages per bucket, fastest first.")


class LatencyBucket(_Out):
    upToSeconds: int | None = Field(description="The bucket's upper edge; null for the last, open bucket.")
    count: int = Field(ge=0)


class TagSummary(_Out):
    tag: str
    total: int = Field(ge=0)
    byStatus: ByStatus
    latency: LatencyOut
    failureReasons: dict[str, int] = Field(
        description="statusDetails of Failed messages and how many failed with it: the top 20, most frequent first."
    )


class TagListItem(_Out):
    tag: str
    total: int = Field(ge=0)
    byStatus: ByStatus
    lastActivityAt: str = Field(
        json_schema_extra={"format": "date-time"}, description="When a record of the tag last changed (to 30 s)."
    )


class TagPage(_Out):
    items: list[TagListItem] = Field(description="Newest activity first.")
    continuationToken: str | None


class PoisonItem(_Out):
    model_config = ConfigDict(extra="forbid", strict=True, title="PoisonEntry")

    eventId: str
    eventType: str
    reason: str
    recordedAt: str = Field(json_schema_extra={"format": "date-time"})
    payload: str = Field(description="The event as received: its first 2,000 characters.")


class PoisonPage(_Out):
    items: list[PoisonItem]
    continuationToken: str | None


DAY_PATTERN = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"


def _day(value: str) -> str:
    dt.date.fromisoformat(value)  # a real date: 2026-02-30 is refused
    return value


class ListTagsQuery(BaseModel):
    """``GET /api/tags``: its query string."""

    model_config = ConfigDict(extra="ignore")

    pageSize: int = Field(default=TAGS_PAGE_SIZE_DEFAULT, ge=1, le=TAGS_PAGE_SIZE_MAX, description="Tags per page.")
    continuationToken: str | None = Field(
        default=None, min_length=1, description="The continuationToken of the previous page, unchanged."
    )


class PoisonQuery(BaseModel):
    """``GET /api/poison``: its query string."""

    model_config = ConfigDict(extra="ignore")

    since: Annotated[str, Field(pattern=DAY_PATTERN), AfterValidator(_day)] | None = Field(
        default=None,
        description="The first day (YYYY-MM-DD, UTC) to list, a real date; default: 7 days ago.",
    )
    pageSize: int = Field(default=PAGE_SIZE_DEFAULT, ge=1, le=PAGE_SIZE_MAX, description="Entries per page.")
    continuationToken: str | None = Field(
        default=None, min_length=1, description="The continuationToken of the previous page, unchanged."
    )


class ExportQuery(BaseModel):
    """``GET /api/tags/{tag}/messages.csv``: its query string."""

    model_config = ConfigDict(extra="ignore")

    status: Status | None = Field(default=None, description="Only messages in this status.")


TAG_IN_QUERY = (
    "The tag the messages were sent with: any tag a send accepts (1 to 256 characters), "
    "percent-encoded as a query value, so `/`, `.`, `..`, `%`, `?`, `#`, `\\` and any Unicode travel."
)


class TagQuery(BaseModel):
    """``GET /api/tags/summary``: the tag in the query string, where any tag can travel."""

    model_config = ConfigDict(extra="ignore")

    tag: str = Field(min_length=1, max_length=MAX_TAG_CHARS, description=TAG_IN_QUERY)


class TagExportQuery(TagQuery, ExportQuery):
    """``GET /api/tags/messages.csv``: the tag and the status filter, both in the query string."""


class DashboardQuery(BaseModel):
    """``GET /api/dashboard``: its query string (``code`` is the function key, read by the host)."""

    model_config = ConfigDict(extra="ignore")

    tag: str | None = Field(default=None, min_length=1, max_length=MAX_TAG_CHARS, description="Open this tag's view.")
    view: str | None = Field(default=None, pattern="^(?:tags|poison)$", description="Open this view.")


class CampaignCreated(_Out):
    campaignId: str
    status: str
    total: int = Field(ge=0)


class CampaignSummary(_Out):
    """A campaign in a listing: its progress, without the delivery summary."""

    campaignId: str
    tag: str
    status: str = Field(description="Queued, Sending, Completed, CompletedWithErrors or Cancelled.")
    total: int = Field(ge=0)
    sent: int = Field(ge=0)
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    failedToSend: int = Field(
        ge=0,
        description="Recipients of chunks that were not sent, while nothing shows that ACS accepted them: a chunk"
        " the reconciler later finds sent moves to accepted or rejected, once.",
    )
    createdAt: dt.datetime
    completedAt: dt.datetime | None


class Campaign(CampaignSummary):
    """A campaign's progress; ``delivery`` is its tag's summary (the campaign's tag is the tracker's tag)."""

    reason: str | None = Field(
        default=None,
        description="Why the job is CompletedWithErrors or Cancelled; or that chunks first counted failedToSend"
        " were found sent (the job is then Completed once nothing failed remains).",
    )
    delivery: TagSummary


class CampaignPage(_Out):
    items: list[CampaignSummary]
    continuationToken: str | None


class Health(_Out):
    status: str
    storage: str | None = None


class FieldProblem(_Out):
    field: str
    message: str


class SentPair(_Out):
    """A recipient as it was sent to ACS, with its repeatability pair."""

    to: str
    repeatabilityRequestId: str
    repeatabilityFirstSent: str


class Problem(_Out):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldProblem] | None = None
    recipients: list[SentPair] | None = Field(
        default=None,
        description=(
            "When ACS may have accepted the request without its answer arriving (a 502, 503 or 504): each "
            "recipient with the repeatability pair it was sent with. Repeat the request with exactly "
            "these pairs, and ACS (and the tracker) recognise it instead of sending again."
        ),
    )


def dump(model: BaseModel) -> dict[str, Any]:
    """A response model as JSON-ready data, with the API's field names (``from``)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=False)
