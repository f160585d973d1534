"""No sequence of storage faults leaves a counter or an index row without its record, nor an
accepted send without one (issue 19), against a real Azurite.

Every table request goes through a transport that fails the requests Hypothesis picks: before
they are sent (storage never saw them) or after (storage applied them; the answer was lost).
Sends (with their intents), reports, expiry and reconciler runs go through it concurrently, and
whatever fails is left as a caller would leave it: a report is redelivered later, as Event Grid
does; a send's client gets its answer or an error. Then, with storage healthy, the reports are
redelivered and the reconciler runs, and every invariant is checked:

- every message ACS accepted has its record, and every Accepted one its expiry entry;
- each tag's counters equal a recount of its records;
- every id pointer and every expiry entry points at a record;
- no intent is left, and ACS sent each recipient once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mms_tracker.adapters.tables.store import TableStore
from mms_tracker.domain import DeliveryReport, Status
from mms_tracker.service.ports import AcsError, StorageRejected, StorageUnavailable
from mms_tracker.service.reconciler import ReconcileDeps, reconcile_sends
from mms_tracker.service.sending import MmsRequest, Recipient, SendDeps, send_mms
from mms_tracker.service.tracking import expire_due, record_report
from tests.support import Azurite, nonzero

T0 = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=1)
LATER = T0 + dt.timedelta(minutes=5)


class FaultyTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core exports it lazily, untyped
    """azure-core's aiohttp transport, failing the requests numbered in ``faults``: ``before``
    (never sent) or ``after`` (sent and applied, the answer lost)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faults: dict[int, str] = {}
        self.count = 0

    async def send(self, request: Any, **config: Any) -> Any:
        self.count += 1
        fault = self.faults.get(self.count)
        if fault == "before":
            raise ServiceRequestError("injected: never sent")
        response = await super().send(request, **config)
        if fault == "after":
            await response.load_body()
            raise ServiceResponseError("injected: answer lost")
        return response


class Acs:
    """ACS by repeatability: a pair it answered gets the same answer again; counts what it sent."""

    def __init__(self) -> None:
        self.answered: dict[str, dict[str, Any]] = {}

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        value = []
        for r in payload["recipients"]:
            key = r["repeatabilityRequestId"]
            self.answered.setdefault(
                key, {"to": r["to"], "messageId": f"m-{uuid.uuid4().hex}", "httpStatusCode": 202, "successful": True}
            )
            value.append(self.answered[key])
        return {"value": value}


OPERATION = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 3)),  # recipients
    st.tuples(st.just("report"), st.sampled_from(["Delivered", "Failed"])),  # for the latest sent message
    st.tuples(st.just("expire")),
    st.tuples(st.just("reconcile")),
)
CASE = st.tuples(
    st.lists(st.lists(OPERATION, min_size=1, max_size=4), min_size=1, max_size=4),  # waves, run concurrently
    st.dictionaries(st.integers(1, 60), st.sampled_from(["before", "after"]), max_size=12),  # request -> fault
)


def draw() -> list[Any]:
    cases: list[Any] = []

    @settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(CASE)
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


async def run_case(azurite: Azurite, waves: list[list[tuple[Any, ...]]], faults: dict[int, str]) -> None:
    transport = FaultyTransport()
    prefix = "f" + uuid.uuid4().hex[:12]
    service = TableServiceClient.from_connection_string(
        azurite.connection_string, transport=transport, retry_total=0, use_env_settings=False
    )
    store = TableStore(service, prefix, 5.0)
    acs = Acs()
    tag = "faults"
    reports: list[DeliveryReport] = []
    try:
        await store.ensure_tables()
        transport.faults = {transport.count + n: kind for n, kind in faults.items()}

        async def one(op: tuple[Any, ...]) -> None:
            try:
                if op[0] == "send":
                    recipients = tuple(Recipient(f"+1555000{n:04d}") for n in range(op[1]))
                    request = MmsRequest("+18004567891", recipients, "hi", (), tag)
                    await send_mms(request, SendDeps(acs, store, store, WINDOW, intents=store, storage_budget=5), T0)
                elif op[0] == "report" and acs.answered:
                    message_id = list(acs.answered.values())[-1]["messageId"]
                    report = DeliveryReport(str(uuid.uuid4()), "t", message_id, op[1], op[1], LATER, tag=tag)
                    reports.append(report)
                    await record_report(store, report, LATER)
                elif op[0] == "expire":
                    await expire_due(store, T0 + dt.timedelta(minutes=30))
                elif op[0] == "reconcile":
                    await reconcile_sends(ReconcileDeps(store, acs, store, store), LATER, dt.timedelta(minutes=1))
            except (StorageUnavailable, StorageRejected, AcsError):
                pass  # the caller's problem: a client retries, Event Grid redelivers, a timer runs again

        for wave in waves:
            await asyncio.gather(*(one(op) for op in wave))

        transport.faults = {}  # storage is healthy again: redeliveries and the reconciler catch up
        for report in reports:
            await record_report(store, report, LATER)
        # a run that failed half-way left its claim (5 minutes): the next run after it takes over
        await reconcile_sends(
            ReconcileDeps(store, acs, store, store), LATER + dt.timedelta(minutes=6), dt.timedelta(minutes=1)
        )
        await check(store, acs, tag)
    finally:
        await store.close()


async def check(store: TableStore, acs: Acs, tag: str) -> None:
    accepted = {item["messageId"] for item in acs.answered.values()}
    records = {m: await store.get(m) for m in accepted}
    assert all(r is not None for r in records.values()), "an accepted send has no record"
    assert await store.intents_before(LATER + dt.timedelta(days=1), 100) == [], "an intent is left"
    listed = (await store.list_tag(tag, None, 1000, None)).items
    assert {r.message_id for r in listed} == accepted
    assert nonzero(await store.tag_counts(tag)) == dict(Counter(r.status.value for r in listed))
    pointers = [e async for e in store.ids.query_entities("RowKey eq 'p'")]
    assert {p.get("messageId") or p["PartitionKey"] for p in pointers} <= accepted | {None}
    for pointer in pointers:
        assert await store.get(pointer.get("messageId") or pointer["PartitionKey"]) is not None
    due_ids = {
        e["messageId"] async for e in store.due_table.query_entities("PartitionKey ne 'cursor'") if "messageId" in e
    }
    assert due_ids <= accepted, "an expiry entry without a record"
    for message_id, record in records.items():
        if record is not None and record.status is Status.ACCEPTED:
            assert message_id in due_ids, "an Accepted record that nothing will expire"


async def test_no_fault_sequence_leaves_a_counter_or_index_row_without_its_record(azurite: Azurite) -> None:
    for waves, faults in draw():
        await run_case(azurite, waves, faults)
