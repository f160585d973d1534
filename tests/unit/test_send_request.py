"""Whole-request validation of ``POST /api/messages``: one test per rule, each naming its field."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings

from mms_tracker.api.models import MMS_CONTENT_TYPES
from mms_tracker.api.validation import (
    RequestInvalid,
    RequestTooLarge,
    SendLimits,
    idempotency_key,
    parse_campaign_request,
    parse_send_request,
)
from mms_tracker.service.sending import MmsRequest
from tests.integration.test_tag_routes import tag_values
from tests.support import SWAGGER_MMS_CONTENT_TYPES, fixture

SENDERS = ("+18004567891", "+18005550100")
LIMITS = SendLimits(max_request_bytes=200_000, max_attachment_bytes=50_000)


def seed() -> dict[str, Any]:
    return copy.deepcopy(fixture("seed_send_request.json"))  # type: ignore[no-any-return]


def fields_of(body: Any, limits: SendLimits = LIMITS) -> list[str]:
    with pytest.raises(RequestInvalid) as caught:
        parse_send_request(json.dumps(body).encode() if not isinstance(body, bytes) else body, SENDERS, limits)
    return [e.field for e in caught.value.errors]


def test_seed_request_is_valid_and_keeps_the_invalid_number_for_its_item() -> None:
    request = parse_send_request(json.dumps(seed()).encode(), SENDERS, LIMITS)
    assert request.from_ == "+18004567891" and request.tag == "CustomerId"
    assert [(r.to, r.valid) for r in request.recipients] == [
        ("+18335852071", True),
        ("+11234567890", True),
        ("+112345678910abc", False),
    ]


def test_body_not_json_is_refused() -> None:
    assert fields_of(b"{nope") == ["body"]


def test_body_not_an_object_is_refused() -> None:
    assert fields_of([1, 2]) == ["body"]


def test_no_recipients_is_refused() -> None:
    assert fields_of(seed() | {"recipients": []}) == ["recipients"]


def test_more_than_100_recipients_is_refused() -> None:
    assert fields_of(seed() | {"recipients": [{"to": "+18335852071"}] * 101}) == ["recipients"]


def test_recipient_without_to_is_refused() -> None:
    assert fields_of(seed() | {"recipients": [{"nope": 1}]}) == ["recipients[0].to"]


def test_half_a_repeatability_pair_is_refused() -> None:
    assert fields_of(
        seed()
        | {"recipients": [{"to": "+18335852071", "repeatabilityRequestId": "0f8fad5b-d9cb-469f-a165-70867728950e"}]}
    ) == ["recipients[0]"]


def test_no_attachments_is_refused() -> None:
    assert fields_of(seed() | {"attachments": []}) == ["attachments"]


def test_more_than_10_attachments_is_refused() -> None:
    body = seed()
    body["attachments"] = body["attachments"] * 11
    assert fields_of(body) == ["attachments"]


def test_the_content_types_are_exactly_the_swagger_enum() -> None:
    assert list(MMS_CONTENT_TYPES) == SWAGGER_MMS_CONTENT_TYPES


@pytest.mark.parametrize("content_type", SWAGGER_MMS_CONTENT_TYPES)
@pytest.mark.parametrize("spelling", [str, str.upper, str.title])
def test_every_enum_content_type_is_accepted_in_any_case_and_forwarded_as_spelled_in_the_enum(
    content_type: str, spelling: Any
) -> None:
    body = seed()
    body["attachments"][0]["contentType"] = spelling(content_type)
    request = parse_send_request(json.dumps(body).encode(), SENDERS, LIMITS)
    assert request.attachments[0]["contentType"] == content_type


@pytest.mark.parametrize(
    "content_type",
    ["application/pdf", "video/webm", "image/tiff", "image/jpg", "audio/mpeg", "text/vcard", "image/png ", "", 7],
)
def test_content_type_outside_the_enum_is_refused(content_type: Any) -> None:
    body = seed()
    body["attachments"][0]["contentType"] = content_type
    assert fields_of(body) == ["attachments[0].contentType"]


GOOD_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
GOOD_DATE = "Tue, 26 Mar 2019 16:06:51 GMT"  # the swagger's own example of repeatabilityFirstSent


def with_pair(request_id: Any, first_sent: Any) -> dict[str, Any]:
    recipient = {"to": "+18335852071", "repeatabilityRequestId": request_id, "repeatabilityFirstSent": first_sent}
    return seed() | {"recipients": [recipient]}


def test_a_uuid_and_an_rfc_1123_date_are_a_valid_repeatability_pair() -> None:
    request = parse_send_request(json.dumps(with_pair(GOOD_ID.upper(), GOOD_DATE)).encode(), SENDERS, LIMITS)
    assert request.recipients[0].repeatability_request_id == GOOD_ID.upper()  # passed on unchanged


@pytest.mark.parametrize(
    "request_id", ["x", "", GOOD_ID + "\n", GOOD_ID[:-1], "{" + GOOD_ID + "}", GOOD_ID.replace("-", ""), 7, "é" * 36]
)
def test_a_repeatability_request_id_that_is_not_a_uuid_is_refused(request_id: Any) -> None:
    assert fields_of(with_pair(request_id, GOOD_DATE)) == ["recipients[0].repeatabilityRequestId"]


@pytest.mark.parametrize(
    "first_sent",
    [
        "2019-03-26T16:06:51Z",
        "Tue, 26 Mar 2019 16:06:51 +0000",
        "Wed, 26 Mar 2019 16:06:51 GMT",  # the wrong weekday
        "Tue, 31 Feb 2019 16:06:51 GMT",
        "Tue, 26 Mar 2019 16:06:51 GMT\n",
        "",
        1553616411,
    ],
)
def test_a_repeatability_first_sent_that_is_not_an_rfc_1123_date_is_refused(first_sent: Any) -> None:
    assert fields_of(with_pair(GOOD_ID, first_sent)) == ["recipients[0].repeatabilityFirstSent"]


def test_empty_content_is_refused() -> None:
    body = seed()
    body["attachments"][0]["contentInBase64"] = ""
    assert fields_of(body) == ["attachments[0].contentInBase64"]


def test_content_not_base64_is_refused() -> None:
    body = seed()
    body["attachments"][0]["contentInBase64"] = "not base64!!"
    assert fields_of(body) == ["attachments[0].contentInBase64"]


def test_message_over_1000_characters_is_refused() -> None:
    assert fields_of(seed() | {"message": "x" * 1001}) == ["message"]


def test_attachments_over_the_configured_total_are_refused() -> None:
    assert fields_of(seed(), SendLimits(max_request_bytes=200_000, max_attachment_bytes=100)) == ["attachments"]


def test_sender_not_allowed_is_refused() -> None:
    assert fields_of(seed() | {"from": "+19999999999"}) == ["from"]


def test_missing_sender_defaults_to_the_first_allowed() -> None:
    body = seed()
    del body["from"]
    assert parse_send_request(json.dumps(body).encode(), SENDERS, LIMITS).from_ == "+18004567891"


def test_send_options_may_be_omitted() -> None:
    body = seed()
    del body["sendOptions"]
    assert parse_send_request(json.dumps(body).encode(), SENDERS, LIMITS).tag is None


def test_body_over_the_byte_limit_is_413() -> None:
    with pytest.raises(RequestTooLarge):
        parse_send_request(json.dumps(seed()).encode(), SENDERS, SendLimits(max_request_bytes=100))


def test_every_failing_field_is_named_at_once() -> None:
    assert sorted(fields_of({"from": "+1999", "recipients": [], "attachments": [], "message": 5})) == [
        "attachments",
        "from",
        "message",
        "recipients",
    ]


# --- specifications sharpened by mutation testing (make mutation) -------------------------------


def errors_of(body: Any, limits: SendLimits = LIMITS) -> list[tuple[str, str]]:
    with pytest.raises(RequestInvalid) as caught:
        parse_send_request(json.dumps(body).encode() if not isinstance(body, bytes) else body, SENDERS, limits)
    return [(e.field, e.message) for e in caught.value.errors]


def accepted(body: dict[str, Any], limits: SendLimits = LIMITS) -> MmsRequest:
    return parse_send_request(json.dumps(body).encode(), SENDERS, limits)


def attachment(content: bytes = b"x", content_type: str = "image/png") -> dict[str, str]:
    return {"contentType": content_type, "contentInBase64": base64.b64encode(content).decode()}


ALLOWED_TYPES = ", ".join(SWAGGER_MMS_CONTENT_TYPES)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (b"{nope", [("body", "must be a JSON object")]),
        (b"[1, 2]", [("body", "must be a JSON object")]),
        (seed() | {"from": "+19999999999"}, [("from", "must be one of the numbers in MMS_SENDERS")]),
        (seed() | {"recipients": []}, [("recipients", "must list at least 1 recipient")]),
        (seed() | {"recipients": [{"to": "+18335852071"}] * 101}, [("recipients", "must list at most 100 recipients")]),
        (seed() | {"recipients": [{"to": ""}]}, [("recipients[0].to", "must not be empty")]),
        (
            with_pair(GOOD_ID, None),
            [("recipients[0]", "repeatabilityRequestId and repeatabilityFirstSent go together")],
        ),
        (with_pair("x", GOOD_DATE), [("recipients[0].repeatabilityRequestId", "must be a UUID")]),
        (
            with_pair(GOOD_ID, "yesterday"),
            [
                (
                    "recipients[0].repeatabilityFirstSent",
                    "must be an RFC 1123 date such as 'Tue, 26 Mar 2019 16:06:51 GMT'",
                )
            ],
        ),
        (seed() | {"message": 5}, [("message", "must be a string")]),
        (seed() | {"message": "x" * 1001}, [("message", "must be at most 1000 characters")]),
        (seed() | {"message": "bad \ud800"}, [("message", "must be valid unicode text (no lone surrogates)")]),
        (seed() | {"attachments": []}, [("attachments", "must list at least 1 attachment")]),
        (seed() | {"attachments": [attachment()] * 11}, [("attachments", "must list at most 10 attachments")]),
        (seed() | {"attachments": [7]}, [("attachments[0]", "must be an object")]),
        (
            seed() | {"attachments": [attachment(content_type="image/tiff")]},
            [("attachments[0].contentType", f"must be one of the MMS content types: {ALLOWED_TYPES}")],
        ),
        (seed() | {"attachments": [{"contentType": "image/png"}]}, [("attachments[0].contentInBase64", "is required")]),
        (
            seed() | {"attachments": [{"contentType": "image/png", "contentInBase64": "!!"}]},
            [("attachments[0].contentInBase64", "is not valid base64")],
        ),
        (seed() | {"attachments": [attachment(b"x" * 50_001)]}, [("attachments", "must total at most 50000 bytes")]),
        (seed() | {"sendOptions": "tag"}, [("sendOptions", "must be an object")]),
        (
            seed() | {"sendOptions": {"tag": "t" * 257}},
            [("sendOptions.tag", "must be at most 256 characters")],
        ),
    ],
)
def test_each_refusal_names_its_field_and_says_why(body: Any, errors: list[tuple[str, str]]) -> None:
    assert errors_of(body) == errors


def test_the_refusal_reads_as_every_field_and_its_message() -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_send_request(json.dumps(seed() | {"from": "+1999", "message": 5}).encode(), SENDERS, LIMITS)
    assert str(caught.value) == "from: must be an E.164 number, one of MMS_SENDERS; message: must be a string"


def test_a_body_at_the_byte_limit_is_read_and_one_byte_more_is_413() -> None:
    body = json.dumps(seed()).encode()
    assert parse_send_request(body, SENDERS, SendLimits(max_request_bytes=len(body))).tag == "CustomerId"
    with pytest.raises(RequestTooLarge) as caught:
        parse_send_request(body, SENDERS, SendLimits(max_request_bytes=len(body) - 1))
    assert caught.value.limit == len(body) - 1
    assert str(caught.value) == f"The request body exceeds {len(body) - 1} bytes."


def test_a_message_of_1000_characters_is_sent_as_it_is() -> None:
    assert accepted(seed() | {"message": "é" * 1000}).message == "é" * 1000


def test_100_recipients_are_accepted() -> None:
    assert len(accepted(seed() | {"recipients": [{"to": "+18335852071"}] * 100}).recipients) == 100


def test_10_attachments_are_accepted_and_forwarded_as_given() -> None:
    attachments = [attachment(bytes([i])) for i in range(10)]
    assert list(accepted(seed() | {"attachments": attachments}).attachments) == attachments


def test_attachments_may_total_exactly_the_limit_and_the_limit_is_on_their_sum() -> None:
    limits = SendLimits(max_request_bytes=200_000, max_attachment_bytes=100)
    assert len(accepted(seed() | {"attachments": [attachment(b"x" * 100)]}, limits).attachments) == 1
    assert len(accepted(seed() | {"attachments": [attachment(b"x" * 50)] * 2}, limits).attachments) == 2
    assert errors_of(seed() | {"attachments": [attachment(b"x" * 50)] * 2 + [attachment()]}, limits) == [
        ("attachments", "must total at most 100 bytes")
    ]


def test_a_tag_of_256_characters_is_kept_and_257_is_refused() -> None:
    assert accepted(seed() | {"sendOptions": {"tag": "t" * 256}}).tag == "t" * 256
    assert fields_of(seed() | {"sendOptions": {"tag": "t" * 257}}) == ["sendOptions.tag"]


@pytest.mark.parametrize("tag", [7, ["x"], "bad \ud800", "bad \udfff"])
def test_a_tag_that_is_not_unicode_text_is_refused(tag: Any) -> None:
    assert fields_of(seed() | {"sendOptions": {"tag": tag}}) == ["sendOptions.tag"]


@settings(max_examples=300, deadline=None)
@given(tag_values())
def test_a_campaign_takes_exactly_the_tags_a_send_takes(tag: Any) -> None:
    # Every tag a send or a campaign accepts must be served by every tag route (issue 25): both
    # validate sendOptions.tag by the same rule, so the tag routes' property test covers campaigns.
    body = json.dumps(seed() | {"sendOptions": {"tag": tag}}).encode()
    campaign = json.dumps(
        {k: v for k, v in json.loads(body).items() if k != "recipients"} | {"recipients": [{"to": "+18335852071"}]}
    ).encode()

    def outcome(parse: Any, data: bytes) -> Any:
        try:
            return ("accepted", parse(data, SENDERS, SendLimits()).tag)  # the default limits: 2 MiB
        except RequestInvalid as refused:
            return ("refused", [(e.field, e.message) for e in refused.errors])

    sent = outcome(parse_send_request, body)
    assert outcome(parse_campaign_request, campaign) == sent
    assert sent[0] == "accepted" or sent[1][0][0] == "sendOptions.tag"


@pytest.mark.parametrize("surrogate", ["\ud800", "\udbff", "\udc00", "\udfff"])
def test_a_message_with_any_lone_surrogate_is_refused(surrogate: str) -> None:
    assert fields_of(seed() | {"message": f"a{surrogate}b"}) == ["message"]


def test_the_characters_around_the_surrogates_are_text() -> None:
    assert accepted(seed() | {"message": "\ud7ff\ue000"}).message == "\ud7ff\ue000"


def test_the_repeatability_pair_is_passed_on_unchanged() -> None:
    [recipient] = accepted(with_pair(GOOD_ID, GOOD_DATE)).recipients
    assert (recipient.repeatability_request_id, recipient.repeatability_first_sent) == (GOOD_ID, GOOD_DATE)


def test_a_repeatability_request_id_is_used_once_whatever_its_case() -> None:
    recipients = [
        {"to": "+18335852071", "repeatabilityRequestId": GOOD_ID, "repeatabilityFirstSent": GOOD_DATE},
        {"to": "+11234567890", "repeatabilityRequestId": GOOD_ID.upper(), "repeatabilityFirstSent": GOOD_DATE},
    ]
    assert errors_of(seed() | {"recipients": recipients}) == [
        ("recipients[1].repeatabilityRequestId", "is used by another recipient")
    ]


def test_a_recipient_refused_for_its_date_does_not_take_its_id() -> None:
    recipients = [
        {"to": "+18335852071", "repeatabilityRequestId": GOOD_ID, "repeatabilityFirstSent": "yesterday"},
        {"to": "+11234567890", "repeatabilityRequestId": GOOD_ID, "repeatabilityFirstSent": GOOD_DATE},
    ]
    assert fields_of(seed() | {"recipients": recipients}) == ["recipients[0].repeatabilityFirstSent"]


def test_every_bad_recipient_is_named_not_just_the_first() -> None:
    pair = {"to": "+18335852071", "repeatabilityRequestId": GOOD_ID, "repeatabilityFirstSent": GOOD_DATE}
    recipients = [{"nope": 1}, {"to": "+1", "repeatabilityRequestId": GOOD_ID}, pair, pair, {"to": 5}]
    # The shape first (every failing field of it), then what no schema can say (ids used twice).
    assert fields_of(seed() | {"recipients": recipients}) == ["recipients[0].to", "recipients[1]", "recipients[4].to"]
    assert fields_of(seed() | {"recipients": [pair, pair, pair]}) == [
        "recipients[1].repeatabilityRequestId",
        "recipients[2].repeatabilityRequestId",
    ]


def test_every_bad_attachment_is_named_not_just_the_first() -> None:
    attachments = [
        7,
        {"contentType": "image/png", "contentInBase64": ""},
        {"contentType": "image/png", "contentInBase64": "!!"},
        {"contentType": "image/png", "contentInBase64": "!!"},
        "x",
    ]
    assert fields_of(seed() | {"attachments": attachments}) == [
        "attachments[0]",
        "attachments[1].contentInBase64",
        "attachments[2].contentInBase64",
        "attachments[3].contentInBase64",
        "attachments[4]",
    ]


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_idempotency_key_empty_or_over_200_characters_is_refused_naming_the_header(key: str) -> None:
    with pytest.raises(RequestInvalid) as refused:
        idempotency_key(key)
    assert [e.field for e in refused.value.errors] == ["Idempotency-Key"]
    assert idempotency_key(None) is None and idempotency_key("k" * 200) == "k" * 200
