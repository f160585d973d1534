"""The campaign's rules as pure functions: statuses, counting each chunk once, cancelling, found sent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mms_tracker.domain.campaign import (
    CampaignStatus,
    cancel,
    chunk_done,
    chunk_failed,
    count_chunk,
    count_found_sent,
    mark_enqueued,
)

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(minutes=5)
COUNTERS = ("sent", "accepted", "rejected", "failedToSend")


def campaign(chunks: int = 3, status: str = "Queued") -> dict[str, Any]:
    return {
        "campaignId": "c1",
        "status": status,
        "chunks": chunks,
        "chunksCounted": 0,
        "chunksDone": "",
        "chunksFailed": "",
        "chunksSkipped": "",
        "sent": 0,
        "accepted": 0,
        "rejected": 0,
        "failedToSend": 0,
        "completedAt": None,
        "reason": None,
    }


def sent(accepted: int, size: int = 100) -> dict[str, int]:
    return {"sent": size, "accepted": accepted, "rejected": size - accepted}


def test_statuses_are_the_strings_the_api_shows() -> None:
    assert [s.value for s in CampaignStatus] == ["Queued", "Sending", "Completed", "CompletedWithErrors", "Cancelled"]
    assert CampaignStatus.COMPLETED == "Completed"


def test_counting_a_chunk_does_not_modify_its_input() -> None:
    before = campaign()
    count_chunk(before, 0, T0, sent(100))
    assert before == campaign()


def test_first_chunk_counted_moves_the_job_to_sending() -> None:
    after = count_chunk(campaign(), 1, T0, sent(90))
    assert after is not None
    assert (after["status"], after["sent"], after["accepted"], after["rejected"]) == ("Sending", 100, 90, 10)
    assert chunk_done(after, 1) and not chunk_done(after, 0)
    assert after["completedAt"] is None


def test_a_chunk_counted_twice_is_counted_once() -> None:
    after = count_chunk(campaign(), 0, T0, sent(100))
    assert after is not None
    assert count_chunk(after, 0, LATER, sent(100)) is None


def test_last_chunk_completes_the_job_at_that_time() -> None:
    state: dict[str, Any] | None = campaign(chunks=2)
    for index in (1, 0):
        assert state is not None
        state = count_chunk(state, index, T0 if index else LATER, sent(100))
    assert state is not None
    assert (state["status"], state["completedAt"]) == ("Completed", LATER)


def test_a_chunk_failed_to_send_completes_the_job_with_errors_and_keeps_the_first_reason() -> None:
    state = count_chunk(campaign(chunks=2), 0, T0, {"failedToSend": 100}, reason="first")
    assert state is not None and chunk_failed(state, 0)
    state = count_chunk(state, 1, LATER, {"failedToSend": 100}, reason="second")
    assert state is not None
    assert (state["status"], state["failedToSend"], state["reason"]) == ("CompletedWithErrors", 200, "first")


def test_cancel_stops_a_running_job_but_not_a_finished_one() -> None:
    cancelled = cancel(campaign(status="Sending"))
    assert cancelled is not None
    assert (cancelled["status"], cancelled["reason"]) == ("Cancelled", "Cancelled by the client.")
    for finished in ("Completed", "CompletedWithErrors", "Cancelled"):
        assert cancel(campaign(status=finished)) is None


def test_a_cancelled_job_counting_its_last_chunk_stays_cancelled_and_is_completed() -> None:
    state = count_chunk(campaign(chunks=1, status="Cancelled"), 0, T0, {}, skipped=True)
    assert state is not None
    assert (state["status"], state["completedAt"], state["sent"]) == ("Cancelled", T0, 0)


def test_enqueued_is_recorded_once() -> None:
    state = mark_enqueued(campaign())
    assert state is not None and state["enqueued"] is True
    assert mark_enqueued(state) is None


def test_a_failed_chunk_found_sent_moves_once_and_the_job_completes() -> None:
    state = count_chunk(campaign(chunks=1), 0, T0, {"failedToSend": 100}, reason="timeout")
    assert state is not None
    moved, did = count_found_sent(state, 0, 100, 97, LATER)
    assert did and moved is not None
    assert (moved["failedToSend"], moved["sent"], moved["accepted"], moved["rejected"]) == (0, 100, 97, 3)
    assert (moved["status"], moved["recovered"], moved["firstReason"]) == ("Completed", 100, "timeout")
    assert not chunk_failed(moved, 0)
    assert count_found_sent(moved, 0, 100, 97, LATER) == (None, False)


def test_a_chunk_skipped_as_cancelled_found_sent_is_counted_and_the_job_stays_cancelled() -> None:
    state = count_chunk(campaign(chunks=1, status="Cancelled"), 0, T0, {}, skipped=True)
    assert state is not None
    moved, did = count_found_sent(state, 0, 10, 4, LATER)
    assert did and moved is not None
    assert (moved["status"], moved["sent"], moved["accepted"], moved["rejected"]) == ("Cancelled", 10, 4, 6)
    assert count_found_sent(moved, 0, 10, 4, LATER) == (None, False)


def test_a_chunk_outside_the_job_found_sent_changes_nothing() -> None:
    assert count_found_sent(campaign(chunks=2), 2, 10, 4, T0) == (None, False)
    assert count_found_sent(campaign(chunks=2), -1, 10, 4, T0) == (None, False)


def test_a_chunk_not_counted_yet_found_sent_is_counted_as_sent() -> None:
    moved, did = count_found_sent(campaign(chunks=2), 1, 10, 4, T0)
    assert not did and moved is not None
    assert (moved["status"], moved["sent"], moved["accepted"], chunk_done(moved, 1)) == ("Sending", 10, 4, True)


# One event per delivery: ("sent", chunk, accepted) | ("failed", chunk) | ("found", chunk, accepted) | ("cancel",)
_CHUNKS = 10
_SIZE = 7
events = st.lists(
    st.one_of(
        st.tuples(st.just("sent"), st.integers(0, _CHUNKS - 1), st.integers(0, _SIZE)),
        st.tuples(st.just("failed"), st.integers(0, _CHUNKS - 1), st.just(0)),
        st.tuples(st.just("found"), st.integers(0, _CHUNKS - 1), st.integers(0, _SIZE)),
        st.tuples(st.just("cancel"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_counters_never_go_down_but_a_moved_failure_and_each_chunk_is_counted_once(
    history: list[tuple[str, int, int]],
) -> None:
    state: dict[str, Any] = campaign(chunks=_CHUNKS)
    counted: set[int] = set()
    for kind, index, accepted in history:
        before = state
        if kind == "sent":
            new = count_chunk(state, index, T0, sent(accepted, _SIZE))
        elif kind == "failed":
            new = count_chunk(state, index, T0, {"failedToSend": _SIZE}, reason="gave up")
        elif kind == "found":
            new, _ = count_found_sent(state, index, _SIZE, accepted, T0)
        else:
            new = cancel(state)
        state = new if new is not None else state
        if kind in ("sent", "failed", "found"):
            counted.add(index)
        assert state["chunksCounted"] == len(counted) == sum(chunk_done(state, i) for i in range(_CHUNKS))
        for name in ("sent", "accepted", "rejected", "recovered"):
            assert state.get(name, 0) >= before.get(name, 0)
        # failedToSend only goes down when a failed chunk is found sent, by that chunk's size, into sent
        if state["failedToSend"] < before["failedToSend"]:
            assert kind == "found"
            assert before["failedToSend"] - state["failedToSend"] == _SIZE
            assert state["sent"] - before["sent"] == _SIZE
        # every recipient of a counted chunk is counted exactly once somewhere, never more
        assert state["accepted"] + state["rejected"] == state["sent"]
        assert state["sent"] + state["failedToSend"] <= _SIZE * len(counted)
        if state["chunksCounted"] == _CHUNKS:
            assert state["status"] in ("Completed", "CompletedWithErrors", "Cancelled")
            assert state["status"] != "CompletedWithErrors" or state["failedToSend"] > 0
