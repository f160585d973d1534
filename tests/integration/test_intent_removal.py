"""Review of issue 19 (attacker's probe): an intent whose removal stopped half-way.

``remove_intent`` deletes an intent's further rows first and its head last, in separate
requests. A send (or reconciler) whose storage fails or passes its budget between the two leaves
a head without its rows: ``intents_before`` reads the head, finds the rows missing ("removed
meanwhile") and skips it, every run, for ever; and since heads are cut to the batch limit
before they are read, such heads take the oldest slots of every run. Fails on main at 659321e.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import uuid
from typing import Any

from mms_tracker.adapters.tables.intents import SEPARATOR, intent_rows, minute_bucket
from mms_tracker.service.ports import SendIntent

T0 = dt.datetime(2026, 11, 29, 9, 0, 30, tzinfo=dt.UTC)


def intent(attachment_bytes: int, created_at: dt.datetime) -> SendIntent:
    content = base64.b64encode(random.randbytes(attachment_bytes)).decode()
    payload = {
        "from": "+18004567891",
        "recipients": [
            {"to": "+15550003333", "repeatabilityRequestId": str(uuid.uuid4()), "repeatabilityFirstSent": "x"}
        ],
        "attachments": [{"contentType": "image/png", "contentInBase64": content}],
        "sendOptions": {"enableDeliveryReport": True, "tag": "t"},
    }
    return SendIntent(uuid.uuid4().hex, created_at, created_at + dt.timedelta(hours=72), payload)


async def test_an_intent_whose_removal_stopped_half_way_neither_lingers_nor_hides_later_intents(store: Any) -> None:
    stuck = intent(1_800_000, T0)  # incompressible: two rows
    later = intent(10, T0 + dt.timedelta(minutes=1))
    assert len(intent_rows(stuck)) == 2
    await store.put_intent(stuck)
    await store.put_intent(later)
    # remove_intent's first step landed, its last did not (storage failed or the budget passed)
    await store.intents.delete_entity(minute_bucket(T0), f"{stuck.intent_id}{SEPARATOR}1")

    found = await store.intents_before(T0 + dt.timedelta(minutes=5), 1)
    assert [i.intent_id for i in found] == [later.intent_id], "a half-removed intent takes the run's only slot"


async def test_the_largest_intent_allowed_is_written_and_read_back_whole(store: Any) -> None:
    largest = intent(2_400_000, T0)  # about 2.42 MB compressed: three rows, one transaction
    assert len(intent_rows(largest)) == 3
    await store.put_intent(largest)
    [found] = await store.intents_before(T0 + dt.timedelta(minutes=1), 10)
    assert found == largest
    await store.remove_intent(largest)
    assert await store.intents_before(T0 + dt.timedelta(minutes=1), 10) == []
