"""``make bench``, the publish backlog (issue 28): a read by id while N status events drain.

On a fresh stack with status events on (the simulator's topic): N records for one tag are seeded
(untimed), then read by id at a few reads in flight while nothing else runs (idle). Then N
delivery reports are loaded through the batched endpoint (the fastest way in), each moving its
record to Delivered and so leaving one status-change event for the host's background publisher.
Reads by id go on while the reports load and after, until the simulator's topic has received the
N events (its ``/simulator/stats`` ``published`` count) or a deadline passes. Prints the idle p50,
the p50 while the backlog drains (after the load) and during the load, their ratio (the issue's
bound: within 3x) and the drain rate. ``python -m localdev.bench.backlog --events N`` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
import time
import uuid
from typing import Any

import httpx

from .report import write_record
from .stack import Stack, on_fresh_stack, percentile, report_event, run_concurrently, seed_records

READERS = 4  # reads by id in flight: a few clients looking records up, not a load of their own
IN_FLIGHT = 4  # batched requests in flight while loading, as the batched ingest phase
POLL_SECONDS = 0.5  # how often the topic's count is read
DRAIN_DEADLINE_SECONDS = 1800.0  # a publisher that never drains ends the phase, reported as not drained


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """Count, p50 and p95 in ms of ``latencies`` (seconds)."""
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
    }


def backlog_result(
    events: int, idle: list[float], loading: list[float], draining: list[float], timings: dict[str, float]
) -> dict[str, Any]:
    """The phase's figures: ``timings`` holds ``load_seconds``, ``drain_seconds`` (from the load's start
    to the last event received), ``published`` (events the topic received) and ``pending_at_load_end``."""
    idle_p50 = percentile(idle, 0.50)
    during = draining or loading  # drained before the load ended: the reads during the load are the figure
    return {
        "events": events,
        "idle_read": latency_summary(idle),
        "read_during_load": latency_summary(loading),
        "read_while_draining": latency_summary(draining),
        "p50_ratio_to_idle": round(percentile(during, 0.50) / idle_p50, 2) if idle_p50 and during else None,
        "ratio_measured_on": "while draining" if draining else "during load",
        "load_seconds": round(timings["load_seconds"], 2),
        "drain_seconds": round(timings["drain_seconds"], 2),
        "pending_at_load_end": int(timings["pending_at_load_end"]),
        "published": int(timings["published"]),
        "drained": timings["published"] >= events,
        "drain_events_per_second": round(timings["published"] / max(timings["drain_seconds"], 0.001), 1),
    }


async def _published(http: httpx.AsyncClient, stack: Stack) -> int:
    response = await http.get(f"http://127.0.0.1:{stack.ports['ACS_SIMULATOR_PORT']}/simulator/stats")
    response.raise_for_status()
    return int(response.json()["published"])


async def backlog_phase(
    stack: Stack, http: httpx.AsyncClient, raw: Any, events: int, concurrency: int, batch: int = 100
) -> dict[str, Any]:
    ids = [f"backlog-{uuid.uuid4()}" for _ in range(events)]
    await seed_records(stack, ids, concurrency)
    sample = ids[: min(events, 500)]

    async def read(i: int) -> None:
        (await http.get(f"{stack.host}/api/messages/{sample[i % len(sample)]}")).raise_for_status()

    _, idle = await run_concurrently(len(sample), READERS, read)
    before = await _published(http, stack)
    batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    loading: list[float] = []
    draining: list[float] = []
    state = {"loaded": False, "done": False}

    async def reader(offset: int) -> None:
        n = offset
        while not state["done"]:
            started = time.perf_counter()
            await read(n)
            (draining if state["loaded"] else loading).append(time.perf_counter() - started)
            n += READERS

    async def post_batch(i: int) -> None:
        response = await http.post(
            f"{stack.host}/api/events/delivery-reports",
            json=[report_event(m) for m in batches[i]],
            headers={"aeg-event-type": "Notification"},
        )
        response.raise_for_status()

    readers = [asyncio.create_task(reader(k)) for k in range(READERS)]
    try:
        started = time.perf_counter()
        load_seconds, _ = await run_concurrently(len(batches), IN_FLIGHT, post_batch)
        state["loaded"] = True
        published = await _published(http, stack) - before
        pending_at_load_end = events - published
        deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
        while published < events and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            published = await _published(http, stack) - before
        drain_seconds = time.perf_counter() - started
    finally:
        state["done"] = True
        await asyncio.gather(*readers)
    timings = {
        "load_seconds": load_seconds,
        "drain_seconds": drain_seconds,
        "published": published,
        "pending_at_load_end": pending_at_load_end,
    }
    return {"backlog": backlog_result(events, idle, loading, draining, timings)}


def summary_line(b: dict[str, Any]) -> str:
    return (
        f"publish backlog  : {b['events']} events; read by id p50 {b['idle_read']['p50_ms']} ms idle, "
        f"{b['read_while_draining']['p50_ms']} ms while draining ({b['read_while_draining']['count']} reads), "
        f"{b['read_during_load']['p50_ms']} ms during the load; ratio {b['p50_ratio_to_idle']} "
        f"({b['ratio_measured_on']}; goal <= 3); loaded in {b['load_seconds']} s, "
        f"{b['pending_at_load_end']} pending then; drained {b['drained']} after {b['drain_seconds']} s "
        f"= {b['drain_events_per_second']} events/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.bench.backlog")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16, help="seeding concurrency")
    args = parser.parse_args()
    results = asyncio.run(
        on_fresh_stack(lambda stack, http, raw: backlog_phase(stack, http, raw, args.events, args.concurrency))
    )
    record = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python -m localdev.bench.backlog", *sys.argv[1:]]),
        "results": results,
    }
    write_record(record, "-backlog")
    print(summary_line(results["backlog"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
