"""``make run``'s supervisor: the stack comes up, answers health, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

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


PORTS = ("LOCAL_HOST_PORT", "ACS_SIMULATOR_PORT", "AZURITE_BLOB_PORT", "AZURITE_QUEUE_PORT", "AZURITE_TABLE_PORT")


def start_stack(ports: dict[str, int], key: str | None = None) -> subprocess.Popen[str]:
    """``make run``'s supervisor on ``ports``, Azurite in memory, with ``LOCAL_FUNCTION_KEY`` set to
    ``key`` (unset when None); its output (stdout and stderr) in one pipe."""
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "AZURITE_LOCATION": "memory"}
    env.pop("LOCAL_FUNCTION_KEY", None)
    if key is not None:
        env["LOCAL_FUNCTION_KEY"] = key
    return subprocess.Popen(
        [sys.executable, "-m", "localdev.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_stack_sends_tracks_and_sigint_stops_every_process_and_port() -> None:
    ports = {name: free_port() for name in PORTS}
    stack = start_stack(ports)
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


class Lines:
    """A child's output, read line by line in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._reader.start()

    def after(self, marker: str, deadline_seconds: float = 60) -> list[str]:
        """The lines from the first holding ``marker`` up to the next empty line, once all are printed."""

        def block() -> list[str] | None:
            lines = list(self.lines)
            start = next((i for i, line in enumerate(lines) if marker in line), None)
            if start is None:
                return None
            end = next((i for i in range(start, len(lines)) if not lines[i].strip()), None)
            return None if end is None else [line.rstrip("\n") for line in lines[start:end]]

        return poll(block, deadline_seconds=deadline_seconds, interval=0.1)

    def rest(self) -> str:
        self._reader.join(timeout=30)
        return "".join(self.lines)


def run_printed(command: str) -> Any:
    """Run a command exactly as a user pastes it into another shell (one without the key in its
    environment), from the repository root; its JSON output."""
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_FUNCTION_KEY"}
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stderr)
    return json.loads(done.stdout)


# A key a shell would mangle unquoted: quotes of both kinds, a variable, a command substitution, &.
HOSTILE_KEY = "k'e\"y $HOME & `x` ;#"


@pytest.mark.parametrize(
    "key", [None, "local-key", HOSTILE_KEY, "clé-🔑"], ids=["no-key", "plain-key", "hostile-key", "unicode"]
)
def test_the_banners_curl_commands_work_as_printed_with_and_without_a_function_key(key: str | None) -> None:
    ports = {name: free_port() for name in PORTS}
    stack = start_stack(ports, key)
    assert stack.stdout is not None  # PIPE
    output = Lines(stack.stdout)
    try:
        # The banner follows the three children, each given 60 s to open its port (START_DEADLINE_SECONDS).
        banner = [line.strip() for line in output.after("Send the sample MMS", deadline_seconds=180)]
        send, look_up = [line for line in banner if line.startswith("curl") and "/api/messages" in line]
        items = run_printed(send)["value"]
        assert [i["successful"] for i in items] == [True, True, False], items

        def looked_up() -> Any:
            body = run_printed(look_up.replace("<messageId>", items[0]["messageId"]))
            assert body.get("status") != 401, body  # refused: the key did not travel
            return body if "messageId" in body else None  # a 404 until a stalled store writes the record

        record = poll(looked_up, deadline_seconds=90, interval=0.5)
        assert record["messageId"] == items[0]["messageId"] and record["tag"] == "CustomerId"
        if key is not None:  # the key is what let them in: without it, the same request is refused
            bare = httpx.get(
                f"http://127.0.0.1:{ports['LOCAL_HOST_PORT']}/api/messages/{items[0]['messageId']}", timeout=30
            )
            assert bare.status_code == 401
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=30)
        finally:
            if stack.poll() is None:
                stack.kill()
                stack.wait()
            rest = output.rest()
            stack.stdout.close()
    assert stack.returncode == 0, rest
