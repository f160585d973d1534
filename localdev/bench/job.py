"""``make bench``, the campaign job: one campaign of N recipients through the queue worker and the simulator.

Measures the wall time from ``POST /api/campaigns`` to ``Completed``, and the ACS request rate the
worker achieved against ``CAMPAIGN_SENDS_PER_SECOND`` (the throttle bounds it: N / 100 requests
cannot take less than N / 100 / rate seconds from one sender). ``python -m localdev.bench.job``
runs it alone on a fresh stack (``--recipients N``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import platform
import sys
import time
from typing import Any

import httpx

from .report import write_record
from .stack import Stack, on_fresh_stack

DEFAULT_RATE = 10.0  # CAMPAIGN_SENDS_PER_SECOND's default; the stack runs with it


async def campaign_job_phase(stack: Stack, http: httpx.AsyncClient, raw: Any, recipients: int) -> dict[str, Any]:
    body = {
        "from": "+18004567891",
        "message": "bench",
        "attachments": [{"contentType": "image/png", "contentInBase64": base64.b64encode(b"\x89PNG" * 16).decode()}],
        "sendOptions": {"tag": "bench-job"},
        "recipients": [{"to": f"+1833{i:07d}"} for i in range(recipients)],
    }
    started = time.perf_counter()
    response = await http.post(f"{stack.host}/api/campaigns", json=body)
    response.raise_for_status()
    accepted_after = time.perf_counter() - started
    campaign_id = response.json()["campaignId"]
    while True:
        campaign = (await http.get(f"{stack.host}/api/campaigns/{campaign_id}")).json()
        if campaign["status"] not in ("Queued", "Sending"):
            break
        if time.perf_counter() - started > 1800:
            raise TimeoutError(f"the campaign did not finish in 30 minutes: {campaign}")
        await asyncio.sleep(0.25)
    wall = time.perf_counter() - started
    requests = -(-recipients // 100)
    return {
        "campaign_job": {
            "recipients": recipients,
            "status": campaign["status"],
            "accepted": campaign["accepted"],
            "create_seconds": round(accepted_after, 2),
            "wall_seconds": round(wall, 2),
            "acs_requests": requests,
            "requests_per_second": round(requests / wall, 2),
            "throttle_per_second": DEFAULT_RATE,
            "ratio_to_throttle": round(requests / wall / DEFAULT_RATE, 3),
            "recipients_per_second": round(recipients / wall, 1),
        }
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.bench.job")
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    results = asyncio.run(
        on_fresh_stack(lambda stack, http, raw: campaign_job_phase(stack, http, raw, args.recipients))
    )
    record = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python -m localdev.bench.job", *sys.argv[1:]]),
        "results": results,
    }
    write_record(record, "-job")
    print(summary_line(results["campaign_job"]))
    return 0


def summary_line(job: dict[str, Any]) -> str:
    return (
        f"campaign job     : {job['recipients']} recipients {job['status']} in {job['wall_seconds']} s "
        f"(created in {job['create_seconds']} s); {job['requests_per_second']} ACS requests/s = "
        f"{job['ratio_to_throttle']} of CAMPAIGN_SENDS_PER_SECOND {job['throttle_per_second']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
