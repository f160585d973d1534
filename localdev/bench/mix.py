"""``make bench``'s second baseline (issue 14): the same mix of raw operations as the app, same concurrency.

Per report the app does one point read of the record and, when the status moves, one
entity-group transaction on ``RecordsV2``: the record and its shard's counters (2 entities),
group-committed per partition (``docs/storage.md``). The raw equivalent, on a scratch table of
the same Azurite, with entities the size of the app's own (copied from its table):

- per event: at concurrency C, per report one ``get_entity`` of a record-sized entity, then one
  ``submit_transaction`` of 2 upserts in its partition (the record after the report, and a
  counter entity); 16 partitions (shards) as in the app;
- batched: per batch of B reports (B/in-flight as the endpoint: up to 32 reads at once, 4
  batches in flight), the B point reads, then one transaction per shard present in the batch
  (its records and one counter entity): group commit at its best within one request.

The timed loop reads entities seeded beforehand (untimed), as the app reads records already sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from .stack import BENCH_PREFIX, Stack, report_event, run_concurrently, summary

SHARDS = 16  # as mms_tracker.adapters.tables.encoding.SHARDS
BATCH_READS = 32  # as the batched endpoint's BATCH_CONCURRENCY
_REPLACE = {"mode": UpdateMode.REPLACE}


async def record_templates(stack: Stack, http: httpx.AsyncClient, accepted: str, reported: str) -> dict[str, Any]:
    """The app's own entities, as stored: the record ``accepted`` as seeded (what a report reads),
    the record ``reported`` after one report through the webhook (what it writes), and a shard's
    counters; keys and metadata left out."""
    from mms_tracker.adapters.tables.encoding import counter_entity, record_partition, record_row

    webhook = f"{stack.host}/runtime/webhooks/eventgrid?functionName=on_delivery_report"
    response = await http.post(webhook, json=[report_event(reported)], headers={"aeg-event-type": "Notification"})
    response.raise_for_status()
    async with TableClient.from_connection_string(stack.storage, table_name=f"{BENCH_PREFIX}RecordsV2") as records:
        read, write = [
            await records.get_entity(record_partition("bench", m), record_row(m)) for m in (accepted, reported)
        ]
    return {
        "read": _properties(read),
        "write": _properties(write),
        "counter": _properties(counter_entity("x", {"Accepted": 1, "Delivered": 1})),
    }


def _properties(entity: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(entity).items() if k not in ("PartitionKey", "RowKey")}


def _partition(i: int) -> str:
    return f"mix|{i % SHARDS:02d}"


def _row(i: int) -> str:
    return f"r|{i}"


async def _mix_table(stack: Stack, templates: dict[str, Any], reports: int) -> TableClient:
    """A fresh scratch table holding ``reports`` records to read, seeded in transactions (untimed)."""
    table = TableClient.from_connection_string(stack.storage, table_name="benchMix")
    await table.create_table()
    for shard in range(SHARDS):
        rows = list(range(shard, reports, SHARDS))
        for start in range(0, len(rows), 100):
            await table.submit_transaction(
                [
                    ("upsert", {"PartitionKey": _partition(i), "RowKey": _row(i), **templates["read"]}, _REPLACE)
                    for i in rows[start : start + 100]
                ]
            )
    return table


async def raw_mix_per_event(stack: Stack, templates: dict[str, Any], reports: int, concurrency: int) -> dict[str, Any]:
    """Per report: one point read, then one transaction of 2 upserts (record, counters), at ``concurrency``."""
    table = await _mix_table(stack, templates, reports)
    try:

        async def one(i: int) -> None:
            await table.get_entity(_partition(i), _row(i))
            await table.submit_transaction(
                [
                    ("upsert", {"PartitionKey": _partition(i), "RowKey": _row(i), **templates["write"]}, _REPLACE),
                    ("upsert", {"PartitionKey": _partition(i), "RowKey": "c", **templates["counter"]}, _REPLACE),
                ]
            )

        wall, lat = await run_concurrently(reports, concurrency, one)
        return summary(reports, wall, lat) | {"reads_per_report": 1, "transactions_per_report": 1}
    finally:
        await table.delete_table()
        await table.close()


async def raw_mix_batched(
    stack: Stack, templates: dict[str, Any], reports: int, batch: int, in_flight: int
) -> dict[str, Any]:
    """Per batch of ``batch`` reports: their point reads (32 at once), then one transaction per shard
    present (its records and the counters); ``in_flight`` batches at once, as the batched path runs."""
    table = await _mix_table(stack, templates, reports)
    batches = [list(range(start, min(start + batch, reports))) for start in range(0, reports, batch)]
    transactions = 0
    try:

        async def one_batch(b: int) -> None:
            nonlocal transactions
            rows = batches[b]
            await run_concurrently(
                len(rows), BATCH_READS, lambda j: table.get_entity(_partition(rows[j]), _row(rows[j]))
            )
            by_shard: dict[str, list[int]] = {}
            for i in rows:
                by_shard.setdefault(_partition(i), []).append(i)
            transactions += len(by_shard)
            await asyncio.gather(
                *(
                    table.submit_transaction(
                        [
                            ("upsert", {"PartitionKey": pk, "RowKey": _row(i), **templates["write"]}, _REPLACE)
                            for i in ids
                        ]
                        + [("upsert", {"PartitionKey": pk, "RowKey": "c", **templates["counter"]}, _REPLACE)]
                    )
                    for pk, ids in by_shard.items()
                )
            )

        wall, lat = await run_concurrently(len(batches), in_flight, one_batch)
        return summary(reports, wall, lat) | {
            "batch": batch,
            "requests_in_flight": in_flight,
            "transactions_per_batch": round(transactions / max(len(batches), 1), 1),
        }
    finally:
        await table.delete_table()
        await table.close()
