"""The real ``function_app`` under Microsoft's own execution code: ``azure-functions-runtime`` 1.3.0
(what Azure loads for Python 3.13+) on Python 3.13 with ``azure-functions`` 2.x, driven through the
runtime's ``handle_event`` entry points as its proxy worker drives them (``localdev/runtime_host``).

Every function is indexed and loaded by the runtime, and invoked through it: every HTTP route over
the runtime's own HTTP server (HTTP streams), the Event Grid trigger in both schemas, both queue
triggers with a message the app itself enqueued on Azurite, and the four timers. The app runs
against a real Azurite and the ACS simulator, both in subprocesses.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient

from localdev.simulator import connection_string
from localdev.stack import stop_group, wait_for_port
from tests.runtime.support import RuntimeHost, require_runtime
from tests.support import EXPECTED_FUNCTIONS, ROOT, Azurite, app_environment, fixture, free_port, poll_async

pytestmark = pytest.mark.e2e

WEBHOOK = "/runtime/webhooks/eventgrid?functionName=on_delivery_report"
SENDER = "+18004567891"


@pytest.fixture(scope="module")
def storage() -> Iterator[Azurite]:
    require_runtime()
    server = Azurite(full=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runtime_host(storage: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeHost]:
    """The app in the runtime, and the ACS simulator reporting back to the runtime's Event Grid webhook."""
    logs = tmp_path_factory.mktemp("runtime-app")
    simulator_port = free_port()
    env = app_environment(
        storage.connection_string,
        AzureWebJobsStorage=storage.connection_string,
        ACS_CONNECTION_STRING=connection_string(simulator_port),
        SEND_RECONCILE_AFTER_SECONDS="0",
    )
    host = RuntimeHost(ROOT, env, logs / "runtime.log")
    simulator_env = {**os.environ, "ACS_SIMULATOR_PORT": str(simulator_port), "SIM_WEBHOOK_URL": host.url + WEBHOOK}
    simulator_env["SIM_REPORT_DELAY_SECONDS"] = "0.05"
    with (logs / "simulator.log").open("wb") as log:
        simulator = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "localdev.simulator"],
            cwd=ROOT,
            env=simulator_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(simulator_port, 60, simulator)
        host.start()
        yield host
    finally:
        host.stop()
        stop_group(simulator)


@pytest.fixture
async def client(runtime_host: RuntimeHost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=runtime_host.url, timeout=60) as http:
        yield http


def test_every_function_is_indexed_and_loaded_by_the_runtime(runtime_host: RuntimeHost) -> None:
    indexed = runtime_host.indexed()
    assert set(indexed["functions"]) == EXPECTED_FUNCTIONS  # each one also answered its FunctionLoadRequest
    # HTTP streams: the runtime serves HTTP itself and wants the route values (azure_functions_runtime,
    # handle_event.worker_init_request: HTTP_URI, REQUIRES_ROUTE_PARAMETERS).
    assert indexed["capabilities"]["HttpUri"].startswith("http://")
    assert indexed["capabilities"]["RequiresRouteParameters"] == "true"
    triggers = {
        name: next(b["type"] for b in bindings if b["type"].endswith("Trigger"))
        for name, bindings in indexed["functions"].items()
    }
    assert sorted(set(triggers.values())) == ["eventGridTrigger", "httpTrigger", "queueTrigger", "timerTrigger"]


async def send(client: httpx.AsyncClient, tag: str, to: str = "+18335852071") -> dict[str, Any]:
    body = {**fixture("seed_send_request.json"), "recipients": [{"to": to}], "sendOptions": {"tag": tag}}
    response = await client.post("/api/messages", json=body)
    assert response.status_code == 202, response.text
    sent: dict[str, Any] = response.json()
    return sent


async def test_every_http_route_answers_through_the_runtime(client: httpx.AsyncClient) -> None:
    tag = "rt" + uuid.uuid4().hex[:8]
    assert (await client.get("/api/health")).status_code == 200
    openapi = await client.get("/api/openapi.json")
    assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.")
    sent = await send(client, tag)
    [result] = sent["value"]
    message_id = result["messageId"]

    async def delivered() -> dict[str, Any] | None:  # the simulator's report came back through the runtime
        got = await client.get(f"/api/messages/{message_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if body["status"] == "Delivered" else None

    await poll_async(delivered, deadline_seconds=60)
    listed = await client.get("/api/messages", params={"tag": tag})
    assert [m["messageId"] for m in listed.json()["items"]] == [message_id]
    summary = await client.get(f"/api/tags/{tag}/summary")
    assert summary.status_code == 200 and summary.json()["total"] == 1
    tags = await client.get("/api/tags")
    assert tags.status_code == 200 and tag in [t["tag"] for t in tags.json()["items"]]
    export = await client.get(f"/api/tags/{tag}/messages.csv")  # a StreamingResponse through HTTP streams
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert message_id in export.text
    assert (await client.get("/api/poison")).status_code == 200
    dashboard = await client.get("/api/dashboard")
    assert dashboard.status_code == 200 and dashboard.headers["content-type"].startswith("text/html")
    assert (await client.get("/api/messages/no-such-id")).status_code == 404


async def test_the_delivery_report_webhook_route_answers_through_the_runtime(client: httpx.AsyncClient) -> None:
    validation = fixture("subscription_validation.eventgrid.json")
    response = await client.post(
        "/api/events/delivery-reports", json=validation, headers={"aeg-event-type": "SubscriptionValidation"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"validationResponse": validation[0]["data"]["validationCode"]}
    options = await client.options(
        "/api/events/delivery-reports", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert options.status_code == 200, options.text
    assert options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def campaign_body(tag: str, recipients: int) -> dict[str, Any]:
    send_request = fixture("seed_send_request.json")
    return {
        "from": SENDER,
        "message": "Spring sale",
        "attachments": send_request["attachments"],
        "sendOptions": {"tag": tag},
        "recipients": [{"to": f"+1833{i:07d}"} for i in range(recipients)],
    }


def take_queue_message(storage: Azurite, queue: str) -> dict[str, Any]:
    """One message the app enqueued, taken off Azurite's queue as the host's listener takes it."""
    client = QueueClient.from_connection_string(storage.connection_string, queue)
    [message] = client.receive_messages(max_messages=1, visibility_timeout=600)
    body = base64.b64decode(message.content).decode()  # host.json: messageEncoding base64
    client.delete_message(message)
    return {"id": message.id, "body": body, "dequeueCount": message.dequeue_count}


async def test_campaign_routes_and_both_queue_triggers_run_through_the_runtime(
    client: httpx.AsyncClient, runtime_host: RuntimeHost, storage: Azurite
) -> None:
    tag = "rc" + uuid.uuid4().hex[:8]
    created = await client.post("/api/campaigns", json=campaign_body(tag, 3))
    assert created.status_code == 202, created.text
    campaign_id = created.json()["campaignId"]
    assert (await client.get(f"/api/campaigns/{campaign_id}")).json()["status"] == "Queued"
    listed = await client.get("/api/campaigns")
    assert listed.status_code == 200 and campaign_id in [c["campaignId"] for c in listed.json()["items"]]
    chunk = take_queue_message(storage, "campaign-chunks")
    outcome = await runtime_host.invoke("queue", "send_campaign_chunk", chunk, client)
    assert outcome["status"] == "Success", outcome
    campaign = (await client.get(f"/api/campaigns/{campaign_id}")).json()
    assert (campaign["status"], campaign["accepted"]) == ("Completed", 3), campaign
    # The poison queue's trigger settles a chunk the queue gave up on: a settled chunk stays settled.
    poisoned = {**chunk, "dequeueCount": 1}
    outcome = await runtime_host.invoke("queue", "settle_campaign_chunk", poisoned, client)
    assert outcome["status"] == "Success", outcome
    assert (await client.get(f"/api/campaigns/{campaign_id}")).json()["accepted"] == 3
    second = await client.post("/api/campaigns", json=campaign_body(tag + "x", 2))
    cancelled = await client.delete(f"/api/campaigns/{second.json()['campaignId']}")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "Cancelled"


def grid_report(message_id: str, event_id: str) -> dict[str, Any]:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    data = {**event["data"], "messageId": message_id, "deliveryStatus": "Failed"}
    return {**event, "id": event_id, "data": data}


def cloud_report(message_id: str, event_id: str) -> dict[str, Any]:
    event = grid_report(message_id, event_id)
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/subscriptions/x/resourceGroups/rg/providers/microsoft.communication/communicationservices/acs",
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "datacontenttype": "application/json",
        "data": event["data"],
    }


@pytest.mark.parametrize("schema", [grid_report, cloud_report], ids=["event-grid-schema", "cloudevents-schema"])
async def test_the_event_grid_trigger_takes_both_schemas_through_the_runtime(
    client: httpx.AsyncClient, schema: Any
) -> None:
    sent = await send(client, "eg" + uuid.uuid4().hex[:8], to="+18335850000")
    message_id = sent["value"][0]["messageId"]
    event_id = "rt-" + uuid.uuid4().hex  # not the simulator's own report (its id is the message id)
    response = await client.post(
        WEBHOOK, content=json.dumps([schema(message_id, event_id)]), headers={"aeg-event-type": "Notification"}
    )
    assert response.status_code == 202, response.text
    record = (await client.get(f"/api/messages/{message_id}")).json()
    assert {"eventId": event_id, "deliveryStatus": "Failed"}.items() <= next(
        e for e in record["events"] if e["eventId"] == event_id
    ).items()


@pytest.mark.parametrize(
    "name", ["expire_stale_messages", "retire_old_messages", "reconcile_sends", "publish_status_events"]
)
async def test_every_timer_runs_through_the_runtime(
    client: httpx.AsyncClient, runtime_host: RuntimeHost, name: str
) -> None:
    outcome = await runtime_host.invoke("timer", name, {}, client)
    assert outcome == {"status": "Success", "type": "", "message": ""}


def test_the_runtime_log_shows_no_traceback(runtime_host: RuntimeHost) -> None:
    log = Path(runtime_host.log_path).read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


async def test_a_placeholder_specialised_by_an_environment_reload_indexes_and_serves_the_app(
    storage: Azurite, tmp_path: Path
) -> None:
    """Placeholder mode: no init for this runtime, the app and its settings in FunctionEnvironmentReloadRequest."""
    env = app_environment(storage.connection_string, AzureWebJobsStorage=storage.connection_string)
    host = RuntimeHost(ROOT, env, tmp_path / "specialized.log", specialize=True).start()
    try:
        assert set(host.indexed()["functions"]) == EXPECTED_FUNCTIONS
        async with httpx.AsyncClient(base_url=host.url, timeout=60) as http:
            response = await http.get("/api/health")
        assert response.status_code == 200, response.text
    finally:
        host.stop()
