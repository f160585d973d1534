"""Offline checks of the deployment: Bicep parses, checkov passes, infra and code agree, and the app
indexes in a venv holding requirements.txt alone, as the Functions Python worker would load it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from mms_tracker.reports import REPORT_EVENT_TYPES
from tests.support import EXPECTED_FUNCTIONS, ROOT

INFRA = ROOT / "infra"
INFRA_PYTHON = ROOT / ".venv-infra" / "bin" / "python"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"
# Settings the code reads that Azure deliberately does not set, each with its reason.
NOT_SET_IN_AZURE = {
    "ACS_CONNECTION_STRING": "access keys are not used in Azure: ACS_ENDPOINT with the managed identity",
    "TRACKING_STORAGE_CONNECTION_STRING": "shared keys are off: TRACKING_STORAGE_TABLE_ENDPOINT with the identity",
}


def needs(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup-infra` (make test does)")


def app_settings_in_infra() -> set[str]:
    text = (INFRA / "app" / "function-app.bicep").read_text()
    return set(re.findall(r"\{ name: '([A-Za-z0-9_]+)', value:", text))


def settings_the_code_reads() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "mms_tracker").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', text))
        names |= set(re.findall(r'\(\s*"[a-z_]+",\s*"([A-Z][A-Z0-9_]+)",', text))  # the numeric settings tables
    return names


def test_every_bicep_file_parses() -> None:
    needs(INFRA_PYTHON)
    out = subprocess.run(
        [str(INFRA_PYTHON), str(ROOT / "tests" / "infra" / "bicep_inspect.py"), str(INFRA)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    parsed = json.loads(out.stdout)
    assert len(parsed) >= 8
    assert {f: r["error"] for f, r in parsed.items() if not r["ok"]} == {}
    declared = {t for r in parsed.values() for t in r["resources"]}
    assert {
        "Microsoft.Web/sites",
        "Microsoft.Web/serverfarms",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Communication/communicationServices",
        "Microsoft.EventGrid/systemTopics",
        "Microsoft.EventGrid/systemTopics/eventSubscriptions",
        "Microsoft.Insights/components",
        "Microsoft.Authorization/roleAssignments",
    } <= {t.split("@")[0] for t in declared}


def test_checkov_reports_no_failed_check_and_every_skip_has_a_reason() -> None:
    needs(CHECKOV)
    out = subprocess.run(
        [str(CHECKOV), "-d", str(INFRA), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(out.stdout)
    results = report["results"]
    assert [(c["check_id"], c["file_path"]) for c in results["failed_checks"]] == []
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0
    for skipped in results["skipped_checks"]:
        assert len((skipped.get("check_result", {}).get("suppress_comment") or "").strip()) > 10, skipped["check_id"]


def test_event_subscription_targets_the_registered_function_and_parsed_event_types() -> None:
    main = (INFRA / "main.bicep").read_text()
    subscription = (INFRA / "app" / "event-subscription.bicep").read_text()
    [function_name] = re.findall(r"functionName: '([^']+)'", main)
    assert function_name == "on_delivery_report"
    assert function_name in EXPECTED_FUNCTIONS
    event_types = set(re.findall(r"'(Microsoft\.Communication\.[A-Za-z]+DeliveryReportReceived)'", subscription))
    assert event_types and event_types <= REPORT_EVENT_TYPES
    assert "endpointType: 'AzureFunction'" in subscription
    assert "/api/events/delivery-reports?code=" in subscription  # the batched option
    assert "@allowed(['trigger', 'batchedWebhook'])" in main
    assert "maxDeliveryAttempts: 30" in subscription and "eventTimeToLiveInMinutes: 1440" in subscription
    assert "deadLetterWithResourceIdentity" in subscription


def test_every_setting_the_code_reads_is_set_by_infra() -> None:
    read = settings_the_code_reads()
    assert {"ACS_ENDPOINT", "MMS_SENDERS", "TRACKING_STORAGE_TABLE_ENDPOINT"} <= read
    missing = read - app_settings_in_infra() - set(NOT_SET_IN_AZURE)
    assert missing == set()


def test_no_key_or_connection_string_is_set_by_infra() -> None:
    text = "\n".join(p.read_text() for p in INFRA.rglob("*.bicep"))
    assert "AccountKey=" not in text and "accesskey=" not in text.lower()
    # The one key read: the function key in the batched webhook's URL, which Event Grid needs.
    for path in INFRA.rglob("*.bicep"):
        if "listKeys(" in path.read_text():
            assert path.name == "event-subscription.bicep"
            assert path.read_text().count("listKeys(") == 1
    assert "allowSharedKeyAccess: false" in text and "DisableLocalAuth: true" in text
    assert not (app_settings_in_infra() & set(NOT_SET_IN_AZURE))


AZURE_SETTINGS = {
    "ACS_ENDPOINT": "https://acs-example.communication.azure.com",
    "MMS_SENDERS": "+18004567891",
    "TRACKING_STORAGE_TABLE_ENDPOINT": "https://stexample.table.core.windows.net",
}


@pytest.mark.parametrize("settings", [AZURE_SETTINGS, {}], ids=["as-infra-sets-it", "no-settings-at-all"])
def test_a_clean_venv_with_requirements_txt_alone_indexes_every_function(settings: dict[str, str]) -> None:
    needs(RUNTIME_PYTHON)
    env = {"PATH": os.environ.get("PATH", ""), **settings}
    script = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): json.loads(f.get_function_json())['bindings'][0]['type']"
        " for f in function_app.app.get_functions()}))"
    )
    out = subprocess.run(
        [str(RUNTIME_PYTHON), "-I", "-c", f"import sys; sys.path.insert(0, '.'); exec({script!r})"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    functions = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(functions) == EXPECTED_FUNCTIONS
    assert functions["on_delivery_report"] == "eventGridTrigger"
    assert functions["expire_stale_messages"] == "timerTrigger"
