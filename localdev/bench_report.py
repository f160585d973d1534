"""``make bench``'s output: the run's record in ``bench-results/<UTC time>.json``, and a summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from .stack import ROOT


def save_and_print(options: dict[str, Any], results: dict[str, Any]) -> Path:
    """Write the run's record (machine, command, options, results), print it and a summary; return its path."""
    record = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(["python -m localdev.bench", *sys.argv[1:]]),
        "options": options,
        "results": results,
    }
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / (dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    r = results
    print(
        f"\ningest per event : {r['ingest_per_event']['per_second']}/s = {r['ingest_per_event']['ratio_to_raw']} "
        f"of raw upsert {r['raw_upsert']['per_second']}/s (p50 {r['ingest_per_event']['p50_ms']} ms, "
        f"p99 {r['ingest_per_event']['p99_ms']} ms)"
    )
    print(
        f"ingest batched   : {r['ingest_batched']['per_second']}/s = {r['ingest_batched']['ratio_to_raw']} of raw "
        f"upsert {r['raw_upsert_batched_stack']['per_second']}/s on its own fresh stack"
    )
    print(
        f"read by id       : p50 {r['read']['p50_ms']} ms vs raw point read {r['raw_point_read']['p50_ms']} ms "
        f"(ratio {r['read']['p50_ratio_to_raw']})"
    )
    print(
        f"send 100         : {r['send']['app_median_ms']} ms vs baseline {r['send']['baseline_median_ms']} ms "
        f"(ratio {r['send']['ratio_baseline_to_app']})"
    )
    print(f"host peak RSS    : {r['host_peak_rss_mib']} MiB\nwritten to {path}")
    return path
