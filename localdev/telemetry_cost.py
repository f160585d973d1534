"""Cold-start cost of the telemetry wiring: ``import function_app`` in a fresh interpreter, timed.

Runs each configuration several times in a new process (as a cold worker would start), taking the
configurations in turn, and prints the median and the spread, in milliseconds:

- ``none``: neither ``APPLICATIONINSIGHTS_CONNECTION_STRING`` nor ``OTEL_EXPORTER_OTLP_ENDPOINT``;
- ``otlp``: ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (the OTLP/HTTP exporters, httpx and azure-core tracing);
- ``azure_monitor``: ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set (the Azure Monitor distro).

Both endpoints point at a closed local port: only the start-up is measured, nothing is sent.
Usage: ``.venv/bin/python -m localdev.telemetry_cost [runs]`` (default 7).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "http://127.0.0.1:9"
CONFIGURATIONS = {
    "none": {},
    "otlp": {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE},
    "azure_monitor": {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={NOWHERE}/"
        )
    },
}
# Time the import, print it, and leave at once: the exporters' shutdown would otherwise wait on the closed port.
PROBE = (
    "import os, time\n"
    "start, cpu = time.perf_counter(), time.process_time()\n"
    "import function_app\n"
    "print(time.perf_counter() - start, time.process_time() - cpu, flush=True)\n"
    "os._exit(0)\n"
)


def once(extra: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of one cold import (CPU time varies less on a busy machine)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    env = {**base, "MMS_SENDERS": "+18004567891", "TRACKING_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    env |= {"ACS_CONNECTION_STRING": "endpoint=http://127.0.0.1:9/;accesskey=a2V5", **extra}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall) * 1000, float(cpu) * 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(runs):  # round-robin, so a busy moment of the machine weighs on every configuration alike
        for name, extra in CONFIGURATIONS.items():
            samples[name].append(once(extra))
    print(f"import function_app, {runs} fresh interpreters each (ms): wall median (min-max), CPU median")
    wall_base = statistics.median(w for w, _ in samples["none"])
    cpu_base = statistics.median(c for _, c in samples["none"])
    for name, values in samples.items():
        wall = [w for w, _ in values]
        cpu = statistics.median(c for _, c in values)
        wall_median = statistics.median(wall)
        over = "" if name == "none" else f"  (+{wall_median - wall_base:.0f} wall, +{cpu - cpu_base:.0f} CPU over none)"
        print(f"{name:14} {wall_median:6.0f} ({min(wall):.0f}-{max(wall):.0f})  CPU {cpu:6.0f}{over}")


if __name__ == "__main__":
    main()
