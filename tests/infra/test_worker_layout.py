"""The app in the layout `func start` gives it: the worker's own packages first on ``sys.path``.

Core Tools starts Microsoft's Python worker with the worker's bundled packages ahead of the app's
(and so does Azure unless ``PYTHON_ISOLATE_WORKER_DEPENDENCIES=1``), so ``import azure.functions``
finds the worker's copy, not the one ``requirements.txt`` pins. The app must then index and run on
the oldest ``azure-functions`` a worker able to run it bundles:

- Azure/azure-functions-python-worker, ``python/prodV4/worker.config.json``: Python 3.11 is first in
  ``supportedRuntimeVersions`` at tag 4.10.0, whose ``setup.py`` pins ``azure-functions==1.13.0b1``.
  That library's ``Blueprint`` has no ``timer_trigger`` (nor any trigger decorator this app uses but
  ``route`` and the generic ones), so no worker before the v2 model was complete can index this app.
- The same repository, tag 4.29.0: the first with ``azure_functions_worker/http_v2.py`` (HTTP streams,
  which every route of this app needs); its ``setup.py`` has
  ``INSTALL_REQUIRES = ["azure-functions==1.20.0", ...]``. 4.30.x pin 1.20.0 too (``pyproject.toml``),
  4.31.0 1.21.0b2, 4.32.0 1.21.0b3, 4.33.0 1.21.0, 4.34.0 1.22.0b4.

So 1.20.0 is the oldest library the app meets in a worker that can run it; 1.22.0b4, the newest
worker's, is also what Flex Consumption leaves the app with (docs/architecture.md, "Worker layouts").
``func.CloudEvent`` only came in azure-functions 1.25.0 (absent from the 1.24.0 wheel on PyPI, present
in 1.25.0).

The library is installed, alone, into a side directory at test setup (``.layouts/``, ignored by git),
and a fresh interpreter imports the app with it first on ``sys.path``, decodes each event with that
library's own converter (``get_binding_registry()``, as the worker's ``bindings/meta.py`` does), and
awaits the function the worker would call.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mms_tracker.runtime import RUNTIME
from mms_tracker.service.queries import MessageNotFound, get_message, poison_entries
from tests.support import EXPECTED_FUNCTIONS, ROOT, Azurite, app_environment, fixture

OLDEST_BUNDLED = "1.20.0"  # azure-functions-python-worker 4.29.0, setup.py INSTALL_REQUIRES (see above)
NEWEST_BUNDLED = "1.22.0b4"  # azure-functions-python-worker 4.34.0, pyproject.toml dependencies
LAYOUTS = ROOT / ".layouts"
PIP_INSTALL = [
    sys.executable,
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    "--no-deps",
    "--upgrade",
]

# Run in a fresh interpreter: the worker's library first, then the app (as the worker's loader
# puts the script root on sys.path), the worker's trigger conversion, then the user function.
SCRIPT = r"""
import asyncio, inspect, json, sys, typing
sys.path[:0] = [sys.argv[1], "."]
import azure.functions as func
import function_app

registry = func.get_binding_registry()
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
triggers, checked = {}, {}
for name, function in functions.items():
    trigger = next(b for b in json.loads(function.get_function_json())["bindings"] if b["type"].endswith("Trigger"))
    triggers[name] = trigger["type"]
    if trigger["type"] != "httpTrigger":  # HTTP streams take the extension's types, not this library's
        hints = typing.get_type_hints(function.get_user_function())
        checked[name] = registry.get(trigger["type"]).check_input_type_annotation(hints[trigger["name"]])


def decode(binding, body, data_type="json", **metadata):
    value = json.dumps(body) if data_type == "json" else body
    fields = {k: func.meta.Datum(v, "string" if isinstance(v, str) else "int") for k, v in metadata.items()}
    return registry.get(binding).decode(func.meta.Datum(value, data_type), trigger_metadata=fields)


async def main():
    outcomes = []
    for body in json.loads(sys.stdin.read()):
        try:
            event = decode("eventGridTrigger", body)
        except Exception as exc:  # the worker fails the invocation here, before the app runs
            outcomes.append("conversion failed: " + type(exc).__name__)
            continue
        await functions["on_delivery_report"].get_user_function()(event)
        outcomes.append(type(event).__name__)
    timer = decode("timerTrigger", {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": True})
    await functions["expire_stale_messages"].get_user_function()(timer)
    chunk = decode("queueTrigger", "not a chunk", "string", Id="q-1", DequeueCount=2)
    await functions["send_campaign_chunk"].get_user_function()(chunk)  # malformed: logged, dropped
    outcomes.append(type(chunk).__name__)
    return outcomes


outcomes = asyncio.run(main())
found = {"version": func.__version__, "file": func.__file__, "triggers": triggers, "checked": checked}
print(json.dumps({**found, "outcomes": outcomes}))
"""


def bundled_library(version: str) -> Path:
    """azure-functions ``version`` alone (no dependencies) in a side directory, installed once."""
    target = LAYOUTS / f"azure-functions-{version}"
    stamp = target / ".installed"
    if not stamp.exists():
        out = subprocess.run(
            [*PIP_INSTALL, "--target", str(target), f"azure-functions=={version}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        stamp.touch()
    return target


def run_with(library: Path, env: dict[str, str], events: list[dict[str, Any]]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-I", "-c", SCRIPT, str(library)],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        input=json.dumps(events),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["log"] = out.stderr  # the app's warnings and errors (Python's last-resort handler)
    return result


def cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same report in the CloudEvents 1.0 schema (as Event Grid delivers it under that schema)."""
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": event["topic"],
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "data": event["data"],
    }


@pytest.mark.parametrize("version", [OLDEST_BUNDLED, NEWEST_BUNDLED])
async def test_the_app_indexes_and_takes_delivery_reports_on_the_library_a_worker_bundles(
    version: str, azurite: Azurite
) -> None:
    """Every function indexes and every non-HTTP annotation passes the worker's check; an Event Grid
    report is recorded. Before 1.25.0 the library's converter knows one schema: a CloudEvents 1.0 body
    becomes an ``EventGridEvent`` without its ``type`` (azure-functions 1.20.0, ``eventgrid.py``,
    ``EventGridEventInConverter.decode`` reads ``eventType``/``eventTime`` only), so that report can
    never be processed: it is kept as poison and acknowledged, not lost and not redelivered for ever
    (infra/ subscribes with ``EventGridSchema``, infra/hooks/postdeploy.sh, so Azure never sends it).
    An unreadable ``eventTime`` fails in the converter, before the app runs."""
    library = bundled_library(version)
    env = app_environment(azurite.connection_string)
    [event] = fixture("sms_delivery_report.eventgrid.json")
    cloud = cloud_event({**event, "id": "ce-1", "data": {**event["data"], "messageId": "m-ce-1"}})
    unreadable_time = {**event, "id": "yesterday-1", "eventTime": "yesterday"}
    unreadable_time["data"] = {**event["data"], "messageId": "m-yesterday-1"}
    result = run_with(library, env, [event, cloud, unreadable_time])

    assert result["version"] == version
    assert Path(result["file"]).is_relative_to(library)  # the worker's copy won, not requirements.txt's
    assert set(result["triggers"]) == EXPECTED_FUNCTIONS
    assert set(result["checked"]) == {name for name, kind in result["triggers"].items() if kind != "httpTrigger"}
    assert all(result["checked"].values()), result["checked"]  # the worker's loader accepts every annotation
    assert result["outcomes"] == ["EventGridEvent", "EventGridEvent", "conversion failed: ValueError", "QueueMessage"]
    assert "campaign_chunk_malformed queue_message=q-1" in result["log"]
    RUNTIME.configure_from_environment(env)
    try:
        record = await get_message(RUNTIME.store(), event["data"]["messageId"])
        assert record.status.value == "Delivered"
        poison, _ = await poison_entries(RUNTIME.store(), dt.date.today(), 10, None)
        assert [(p.event_id, p.reason) for p in poison] == [("ce-1", "unknown event type ''")]
        for never_recorded in ("m-ce-1", "m-yesterday-1"):
            with pytest.raises(MessageNotFound):
                await get_message(RUNTIME.store(), never_recorded)
    finally:
        await RUNTIME.aclose()


def test_make_setup_infra_installs_the_libraries_these_tests_use() -> None:
    found = re.search(r"^WORKER_LIBRARIES := (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found is not None and found[1].split() == [OLDEST_BUNDLED, NEWEST_BUNDLED]
