"""Client ``repeatabilityRequestId`` claims in the real ``Requests`` table (Azurite).

A send claims each client id for its request (the fingerprint, no result) before calling ACS, and
releases the claim when ACS certainly took nothing. The release must remove only a claim, and only
the one it made: never a result written meanwhile, nor another request's claim.
"""

from __future__ import annotations

import asyncio
from typing import Any

ID_CHARS = "abc'/\\#?é😀"  # every key-hostile character the ids may hold after validation


async def test_a_release_removes_its_own_claim_and_never_a_result_or_another_claim(store: Any) -> None:
    mine, answered, theirs, absent = (f"{ID_CHARS}-{n}" for n in ("mine", "answered", "theirs", "absent"))
    await store.put_send_results(
        {
            mine: {"request": "fp-1"},
            answered: {"request": "fp-1", "item": {"to": "+15550003333", "successful": True}},
            theirs: {"request": "fp-2"},
        }
    )
    await store.release_send_claims({mine: "fp-1", answered: "fp-1", theirs: "fp-1", absent: "fp-1"})
    left = await store.get_send_results([mine, answered, theirs, absent])
    assert set(left) == {answered, theirs}
    assert left[answered]["item"]["successful"] is True and left[theirs] == {"request": "fp-2"}


async def test_a_claim_is_made_only_where_the_id_is_free_and_taken_where_another_request_holds_it(store: Any) -> None:
    free, same, other, answered_other, answered_same = (f"{ID_CHARS}-{n}" for n in range(5))
    await store.put_send_results(
        {
            same: {"request": "fp-1"},
            other: {"request": "fp-2"},
            answered_other: {"request": "fp-2", "item": {"successful": True}},
            answered_same: {"request": "fp-1", "item": {"successful": True}},
        }
    )
    made, taken = await store.claim_send_ids({k: "fp-1" for k in (free, same, other, answered_other, answered_same)})
    assert (made, taken) == ({free}, {other, answered_other})
    assert (await store.get_send_results([free]))[free] == {"request": "fp-1"}


async def test_two_requests_racing_for_one_id_one_claims_it_and_the_other_finds_it_taken(store: Any) -> None:
    for n in range(10):
        request_id = f"{ID_CHARS}-race-{n}"
        first, second = await asyncio.gather(
            store.claim_send_ids({request_id: "fp-a"}), store.claim_send_ids({request_id: "fp-b"})
        )
        assert sorted([first, second], key=lambda r: len(r[0])) == [(set(), {request_id}), ({request_id}, set())]
