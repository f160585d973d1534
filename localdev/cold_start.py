"""Cold start of the app under each Python the project runs it with: ``import function_app`` and
the first invocation, in fresh interpreters, medians of CPU and wall-clock milliseconds.

- ``3.11``: ``.venv`` (the app's Python): ``import function_app``, then the first call of the
  ``openapi`` route (no storage needed) with a Starlette request, its response run as ASGI;
- ``3.13``: ``.venv-py313`` (azure-functions 2.x), the same two steps;
- ``3.13-runtime``: ``.venv-py313`` through Microsoft's runtime (``localdev.runtime_host``): the
  worker init request (which imports and indexes the app), then the first ``openapi`` invocation
  over the runtime's own HTTP server, as the host forwards it.

Usage: ``.venv/bin/python -m localdev.cold_start [runs]`` (default 7), taking the configurations in turn.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = {"3.11": ROOT / ".venv" / "bin" / "python", "3.13": ROOT / ".venv-py313" / "bin" / "python"}
DIRECT = """
import asyncio, os, sys, time
start, cpu = time.perf_counter(), time.process_time()
import function_app
imported, imported_cpu = time.perf_counter(), time.process_time()
from starlette.requests import Request
call = next(f for f in function_app.app.get_functions() if f.get_function_name() == "openapi").get_user_function()
async def first():
    scope = {"type": "http", "method": "GET", "path": "/api/openapi.json", "headers": [], "query_string": b""}
    response = await call(Request(scope))
    sent = []
    async def send(message): sent.append(message)
    async def receive(): return {"type": "http.request"}
    await response(scope, receive, send)
    assert sent[0]["status"] == 200, sent[0]
asyncio.run(first())
done, done_cpu = time.perf_counter(), time.process_time()
print(imported - start, imported_cpu - cpu, done - imported, done_cpu - imported_cpu, flush=True)
os._exit(0)
"""
RUNTIME = """
import asyncio, os, sys, time
from pathlib import Path
sys.path.insert(0, os.getcwd())
from localdev.runtime_host.worker import RuntimeWorker, load_protos
async def main():
    worker = RuntimeWorker(load_protos(Path(".venv-py313/protos").resolve()), Path.cwd())
    start, cpu = time.perf_counter(), time.process_time()
    await worker.init()
    await worker.index()
    imported, imported_cpu = time.perf_counter(), time.process_time()
    import aiohttp
    protos = worker.protos
    data = protos.TypedData(http=protos.RpcHttp())
    invocation = asyncio.ensure_future(worker.invoke("openapi", data, invocation_id="cold"))
    async with aiohttp.ClientSession() as session:
        url = worker.capabilities["HttpUri"] + "/api/openapi.json"
        for attempt in range(10):  # the host's RetryProxyHandler: the server may still be binding
            try:
                async with session.get(url, headers={"x-ms-invocation-id": "cold"}) as response:
                    assert response.status == 200, response.status
                    await response.read()
                break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
    await invocation
    done, done_cpu = time.perf_counter(), time.process_time()
    print(imported - start, imported_cpu - cpu, done - imported, done_cpu - imported_cpu, flush=True)
    os._exit(0)
asyncio.run(main())
"""


def once(python: Path, probe: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    env |= {"MMS_SENDERS": "+18004567891", "TRACKING_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    env |= {"ACS_CONNECTION_STRING": "endpoint=http://127.0.0.1:9/;accesskey=a2V5"}
    out = subprocess.run([str(python), "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return [float(v) * 1000 for v in out.stdout.strip().splitlines()[-1].split()]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    configurations = {
        "3.11": (PYTHONS["3.11"], DIRECT),
        "3.13": (PYTHONS["3.13"], DIRECT),
        "3.13-runtime": (PYTHONS["3.13"], RUNTIME),
    }
    configurations = {name: c for name, c in configurations.items() if c[0].exists()}
    samples: dict[str, list[list[float]]] = {name: [] for name in configurations}
    for python, probe in configurations.values():
        once(python, probe)  # warm the .pyc caches and the file system once, uncounted
    for _ in range(runs):
        for name, (python, probe) in configurations.items():
            samples[name].append(once(python, probe))
    columns = f"{'import wall':>12} {'import cpu':>11} {'first call wall':>16} {'first call cpu':>15}"
    print(f"{'python':14} {columns}  (median ms of {runs})")
    for name, rows in samples.items():
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(f"{name:14} {medians[0]:12.0f} {medians[1]:11.0f} {medians[2]:16.1f} {medians[3]:15.1f}")


if __name__ == "__main__":
    main()
