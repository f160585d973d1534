"""``make bench``'s export memory: the CSV of a tag of a million messages, without storage.

Seeding a million records into Azurite takes most of an hour here, so this measures what the app
itself holds while it streams: the real route (``GET /api/tags/{tag}/messages.csv``) in the real
local host, in this process, over a socket, against a stand-in store whose ``list_tag`` makes each
page of records when it is asked for (1,000 a page, as from Table Storage) and keeps none. The
client reads the body as a stream and drops it. Each size runs in a fresh interpreter
(``python -m localdev.bench.export --rows N`` prints one JSON line): its peak RSS (``VmHWM``),
reset through ``/proc/self/clear_refs`` once the server is up, less its RSS then.

If the export held the CSV or the records, the growth would rise with the rows (about 154 bytes a
row for the text alone: 147 MiB at a million); streamed, it stays that of one page.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from aiohttp.test_utils import TestServer

from mms_tracker.domain import Send, Status, TrackingRecord, apply_send
from mms_tracker.runtime import RUNTIME
from mms_tracker.service.ports import Page
from mms_tracker.settings import Settings

from ..host import LocalHost, index_functions
from .stack import reset_peak, status_kib

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
SIZES = (10_000, 100_000, 1_000_000)
ENVIRONMENT = {
    "TRACKING_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",  # never reached: the store is replaced
    "ACS_CONNECTION_STRING": "endpoint=http://127.0.0.1:9/;accesskey=" + "A" * 44,
    "MMS_SENDERS": "+18004567891",
}


class GeneratedTag:
    """The one store call the export makes, answered with records made page by page, none kept."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    async def list_tag(self, tag: str, status: Status | None, page_size: int, continuation_token: str | None) -> Page:
        start = int(continuation_token or 0)
        end = min(start + page_size, self.rows)
        items = [_record(i, tag) for i in range(start, end)]
        return Page(items, str(end) if end < self.rows else None)


def _record(i: int, tag: str) -> TrackingRecord:
    send = Send(f"{i:08d}-5a0c-4a3e-9d5b-{i:012d}", f"+1833{i % 10_000_000:07d}", "+18004567891", tag, True, T0)
    return apply_send(None, send, T0).after


async def measure(rows: int) -> dict[str, Any]:
    """Stream the export of ``rows`` generated records and report time, size and RSS growth."""
    import function_app

    RUNTIME.configure(Settings.from_environment(ENVIRONMENT), store=GeneratedTag(rows))  # type: ignore[arg-type]
    server = TestServer(LocalHost(index_functions(function_app.app), run_timers=False).build())
    await server.start_server()
    try:
        async with httpx.AsyncClient(timeout=600) as http:
            url = str(server.make_url("/api/tags/bench/messages.csv"))
            reset_peak()
            before = status_kib("self", "VmRSS")
            started = time.perf_counter()
            size, lines = 0, 0
            async with http.stream("GET", url) as response:
                response.raise_for_status()
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    lines += chunk.count(b"\n")  # a CRLF may be split between two reads
            seconds = time.perf_counter() - started
            peak = status_kib("self", "VmHWM")
    finally:
        await server.close()
    if lines != rows + 1:
        raise AssertionError(f"the CSV holds {lines - 1} rows, not {rows}")
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rss_before_mib": round(before / 1024, 1),
        "rss_growth_mib": round((peak - before) / 1024, 1),
    }


def export_memory(sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    """Each size in a fresh interpreter, smallest first."""
    results = []
    for rows in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "localdev.bench.export", "--rows", str(rows)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **ENVIRONMENT},
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localdev.bench.export")
    parser.add_argument("--rows", type=int, help="one size in this process (default: each of SIZES, each fresh)")
    args = parser.parse_args()
    if args.rows is None:
        for result in export_memory():
            print(json.dumps(result))
        return
    os.environ.update(ENVIRONMENT)
    print(json.dumps(asyncio.run(measure(args.rows))))


if __name__ == "__main__":
    main()
