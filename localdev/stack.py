"""``make run``: Azurite, the ACS simulator and the local Functions host, in the foreground.

Each child runs in its own process group, so Ctrl-C reaches this supervisor alone, which then
stops every group it started (SIGINT, then SIGKILL after a grace period) and waits for them:
nothing is left behind and every port is freed. If any child dies, the rest are stopped too.

Ports and paths come from the environment (see the README): ``LOCAL_HOST_PORT`` (7071),
``ACS_SIMULATOR_PORT`` (7072), ``AZURITE_BLOB_PORT``/``AZURITE_QUEUE_PORT``/``AZURITE_TABLE_PORT``
(10000-10002), ``AZURITE_LOCATION`` (``.azurite``; ``memory`` keeps data in memory only).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import simulator

ROOT = Path(__file__).resolve().parent.parent
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_SENDER = "+18004567891"
STOP_GRACE_SECONDS = 10.0
START_DEADLINE_SECONDS = 60.0


def azurite_connection_string(table_port: int, blob_port: int | None = None, queue_port: int | None = None) -> str:
    """The well-known Azurite development account, with explicit endpoints."""
    parts = [
        "DefaultEndpointsProtocol=http",
        f"AccountName={AZURITE_ACCOUNT}",
        f"AccountKey={AZURITE_KEY}",
        f"TableEndpoint=http://127.0.0.1:{table_port}/{AZURITE_ACCOUNT}",
    ]
    if blob_port:
        parts.append(f"BlobEndpoint=http://127.0.0.1:{blob_port}/{AZURITE_ACCOUNT}")
    if queue_port:
        parts.append(f"QueueEndpoint=http://127.0.0.1:{queue_port}/{AZURITE_ACCOUNT}")
    return ";".join(parts) + ";"


def azurite_command(
    blob_port: int, queue_port: int, table_port: int, location: str | None, *, table_only: bool = False
) -> list[str]:
    """The command line for the pinned Azurite in ``node_modules`` (telemetry off, loopback only)."""
    binary = ROOT / "node_modules" / ".bin" / ("azurite-table" if table_only else "azurite")
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing: run `npm ci` (make does)")
    command = [str(binary), "--disableTelemetry", "--skipApiVersionCheck", "--silent"]
    command += ["--tableHost", "127.0.0.1", "--tablePort", str(table_port)]
    if not table_only:
        command += [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob_port),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue_port),
        ]
    if location is None:
        command.append("--inMemoryPersistence")
    else:
        command += ["--location", location]
    return command


def wait_for_port(port: int, deadline_seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll until something accepts connections on 127.0.0.1:``port``; raise on deadline or exit."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before port {port} opened")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {deadline_seconds:.0f}s")


def stop_group(process: subprocess.Popen[bytes], grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """Stop ``process`` and everything in its process group: SIGINT, then SIGKILL after the grace.

    SIGINT is the graceful stop of every child: Azurite saves its data to ``--location`` only on
    SIGINT (on SIGTERM recent writes are lost), and aiohttp's ``run_app`` shuts down cleanly on it.
    """
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    port: int


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def main() -> int:
    host_port = _env_int("LOCAL_HOST_PORT", 7071)
    simulator_port = _env_int("ACS_SIMULATOR_PORT", 7072)
    blob_port = _env_int("AZURITE_BLOB_PORT", 10000)
    queue_port = _env_int("AZURITE_QUEUE_PORT", 10001)
    table_port = _env_int("AZURITE_TABLE_PORT", 10002)
    location = os.environ.get("AZURITE_LOCATION", str(ROOT / ".azurite"))
    if location != "memory":
        Path(location).mkdir(parents=True, exist_ok=True)

    app_env = dict(os.environ)
    app_env.setdefault("TRACKING_STORAGE_CONNECTION_STRING", azurite_connection_string(table_port))
    app_env.setdefault("AzureWebJobsStorage", azurite_connection_string(table_port, blob_port, queue_port))
    app_env.setdefault("MMS_SENDERS", DEFAULT_SENDER)
    app_env.setdefault("ACS_CONNECTION_STRING", simulator.connection_string(simulator_port))
    app_env.setdefault("STATUS_EVENTS_ENDPOINT", simulator.topic_endpoint(simulator_port))
    app_env.setdefault("STATUS_EVENTS_KEY", simulator.TOPIC_KEY)
    app_env["LOCAL_HOST_PORT"] = str(host_port)
    app_env["ACS_SIMULATOR_PORT"] = str(simulator_port)
    app_env["PYTHONUNBUFFERED"] = "1"

    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    children: list[Child] = []
    try:
        children.append(
            _start(
                "azurite",
                azurite_command(blob_port, queue_port, table_port, None if location == "memory" else location),
                table_port,
                app_env,
            )
        )
        children.append(_start("simulator", [sys.executable, "-m", "localdev.simulator"], simulator_port, app_env))
        children.append(
            _start("host", [sys.executable, "-m", "localdev.host", "--port", str(host_port)], host_port, app_env)
        )
        _banner(host_port, simulator_port, table_port, _function_key(app_env))
        while True:
            for child in children:
                if child.process.poll() is not None:
                    print(
                        f"mms-tracker: {child.name} exited with {child.process.returncode}; stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            time.sleep(0.5)
    except _Stop:
        print("\nmms-tracker: stopping", flush=True)
        return 0
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        print(f"mms-tracker: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            stop_group(child.process)


def _start(name: str, command: list[str], port: int, env: dict[str, str]) -> Child:
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    child = Child(name, process, port)
    try:
        wait_for_port(port, START_DEADLINE_SECONDS, process)
    except BaseException:
        stop_group(process)
        raise
    print(f"mms-tracker: {name} listening on 127.0.0.1:{port}", flush=True)
    return child


def _function_key(app_env: dict[str, str]) -> str | None:
    """The key the host will demand: ``LOCAL_FUNCTION_KEY`` from the environment, else from
    ``local.settings.json`` (the host applies its ``Values`` after the environment, as Core Tools does)."""
    from .host.cli import apply_local_settings  # here: the host's modules import this one

    resolved = dict(app_env)
    apply_local_settings(ROOT / "local.settings.json", resolved)
    return resolved.get("LOCAL_FUNCTION_KEY") or None


def _banner(host_port: int, simulator_port: int, table_port: int, function_key: str | None) -> None:
    """The URLs, and ``curl`` lines that work when pasted into a shell: with the key the host
    demands when one is set (shell-quoted, so any key survives the paste)."""
    base = f"http://127.0.0.1:{host_port}"
    key = "" if function_key is None else " -H " + shlex.quote(f"x-functions-key: {function_key}")
    lines = [
        "",
        "mms-tracker is running (Ctrl-C stops everything):",
        f"  Functions host : {base}/api/health",
        f"  ACS simulator  : http://127.0.0.1:{simulator_port}/simulator/stats",
        f"  Azurite tables : http://127.0.0.1:{table_port}/{AZURITE_ACCOUNT}",
        "",
        "Send the sample MMS (two valid recipients, one invalid), then look up a messageId it returns:",
        f"  curl -s -X POST {base}/api/messages -H 'content-type: application/json'{key} "
        "-d @tests/fixtures/seed_send_request.json",
        f"  curl -s{key} {base}/api/messages/<messageId>",
        "Status-change events the app published to the simulator's topic:",
        f"  curl -s http://127.0.0.1:{simulator_port}/simulator/published",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
