"""``make bench``: the app against the limits of this machine, each as a ratio measured in one run.

Starts the local stack (Azurite in memory, the ACS simulator, the local host) on free ports, then:

- ingest: N delivery reports (one per message, records already sent) posted to the webhook, one
  event per request, concurrency C, as Event Grid delivers to the Python trigger; and the same
  for the batched endpoint (``POST /api/events/delivery-reports``, B events per request); against
  the raw single-entity upsert rate of the same Azurite at the same concurrency;
- send: ``POST /api/messages`` with 100 recipients against the simulator, against the simulator
  call alone plus 100 raw concurrent upserts;
- read: ``GET /api/messages/{id}`` against a raw point read;
- memory: the local host's peak RSS (VmHWM) after ingest.

Results go to ``bench-results/<UTC time>.json``; ``docs/benchmarks.md`` summarises a run.
Options: ``--reports N`` (5000), ``--concurrency C`` (16), ``--batch B`` (100).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient

from mms_tracker.adapters.acs import AcsClient, HmacSigner

from . import simulator
from .bench_report import save_and_print
from .stack import ROOT, azurite_connection_string, stop_group, wait_for_port

REPORT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _run_concurrently(
    count: int, concurrency: int, one: Callable[[int], Awaitable[object]]
) -> tuple[float, list[float]]:
    """Run ``one(i)`` for i in range(count) with ``concurrency`` workers; return wall seconds and latencies."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            started = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _summary(count: int, wall: float, latencies: list[float]) -> dict[str, float]:
    return {
        "count": count,
        "seconds": round(wall, 3),
        "per_second": round(count / wall, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
    }


def _report(message_id: str, status: str = "Delivered") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return {
        "id": str(uuid.uuid4()),
        "topic": simulator.TOPIC,
        "subject": "/phonenumber/18335852071",
        "eventType": REPORT_TYPE,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": now,
        "data": {
            "messageId": message_id,
            "from": "+18004567891",
            "to": "+18335852071",
            "deliveryStatus": status,
            "deliveryStatusDetails": "No error.",
            "receivedTimestamp": now,
            "tag": "bench",
            "deliveryAttempts": [{"timestamp": now, "segmentsSucceeded": 1, "segmentsFailed": 0}],
        },
    }


class Stack:
    def __init__(self) -> None:
        self.ports = {
            k: _free_port()
            for k in (
                "LOCAL_HOST_PORT",
                "ACS_SIMULATOR_PORT",
                "AZURITE_BLOB_PORT",
                "AZURITE_QUEUE_PORT",
                "AZURITE_TABLE_PORT",
            )
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.ports['LOCAL_HOST_PORT']}"

    @property
    def storage(self) -> str:
        return azurite_connection_string(self.ports["AZURITE_TABLE_PORT"])

    def start(self) -> None:
        env = (
            os.environ
            | {k: str(v) for k, v in self.ports.items()}
            | {"AZURITE_LOCATION": "memory", "SIM_REPORT_DELAY_SECONDS": "3600", "TRACKING_TABLE_PREFIX": "bench"}
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localdev.stack"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.ports["LOCAL_HOST_PORT"], 90, self.process)
        deadline = time.monotonic() + 60
        while httpx.get(f"{self.host}/api/health").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the stack never became healthy")
            time.sleep(0.2)

    def host_pid(self) -> int | None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                if b"localdev.host" in cmdline and str(self.ports["LOCAL_HOST_PORT"]).encode() in cmdline:
                    return int(entry.name)
        return None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_group(self.process)


def _peak_rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


async def _seed_records(stack: Stack, ids: list[str], concurrency: int) -> None:
    """Records as the send path leaves them (Accepted, tag known), written through the app's own store."""
    from mms_tracker.domain import Send
    from mms_tracker.runtime import RUNTIME
    from mms_tracker.service.tracking import record_sends
    from mms_tracker.settings import Settings

    RUNTIME.configure(
        Settings.from_environment(
            {
                "TRACKING_STORAGE_CONNECTION_STRING": stack.storage,
                "TRACKING_TABLE_PREFIX": "bench",
                "ACS_CONNECTION_STRING": simulator.connection_string(stack.ports["ACS_SIMULATOR_PORT"]),
                "MMS_SENDERS": "+18004567891",
            }
        )
    )
    now = dt.datetime.now(dt.UTC)
    store = RUNTIME.store()
    chunk = 100
    await _run_concurrently(
        (len(ids) + chunk - 1) // chunk,
        concurrency,
        lambda i: record_sends(
            store,
            [Send(m, "+18335852071", "+18004567891", "bench", True, now) for m in ids[i * chunk : (i + 1) * chunk]],
            now,
            dt.timedelta(hours=72),
        ),
    )
    await RUNTIME.aclose()


async def bench(reports: int, concurrency: int, batch: int) -> dict[str, Any]:
    """Each ingest path on a fresh stack with its own raw baseline: Azurite slows as it fills, so
    paths measured one after the other on one stack would not be compared on equal terms."""
    results: dict[str, Any] = {}
    per_event = await _on_fresh_stack(lambda stack, http, raw: _per_event_phase(stack, http, raw, reports, concurrency))
    results.update(per_event)
    batched = await _on_fresh_stack(
        lambda stack, http, raw: _batched_phase(stack, http, raw, reports, concurrency, batch)
    )
    results.update(batched)
    return results


async def _on_fresh_stack(
    phase: Callable[[Stack, httpx.AsyncClient, Any], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    stack = Stack()
    stack.start()
    try:
        service = TableServiceClient.from_connection_string(stack.storage)
        raw = service.get_table_client("benchRaw")
        await raw.create_table()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with service, raw, httpx.AsyncClient(timeout=120, limits=limits) as http:
            return await phase(stack, http, raw)
    finally:
        stack.stop()


async def _raw_upserts(raw: Any, reports: int, concurrency: int, prefix: str) -> dict[str, float]:
    wall, lat = await _run_concurrently(
        reports,
        concurrency,
        lambda i: raw.upsert_entity(
            {"PartitionKey": f"{prefix}{i}", "RowKey": "r", "status": "Delivered", "n": i}, mode=UpdateMode.REPLACE
        ),
    )
    return _summary(reports, wall, lat)


async def _per_event_phase(
    stack: Stack, http: httpx.AsyncClient, raw: Any, reports: int, concurrency: int
) -> dict[str, Any]:
    results: dict[str, Any] = {"raw_upsert": await _raw_upserts(raw, reports, concurrency, "p")}
    ids = [f"bench-{uuid.uuid4()}" for _ in range(reports)]
    await _seed_records(stack, ids, concurrency)
    webhook = f"{stack.host}/runtime/webhooks/eventgrid?functionName=on_delivery_report"

    async def post_one(i: int) -> None:
        response = await http.post(webhook, json=[_report(ids[i])], headers={"aeg-event-type": "Notification"})
        response.raise_for_status()

    wall, lat = await _run_concurrently(reports, concurrency, post_one)
    results["ingest_per_event"] = _summary(reports, wall, lat) | {
        "ratio_to_raw": round(reports / wall / results["raw_upsert"]["per_second"], 3)
    }
    results["host_peak_rss_mib"] = _peak_rss_mib(stack.host_pid())

    sample = ids[: min(1000, reports)]
    wall, lat = await _run_concurrently(
        len(sample), concurrency, lambda i: _get_ok(http, f"{stack.host}/api/messages/{sample[i]}")
    )
    results["read"] = _summary(len(sample), wall, lat)
    wall, lat = await _run_concurrently(len(sample), concurrency, lambda i: raw.get_entity(f"p{i}", "r"))
    results["raw_point_read"] = _summary(len(sample), wall, lat)
    results["read"]["p50_ratio_to_raw"] = round(
        results["raw_point_read"]["p50_ms"] / max(results["read"]["p50_ms"], 0.001), 3
    )
    results["send"] = await _bench_send(stack, http, raw)
    return results


async def _batched_phase(
    stack: Stack, http: httpx.AsyncClient, raw: Any, reports: int, concurrency: int, batch: int
) -> dict[str, Any]:
    baseline = await _raw_upserts(raw, reports, concurrency, "b")
    ids = [f"bench-{uuid.uuid4()}" for _ in range(reports)]
    await _seed_records(stack, ids, concurrency)
    batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]

    async def post_batch(i: int) -> None:
        response = await http.post(
            f"{stack.host}/api/events/delivery-reports",
            json=[_report(m) for m in batches[i]],
            headers={"aeg-event-type": "Notification"},
        )
        response.raise_for_status()

    in_flight = max(1, min(4, len(batches)))
    wall, lat = await _run_concurrently(len(batches), in_flight, post_batch)
    return {
        "raw_upsert_batched_stack": baseline,
        "ingest_batched": _summary(reports, wall, lat)
        | {
            "batch": batch,
            "requests_in_flight": in_flight,
            "ratio_to_raw": round(reports / wall / baseline["per_second"], 3),
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
    args = parser.parse_args()
    results = asyncio.run(bench(args.reports, args.concurrency, args.batch))
    save_and_print(vars(args), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
