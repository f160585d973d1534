"""A worker that dies between ACS's answer and the records loses no message (issue 19).

The local host runs as a process of its own with the test-only fault hook
``MMS_TEST_CRASH_AFTER_ACS=1``: it exits the moment ACS (the simulator) has accepted a send. A
second host, started without the hook, finishes the send from its intent when the reconciler
runs, by repeating the call with the same repeatability pairs; the simulator sends nothing
twice. The number ends in 4044, which the simulator never reports on, so only the intent can
bring its record back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from localdev.simulator import Simulator, SimulatorConfig, connection_string
from localdev.stack import stop_group, wait_for_port
from tests.support import ROOT, Azurite, app_environment, fixture, free_port, poll_async

pytestmark = pytest.mark.e2e


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[Simulator, TestServer]]:
    sim = Simulator(SimulatorConfig(webhook_url="http://127.0.0.1:9/unused", report_delay_seconds=0.05))
    server = TestServer(sim.build(), host="127.0.0.1")
    await server.start_server()
    yield sim, server
    await server.close()


class Hosts:
    """Local hosts as separate processes, each on its own port, all stopped at the end."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "localdev.host", "--port", str(port), "--no-timers", "--settings", "/nonexistent"],
            cwd=ROOT,
            env={**os.environ, **env},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        wait_for_port(port, 60, process)
        return process, f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                stop_group(process)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    started = Hosts()
    yield started
    started.stop()


async def test_a_host_killed_after_acs_accepted_leaves_an_intent_that_the_next_host_finishes(
    azurite: Azurite, simulator: tuple[Simulator, TestServer], hosts: Hosts
) -> None:
    sim, server = simulator
    env = app_environment(  # a send holds its intent until its deadline: 2 x 5 + 0 + 2 = 12 s here
        azurite.connection_string,
        ACS_CONNECTION_STRING=connection_string(server.port),
        SEND_RECONCILE_AFTER_SECONDS="0",
        ACS_RETRY_MAX_SECONDS="0",
        ACS_TIMEOUT_SECONDS="2",
    )
    crashing, crashing_url = hosts.start(env | {"MMS_TEST_CRASH_AFTER_ACS": "1"})
    body: dict[str, Any] = fixture("seed_send_request.json") | {
        "recipients": [{"to": "+15550004044"}],
        "sendOptions": {"tag": "crash"},
    }
    async with httpx.AsyncClient(timeout=30) as client:
        with pytest.raises(httpx.TransportError):  # the worker died before answering
            await client.post(f"{crashing_url}/api/messages", json=body)
        assert await poll_async(lambda: _exited(crashing), 30) == 70
        [(message_id, sent)] = sim.messages.items()  # ACS did send it
        assert sent["to"] == "+15550004044"

        _, url = hosts.start(env)
        assert (await client.get(f"{url}/api/messages/{message_id}")).status_code == 404  # no record yet

        async def recorded() -> dict[str, Any] | None:  # the timer, run on demand as Azure's admin API does
            assert (await client.post(f"{url}/admin/functions/reconcile_sends", json={"input": ""})).status_code == 202
            response = await client.get(f"{url}/api/messages/{message_id}")
            return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

        record = await poll_async(recorded, 60, interval=1.0)
        assert (record["status"], record["to"], record["tag"]) == ("Accepted", "+15550004044", "crash")
        summary = (await client.get(f"{url}/api/tags/crash/summary")).json()
    assert summary["byStatus"]["Accepted"] == 1 and summary["total"] == 1
    assert len(sim.messages) == 1  # the reconciler's repeat was recognised: sent once
    assert sim.stats["repeats"] == 1


async def _exited(process: subprocess.Popen[bytes]) -> int | None:
    return process.poll()
