"""``make bench``'s shared parts: the local stack on free ports, timing helpers, and seeding records."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables.aio import TableServiceClient

from .. import simulator
from ..stack import ROOT, azurite_connection_string, stop_group, wait_for_port

REPORT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"
BENCH_PREFIX = "bench"  # TRACKING_TABLE_PREFIX of the bench's stack
SENDER = "+18004567891"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run_concurrently(
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


def summary(count: int, wall: float, latencies: list[float]) -> dict[str, float]:
    return {
        "count": count,
        "seconds": round(wall, 3),
        "per_second": round(count / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


def report_event(message_id: str, status: str = "Delivered", tag: str = "bench") -> dict[str, Any]:
    """An Event Grid delivery report for ``message_id``, as ACS sends it."""
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
            "from": SENDER,
            "to": "+18335852071",
            "deliveryStatus": status,
            "deliveryStatusDetails": "No error.",
            "receivedTimestamp": now,
            "tag": tag,
            "deliveryAttempts": [{"timestamp": now, "segmentsSucceeded": 1, "segmentsFailed": 0}],
        },
    }


class Stack:
    def __init__(self, *, status_events: bool = True) -> None:
        self.status_events = status_events  # False: STATUS_EVENTS_ENDPOINT empty, no topic, no outbox
        self.ports = {
            k: free_port()
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
            | {"AZURITE_LOCATION": "memory", "SIM_REPORT_DELAY_SECONDS": "3600", "TRACKING_TABLE_PREFIX": BENCH_PREFIX}
            | ({} if self.status_events else {"STATUS_EVENTS_ENDPOINT": "", "STATUS_EVENTS_KEY": ""})
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


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of ``pid`` and every process under it, from ``/proc`` (0 if gone).

    The host runs the app in its own process; its children (none today) are counted too, so a
    worker process split off later is still billed here, as Flex Consumption bills it."""
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state, ppid, ... utime is field 14 and stime 15 of proc(5), here 11 and 12
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        stats[int(entry.name)] = (int(fields[11]), int(fields[12]))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        utime, stime = stats.get(current, (0, 0))
        total += utime + stime
        todo.extend(children.get(current, []))
    return total / tick


def reset_peak(pid: int | str = "self") -> None:
    """Reset ``VmHWM`` to the current RSS of ``pid`` (``"self"``: this process; Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def status_kib(pid: int | str, field: str) -> int:
    """One ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def peak_rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return round(status_kib(pid, "VmHWM") / 1024, 1)
    except AssertionError:
        return None


async def seed_records(stack: Stack, ids: list[str], concurrency: int, tag: str = "bench") -> None:
    """Records as the send path leaves them (Accepted, tag known), written through the app's own store."""
    from mms_tracker.domain import Send
    from mms_tracker.runtime import RUNTIME
    from mms_tracker.service.tracking import record_sends
    from mms_tracker.settings import Settings

    RUNTIME.configure(
        Settings.from_environment(
            {
                "TRACKING_STORAGE_CONNECTION_STRING": stack.storage,
                "TRACKING_TABLE_PREFIX": BENCH_PREFIX,
                "ACS_CONNECTION_STRING": simulator.connection_string(stack.ports["ACS_SIMULATOR_PORT"]),
                "MMS_SENDERS": SENDER,
            }
        )
    )
    now = dt.datetime.now(dt.UTC)
    store = RUNTIME.store()
    chunk = 100
    await run_concurrently(
        (len(ids) + chunk - 1) // chunk,
        concurrency,
        lambda i: record_sends(
            store,
            [Send(m, "+18335852071", SENDER, tag, True, now) for m in ids[i * chunk : (i + 1) * chunk]],
            now,
            dt.timedelta(hours=72),
        ),
    )
    await RUNTIME.aclose()


async def on_fresh_stack(
    phase: Callable[[Stack, httpx.AsyncClient, Any], Awaitable[dict[str, Any]]],
    *,
    status_events: bool = True,
) -> dict[str, Any]:
    stack = Stack(status_events=status_events)
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
