"""The small text rules of ``domain/text.py``: each written once, each a specification here."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mms_tracker.domain.text import (
    ELLIPSIS,
    clip,
    content_fingerprint,
    has_surrogate,
    iso_z,
    opt_iso_z,
    without_surrogates,
)

# Code points from every plane (0 to 16), lone surrogates included (category Cs): JSON can carry them.
ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=80)
LIMITS = st.integers(min_value=1, max_value=100)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, LIMITS)
def test_clip_never_exceeds_its_limit_and_keeps_short_text_whole(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
    else:
        assert clipped == text[: limit - 1] + ELLIPSIS


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, LIMITS)
def test_clip_never_splits_a_character_so_clean_text_stays_encodable(text: str, limit: int) -> None:
    clipped = clip(without_surrogates(text), limit)
    assert not has_surrogate(clipped)
    assert clipped.encode("utf-8").decode("utf-8") == clipped  # no half of a pair left to fail UTF-8
    assert clipped.encode("utf-16-le").decode("utf-16-le") == clipped


def test_clip_counts_an_astral_character_as_one() -> None:
    assert clip("\U0001f600" * 3, 2) == "\U0001f600" + ELLIPSIS
    assert clip("ab\U0010fffd", 3) == "ab\U0010fffd"
    assert clip(None, 5) is None
    assert ELLIPSIS == "…"


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_without_surrogates_replaces_only_lone_surrogates(text: str) -> None:
    cleaned = without_surrogates(text)
    assert not has_surrogate(cleaned)
    assert len(cleaned) == len(text)
    assert all(c == d or (0xD800 <= ord(c) <= 0xDFFF and d == "\ufffd") for c, d in zip(text, cleaned, strict=True))
    cleaned.encode("utf-8")  # valid unicode text: encodes without error


def test_has_surrogate_finds_each_end_of_the_range() -> None:
    assert has_surrogate("a\ud800") and has_surrogate("\udfffb")
    assert not has_surrogate("\ud7ff\ue000\U00010000")


# Fixed offsets (a zone's skipped or repeated local hour has no one moment), years that stay in range in UTC.
OFFSETS = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@given(st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 1, 1), timezones=OFFSETS))
def test_iso_z_is_utc_with_z_and_reads_back_as_the_same_moment(value: dt.datetime) -> None:
    text = iso_z(value)
    assert text.endswith("Z") and "+" not in text
    assert dt.datetime.fromisoformat(text.replace("Z", "+00:00")) == value


def test_iso_z_writes_a_fixed_form() -> None:
    moment = dt.datetime(2026, 1, 2, 4, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert iso_z(moment) == "2026-01-02T03:04:05.123456Z"
    assert opt_iso_z(moment) == iso_z(moment)
    assert opt_iso_z(None) is None


def test_content_fingerprint_is_the_stored_rule() -> None:
    """Changing this rule would make every stored idempotency and repeatability claim look like another request."""
    attachments = [{"contentType": "image/png", "contentInBase64": "aGk="}]
    digest = hashlib.sha256(b"aGk=").hexdigest()
    expected = hashlib.sha256(json.dumps(["+18005550100", "hi", [["image/png", digest]]]).encode()).hexdigest()
    assert content_fingerprint(["+18005550100", "hi"], attachments) == expected


@given(st.lists(st.text(max_size=5), max_size=4), st.lists(st.text(max_size=5), max_size=4))
def test_content_fingerprint_tells_other_content_apart(a: list[str], b: list[str]) -> None:
    same = content_fingerprint(a, []) == content_fingerprint(b, [])
    assert same == (a == b)


def test_content_fingerprint_sees_each_attachment() -> None:
    one = [{"contentType": "image/png", "contentInBase64": "aGk="}]
    other = [{"contentType": "image/png", "contentInBase64": "aGo="}]
    assert content_fingerprint(["x"], one) != content_fingerprint(["x"], other)
    assert content_fingerprint(["x"], one) != content_fingerprint(["x"], [])
