"""The phases of ``make bench`` and its command line (the package docstring lists them)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
import uuid
from typing import Any

import httpx
from azure.data.tables import UpdateMode

from mms_tracker.adapters.acs import AcsClient, HmacSigner

from .. import simulator
from ..stack import ROOT
from .backlog import backlog_phase, summary_line
from .campaign import campaign_phase
from .export import SIZES, export_memory
from .job import campaign_job_phase
from .mix import raw_mix_batched, raw_mix_per_event, record_templates
from .report import save_and_print
from .stack import (
    Stack,
    cpu_seconds,
    on_fresh_stack,
    peak_rss_mib,
    report_event,
    run_concurrently,
    seed_records,
    summary,
)

STATUS_EVENTS = {"on": (True,), "off": (False,), "both": (True, False)}


async def bench(
    reports: int,
    concurrency: int,
    batch: int,
    campaign: int,
    job: int = 10_000,
    export_rows: bool = True,
    status_events: str = "both",
    backlog: int = 0,
) -> dict[str, Any]:
    """Each ingest path on a fresh stack with its own raw baseline: Azurite slows as it fills, so
    paths measured one after the other on one stack would not be compared on equal terms.

    With status events on (``make run`` as shipped: the simulator's topic) the results sit at the
    top level; with them off (``STATUS_EVENTS_ENDPOINT`` empty) under ``status_events_off``."""
    results: dict[str, Any] = {}
    for events_on in STATUS_EVENTS[status_events]:
        paths: dict[str, Any] = {"status_events": events_on}
        paths.update(
            await on_fresh_stack(
                lambda stack, http, raw: _per_event_phase(stack, http, raw, reports, concurrency),
                status_events=events_on,
            )
        )
        paths.update(
            await on_fresh_stack(
                lambda stack, http, raw: _batched_phase(stack, http, raw, reports, concurrency, batch),
                status_events=events_on,
            )
        )
        if events_on:
            results.update(paths)
        else:
            results["status_events_off"] = paths
    results.update(
        await on_fresh_stack(lambda stack, http, raw: campaign_phase(stack, http, raw, campaign, concurrency))
    )
    if job:
        results.update(await on_fresh_stack(lambda stack, http, raw: campaign_job_phase(stack, http, raw, job)))
    if backlog:  # a read by id while a publish backlog drains (issue 28), status events on
        results.update(
            await on_fresh_stack(lambda stack, http, raw: backlog_phase(stack, http, raw, backlog, concurrency))
        )
    if export_rows:
        results["csv_export_memory"] = await asyncio.to_thread(export_memory, SIZES)
    return results


async def _raw_upserts(raw: Any, reports: int, concurrency: int, prefix: str) -> dict[str, float]:
    wall, lat = await run_concurrently(
        reports,
        concurrency,
        lambda i: raw.upsert_entity(
            {"PartitionKey": f"{prefix}{i}", "RowKey": "r", "status": "Delivered", "n": i}, mode=UpdateMode.REPLACE
        ),
    )
    return summary(reports, wall, lat)


async def _per_event_phase(
    stack: Stack, http: httpx.AsyncClient, raw: Any, reports: int, concurrency: int
) -> dict[str, Any]:
    results: dict[str, Any] = {"raw_upsert": await _raw_upserts(raw, reports, concurrency, "p")}
    ids = [f"bench-{uuid.uuid4()}" for _ in range(reports + 2)]  # the last two give the entities' sizes
    await seed_records(stack, ids, concurrency)
    templates = await record_templates(stack, http, accepted=ids[-2], reported=ids[-1])
    results["raw_mix_per_event"] = await raw_mix_per_event(stack, templates, reports, concurrency)
    webhook = f"{stack.host}/runtime/webhooks/eventgrid?functionName=on_delivery_report"

    async def post_one(i: int) -> None:
        response = await http.post(webhook, json=[report_event(ids[i])], headers={"aeg-event-type": "Notification"})
        response.raise_for_status()

    host = stack.host_pid()
    cpu_before = cpu_seconds(host)
    wall, lat = await run_concurrently(reports, concurrency, post_one)
    results["ingest_per_event"] = summary(reports, wall, lat) | {
        "host_cpu_ms_per_report": round((cpu_seconds(host) - cpu_before) * 1000 / reports, 2),
        "ratio_to_raw": round(reports / wall / results["raw_upsert"]["per_second"], 3),
        "ratio_to_raw_mix": round(reports / wall / results["raw_mix_per_event"]["per_second"], 3),
    }
    results["host_peak_rss_mib"] = peak_rss_mib(stack.host_pid())

    sample = ids[: min(1000, reports)]
    wall, lat = await run_concurrently(
        len(sample), concurrency, lambda i: _get_ok(http, f"{stack.host}/api/messages/{sample[i]}")
    )
    results["read"] = summary(len(sample), wall, lat)
    wall, lat = await run_concurrently(len(sample), concurrency, lambda i: raw.get_entity(f"p{i}", "r"))
    results["raw_point_read"] = summary(len(sample), wall, lat)
    results["read"]["p50_ratio_to_raw"] = round(
        results["raw_point_read"]["p50_ms"] / max(results["read"]["p50_ms"], 0.001), 3
    )
    results["send"] = await _bench_send(stack, http, raw)
    return results


async def _batched_phase(
    stack: Stack, http: httpx.AsyncClient, raw: Any, reports: int, concurrency: int, batch: int
) -> dict[str, Any]:
    baseline = await _raw_upserts(raw, reports, concurrency, "b")
    ids = [f"bench-{uuid.uuid4()}" for _ in range(reports + 2)]  # the last two give the entities' sizes
    await seed_records(stack, ids, concurrency)
    templates = await record_templates(stack, http, accepted=ids[-2], reported=ids[-1])
    ids = ids[:reports]
    batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    in_flight = max(1, min(4, len(batches)))
    mix = await raw_mix_batched(stack, templates, reports, batch, in_flight)

    async def post_batch(i: int) -> None:
        response = await http.post(
            f"{stack.host}/api/events/delivery-reports",
            json=[report_event(m) for m in batches[i]],
            headers={"aeg-event-type": "Notification"},
        )
        response.raise_for_status()

    host = stack.host_pid()
    cpu_before = cpu_seconds(host)
    wall, lat = await run_concurrently(len(batches), in_flight, post_batch)
    cpu_ms = round((cpu_seconds(host) - cpu_before) * 1000 / reports, 2)
    return {
        "raw_upsert_batched_stack": baseline,
        "raw_mix_batched": mix,
        "ingest_batched": summary(reports, wall, lat)
        | {
            "batch": batch,
            "requests_in_flight": in_flight,
            "host_cpu_ms_per_report": cpu_ms,
            "ratio_to_raw": round(reports / wall / baseline["per_second"], 3),
            "ratio_to_raw_mix": round(reports / wall / mix["per_second"], 3),
        },
    }


async def _get_ok(http: httpx.AsyncClient, url: str) -> None:
    (await http.get(url)).raise_for_status()


async def _bench_send(stack: Stack, http: httpx.AsyncClient, raw: Any) -> dict[str, Any]:
    rounds = 10
    body = json.loads((ROOT / "tests" / "fixtures" / "seed_send_request.json").read_text())
    body["recipients"] = [{"to": f"+1833585{n:04d}"} for n in range(100)]
    body["sendOptions"]["tag"] = "bench-send"
    app_times, base_times = [], []
    acs = AcsClient(
        f"http://127.0.0.1:{stack.ports['ACS_SIMULATOR_PORT']}", HmacSigner(base64.b64decode(simulator.ACCESS_KEY_B64))
    )
    try:
        for r in range(rounds):
            started = time.perf_counter()
            response = await http.post(f"{stack.host}/api/messages", json=body)
            response.raise_for_status()
            app_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            direct = await acs.send_mms(body | {"sendOptions": {"enableDeliveryReport": False}})
            await asyncio.gather(
                *(
                    raw.upsert_entity(
                        {"PartitionKey": f"s{r}-{n}", "RowKey": "r", "x": str(item)}, mode=UpdateMode.REPLACE
                    )
                    for n, item in enumerate(direct["value"])
                )
            )
            base_times.append(time.perf_counter() - started)
    finally:
        await acs.aclose()
    app_ms, base_ms = statistics.median(app_times) * 1000, statistics.median(base_times) * 1000
    return {
        "rounds": rounds,
        "recipients": 100,
        "app_median_ms": round(app_ms, 1),
        "baseline_median_ms": round(base_ms, 1),
        "ratio_baseline_to_app": round(base_ms / app_ms, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.bench")
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--campaign", type=int, default=20000)
    parser.add_argument("--job", type=int, default=10_000, help="recipients of the campaign job (0 skips it)")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV export's memory at up to 1,000,000 rows")
    parser.add_argument(
        "--status-events",
        choices=sorted(STATUS_EVENTS),
        default="both",
        help="the ingest paths with status-change events on (make run as shipped), off, or both (default)",
    )
    parser.add_argument(
        "--backlog", type=int, default=20_000, help="status events in the publish-backlog phase (0 skips it)"
    )
    args = parser.parse_args()
    results = asyncio.run(
        bench(
            args.reports,
            args.concurrency,
            args.batch,
            args.campaign,
            args.job,
            not args.no_export,
            args.status_events,
            args.backlog,
        )
    )
    save_and_print(vars(args), results)
    if "backlog" in results:
        print(summary_line(results["backlog"]))
    return 0
