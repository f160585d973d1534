"""Opt-out keywords, the pair state rule, and the SMSReceived parser."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mms_tracker.domain.inbound import inbound_from, parse_inbound_envelope
from mms_tracker.domain.optout import (
    OptOut,
    OptOutSource,
    PairMismatch,
    apply,
    classify,
    is_opted_out,
)
from mms_tracker.domain.reports import PoisonEvent

SENDER = "+18005550100"
RECIPIENT = "+14255550123"
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

# Opt-out keywords: AWS End User Messaging SMS, "Required opt-out keywords"
# (https://docs.aws.amazon.com/sms-voice/latest/userguide/keywords-required.html: CANCEL, END, OPT-OUT,
# OPTOUT, QUIT, STOP, UNSUBSCRIBE), Twilio "Twilio support for opt-out keywords (SMS STOP filtering)"
# (https://support.twilio.com/hc/en-us/articles/223134027: STOPALL; opt-in START, YES, UNSTOP; single-word
# messages only), and the CTIA Messaging Principles (REVOKE), as issue 27 lists them.
OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT", "REVOKE"]
OPT_IN = ["START", "UNSTOP", "YES"]


@pytest.mark.parametrize("word", OPT_OUT)
def test_every_opt_out_keyword_in_any_case_and_padding_opts_out(word: str) -> None:
    for text in (word, word.lower(), word.title(), f"  {word}\n", f"\t{word.lower()} "):
        keyword = classify(text)
        assert keyword is not None and keyword.opts_out and keyword.word == word


@pytest.mark.parametrize("word", OPT_IN)
def test_every_opt_in_keyword_opts_in(word: str) -> None:
    keyword = classify(f" {word.lower()} ")
    assert keyword is not None and not keyword.opts_out and keyword.word == word


@pytest.mark.parametrize(
    "text",
    [
        "please stop by",
        "STOP PLEASE",
        "stop.",
        "st op",
        "",
        "   ",
        None,
        "HELP",
        "\u017ftop",  # long s: upper-cases to STOP
        "\uff33\uff34\uff2f\uff30",  # full-width STOP
        "STOP\u200b",
        "OPT OUT",
    ],
)
def test_any_other_text_is_no_keyword(text: str | None) -> None:
    assert classify(text) is None


def change(
    opted_out: bool,
    at: dt.datetime,
    *,
    ticks: int = 0,
    source: OptOutSource = OptOutSource.REPLY,
    keyword: str | None = None,
    recipient: str = RECIPIENT,
) -> OptOut:
    return OptOut(SENDER, recipient, opted_out, source, keyword or ("STOP" if opted_out else "START"), at, ticks)


def test_later_start_reverses_earlier_stop_and_late_stop_arriving_after_does_not() -> None:
    stop = change(True, T0)
    start = change(False, T0 + dt.timedelta(seconds=5))
    assert not is_opted_out(apply(apply(None, stop), start))
    assert not is_opted_out(apply(apply(None, start), stop))  # the older STOP arrives last: START still wins


def test_seventh_fractional_digit_orders_two_changes() -> None:
    stop = change(True, T0, ticks=3)
    start = change(False, T0, ticks=2)
    assert is_opted_out(apply(start, stop)) and is_opted_out(apply(stop, start))


def test_tie_at_same_instant_keeps_the_opt_out_whatever_the_order() -> None:
    stop = change(True, T0)
    start = change(False, T0)
    assert apply(stop, start) == apply(start, stop) == stop


def test_redelivery_is_idempotent() -> None:
    stop = change(True, T0)
    assert apply(stop, stop) is stop


def test_no_state_is_not_opted_out() -> None:
    assert not is_opted_out(None)


def test_a_change_of_another_pair_is_refused() -> None:
    with pytest.raises(PairMismatch):
        apply(change(True, T0), change(False, T0, recipient="+14255550999"))


changes = st.builds(
    change,
    st.booleans(),
    st.integers(0, 5).map(lambda s: T0 + dt.timedelta(seconds=s)),
    ticks=st.integers(0, 9),
    source=st.sampled_from(list(OptOutSource)),
    keyword=st.sampled_from([None, *OPT_OUT, *OPT_IN]),
)


@given(st.lists(changes, min_size=1, max_size=8), st.randoms())
def test_final_state_is_the_latest_changes_state_whatever_the_arrival_order(events: list[OptOut], rnd: object) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    redelivered = shuffled + shuffled[: len(shuffled) // 2]
    state: OptOut | None = None
    for event in redelivered:
        state = apply(state, event)
    latest = max(events, key=lambda e: (e.changed_at, e.changed_extra_ticks))
    assert state is not None
    assert (state.changed_at, state.changed_extra_ticks) == (latest.changed_at, latest.changed_extra_ticks)
    if all(e.opted_out == latest.opted_out for e in events if e.order()[:2] == latest.order()[:2]):
        assert state.opted_out == latest.opted_out
    for order in itertools.islice(itertools.permutations(events), 6):
        final: OptOut | None = None
        for event in order:
            final = apply(final, event)
        assert final == state


# AcsSmsReceivedEventData (Azure/azure-rest-api-specs, specification/eventgrid/data-plane/
# Microsoft.Communication/): messageId, from, to, message, receivedTimestamp; type Microsoft.Communication.SMSReceived.
def data(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "messageId": "Incoming_20200918002745d29ebbea-3341-4466-9690-0a03af35228e",
        "from": "15555555555",
        "to": "15555555556",
        "message": "Stop ",
        "receivedTimestamp": "2020-09-18T00:27:45.32Z",
    }
    fields.update(overrides)
    return fields


def test_event_grid_schema_stop_reply_becomes_an_opt_out_of_the_pair() -> None:
    reply = parse_inbound_envelope(
        {
            "id": "e1",
            "eventType": "Microsoft.Communication.SMSReceived",
            "data": data(),
            "subject": "/phonenumber/15555555555",
        }
    )
    assert (reply.sender, reply.recipient) == ("+15555555556", "+15555555555")
    made = reply.change()
    assert made is not None and made.opted_out and made.keyword == "STOP" and made.source is OptOutSource.REPLY
    assert made.changed_at == dt.datetime(2020, 9, 18, 0, 27, 45, 320000, tzinfo=dt.UTC)


def test_cloudevents_schema_and_any_casing_parse_alike() -> None:
    upper = {
        k[0].upper() + k[1:]: v
        for k, v in data(message="unstop", receivedTimestamp="2020-09-18T00:27:45.3200007Z").items()
    }
    reply = parse_inbound_envelope(
        {"ID": "e2", "TYPE": "microsoft.communication.smsreceived", "specversion": "1.0", "Data": upper}
    )
    made = reply.change()
    assert made is not None and not made.opted_out and made.keyword == "UNSTOP" and made.changed_extra_ticks == 7


def test_other_text_parses_but_changes_nothing_and_keeps_no_body() -> None:
    reply = inbound_from("e3", "Microsoft.Communication.SMSReceived", data(message="please stop by at 5, code 1234"))
    assert reply.change() is None
    assert "1234" not in repr(reply)


@pytest.mark.parametrize(
    ("event_type", "payload", "reason"),
    [
        ("Microsoft.Communication.SMSDeliveryReportReceived", data(), "unknown event type"),
        ("Microsoft.Communication.SMSReceived", "not json", "data is not JSON"),
        ("Microsoft.Communication.SMSReceived", data(messageId=None), "no messageId"),
        ("Microsoft.Communication.SMSReceived", data(to=""), "no from or no to"),
        ("Microsoft.Communication.SMSReceived", data(receivedTimestamp=None), "no receivedTimestamp"),
        ("Microsoft.Communication.SMSReceived", data(receivedTimestamp="yesterday"), "unreadable timestamp"),
        ("Microsoft.Communication.SMSReceived", data(**{"from": "1" * 70}), "not a phone number"),
    ],
)
def test_unprocessable_inbound_events_are_poison(event_type: str, payload: object, reason: str) -> None:
    with pytest.raises(PoisonEvent, match=reason):
        inbound_from("e4", event_type, payload)
