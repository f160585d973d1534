"""``make bench``'s output: the run's record in ``bench-results/<UTC time>.json``, and a summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from ..stack import ROOT


def write_record(record: dict[str, Any], suffix: str = "") -> Path:
    """Write ``record`` to ``bench-results/<UTC time><suffix>.json``, print it, return its path."""
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / (dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + suffix + ".json")
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    return path


def save_and_print(options: dict[str, Any], results: dict[str, Any]) -> Path:
    """Write the run's record (machine, command, options, results), print it and a summary; return its path."""
    record = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(["python -m localdev.bench", *sys.argv[1:]]),
        "options": options,
        "results": results,
    }
    path = write_record(record)
    r = results
    for paths in (r, r.get("status_events_off")):
        if paths and "ingest_per_event" in paths:
            _print_ingest(paths, r.get("round_trips", {}))
    if "read" not in r:
        r = r["status_events_off"] | {k: v for k, v in r.items() if k != "status_events_off"}
    print(
        f"read by id       : p50 {r['read']['p50_ms']} ms vs raw point read {r['raw_point_read']['p50_ms']} ms "
        f"(ratio {r['read']['p50_ratio_to_raw']})"
    )
    print(
        f"send 100         : {r['send']['app_median_ms']} ms vs baseline {r['send']['baseline_median_ms']} ms "
        f"(ratio {r['send']['ratio_baseline_to_app']})"
    )
    print(f"host peak RSS    : {r['host_peak_rss_mib']} MiB")
    _print_campaign(r)
    if "campaign_job" in r:
        from .job import summary_line

        print(summary_line(r["campaign_job"]))
    print(f"written to {path}")
    return path


def _storage_requests(round_trips: dict[str, Any], events_on: bool) -> str:
    """Storage requests per new report, as the campaign phase counted them through the use cases."""
    if not round_trips:
        return "n/a (campaign phase skipped)"
    if not events_on:
        return str(round_trips["new_report"])
    split = round_trips["with_status_events"]["new_report"]
    return f"{round(split['inline'] + split['background'], 2)} ({split['inline']} inline + {split['background']} after)"


def _print_ingest(paths: dict[str, Any], round_trips: dict[str, Any]) -> None:
    """Per ingest path: reports/s, the raw rate, the ratio, storage requests and host CPU-ms per report."""
    events_on = paths["status_events"]
    requests = _storage_requests(round_trips, events_on)
    e, b = paths["ingest_per_event"], paths["ingest_batched"]
    print(f"\nstatus events {'on (make run as shipped)' if events_on else 'off (STATUS_EVENTS_ENDPOINT empty)'}:")
    print(
        f"  ingest per event : {e['per_second']}/s = {e['ratio_to_raw']} of raw upsert "
        f"{paths['raw_upsert']['per_second']}/s; {e['host_cpu_ms_per_report']} host CPU-ms/report; "
        f"{requests} storage requests/report (p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms)"
    )
    print(
        f"    vs same raw mix: {e['ratio_to_raw_mix']} of {paths['raw_mix_per_event']['per_second']}/s "
        "(a point read + a 2-entity transaction per report, same concurrency)"
    )
    print(
        f"  ingest batched   : {b['per_second']}/s = {b['ratio_to_raw']} of raw upsert "
        f"{paths['raw_upsert_batched_stack']['per_second']}/s on its own fresh stack; "
        f"{b['host_cpu_ms_per_report']} host CPU-ms/report; {requests} storage requests/report"
    )
    print(
        f"    vs same raw mix: {b['ratio_to_raw_mix']} of {paths['raw_mix_batched']['per_second']}/s "
        f"(per batch: the reads, then {paths['raw_mix_batched']['transactions_per_batch']} per-shard transactions)"
    )


def _print_campaign(r: dict[str, Any]) -> None:
    if "campaign" in r:
        c = r["campaign"]
        print(
            f"campaign of {c['messages']} messages, {c['read_concurrency']} reads in flight "
            f"(seeded in {c['seed_seconds']} s):\n"
            f"  summary          : p50 {c['summary']['p50_ms']} ms, p90 {c['summary']['p90_ms']} ms\n"
            f"  read by id       : p50 {c['read_by_id']['p50_ms']} ms\n"
            f"  first page (100) : p50 {c['first_page']['p50_ms']} ms\n"
            f"  raw point read   : p50 {c['raw_point_read']['p50_ms']} ms\n"
            f"  summary / read by id: {c['summary_p50_over_read_by_id_p50']}, summary / raw point read: "
            f"{c['summary_p50_over_raw_point_read_p50']}, first page / raw point read: "
            f"{c['first_page_p50_over_raw_point_read_p50']} (p50s)"
        )
        if "csv_export" in c:
            x = c["csv_export"]
            print(
                f"  CSV export       : {x['rows']} rows in {x['seconds']} s, first byte after "
                f"{x['first_byte_seconds']} s, host RSS +{x['host_rss_growth_mib']} MiB"
            )
    for x in r.get("csv_export_memory", []):
        print(
            f"CSV export, generated records: {x['rows']:>9} rows, {x['bytes']} bytes in {x['seconds']} s, "
            f"RSS +{x['rss_growth_mib']} MiB"
        )
    print("storage round trips per operation (counted requests):")
    for operation, count in r["round_trips"].items():
        if isinstance(count, dict):  # with status-change events: each operation split inline/background
            print(f"  {operation.replace('_', ' ')}:")
            for inner, split in count.items():
                print(f"    per {inner.replace('_', ' '):<30}: {split}")
        else:
            print(f"  per {operation.replace('_', ' '):<32}: {count}")
