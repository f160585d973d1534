"""``make run``'s supervisor: the stack comes up, answers health, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, fixture, free_port, poll, port_is_free

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stack_sends_tracks_and_sigint_stops_every_process_and_port() -> None:
    ports = {
        name: free_port()
        for name in (
            "LOCAL_HOST_PORT",
            "ACS_SIMULATOR_PORT",
            "AZURITE_BLOB_PORT",
            "AZURITE_QUEUE_PORT",
            "AZURITE_TABLE_PORT",
        )
    }
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "AZURITE_LOCATION": "memory"}
    stack = subprocess.Popen(
        [sys.executable, "-m", "localdev.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{ports['LOCAL_HOST_PORT']}/api/health"

        def healthy() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        poll(healthy, deadline_seconds=60, interval=0.2)
        assert httpx.get(url).json()["status"] == "ok"
        children = descendants(stack.pid)
        assert len(children) >= 3, "expected Azurite, the simulator and the host"

        base = f"http://127.0.0.1:{ports['LOCAL_HOST_PORT']}/api"
        sent = httpx.post(f"{base}/messages", json=fixture("seed_send_request.json"), timeout=30)
        assert sent.status_code == 202, sent.text
        items = sent.json()["value"]
        assert [i["successful"] for i in items] == [True, True, False]
        assert items[2]["errorMessage"] == "Invalid phone number format."

        def delivered(message_id: str) -> dict[str, object] | None:
            record = httpx.get(f"{base}/messages/{message_id}", timeout=10).json()
            return record if record.get("status") == "Delivered" else None

        for item in items[:2]:
            record = poll(lambda i=item: delivered(i["messageId"]), deadline_seconds=30, interval=0.2)
            assert record["tag"] == "CustomerId" and len(record["events"]) == 1  # type: ignore[arg-type]
        sim = f"http://127.0.0.1:{ports['ACS_SIMULATOR_PORT']}/simulator/stats"
        assert httpx.get(sim).json()["sent"] == 2

        stack.send_signal(signal.SIGINT)
        output, _ = stack.communicate(timeout=30)
        assert stack.returncode == 0, output
        assert "stopping" in output
        assert [pid for pid in children if alive(pid)] == []
        assert [name for name, port in ports.items() if not port_is_free(port)] == []
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.communicate()
