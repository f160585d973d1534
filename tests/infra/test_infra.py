"""Offline checks of the deployment: Bicep parses, checkov passes, infra, azd hooks and code agree, and the
app indexes in a venv holding requirements.txt alone, as the Functions Python worker would load it."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from mms_tracker.adapters.campaigns import CAMPAIGN_CONTAINER, CAMPAIGN_POISON_QUEUE, CAMPAIGN_QUEUE, CAMPAIGN_TABLE
from mms_tracker.adapters.tables.base import TABLES
from mms_tracker.domain.reports import REPORT_EVENT_TYPES
from tests.infra import bicep_check
from tests.support import EXPECTED_FUNCTIONS, ROOT

INFRA = ROOT / "infra"
HOOKS = INFRA / "hooks"
INFRA_PYTHON = ROOT / ".venv-infra" / "bin" / "python"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"
# Settings the code reads that Azure deliberately does not set, each with its reason.
NOT_SET_IN_AZURE = {
    "QUERY_TOKEN_KEY": "unset, the app keeps a random key in its storage (docs/storage.md), shared by every instance",
    "ACS_CONNECTION_STRING": "access keys are not used in Azure: ACS_ENDPOINT with the managed identity",
    "TRACKING_STORAGE_CONNECTION_STRING": "shared keys are off: TRACKING_STORAGE_TABLE_ENDPOINT with the identity",
    "MMS_TEST_CRASH_AFTER_ACS": "a test-only fault hook: the worker exits after ACS accepted a send",
    "STATUS_EVENTS_KEY": "the topic's local auth is off: the identity publishes as EventGrid Data Sender",
    "WEBSITE_SITE_NAME": "set by App Service itself on every function app (the status events' source)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "Azure gets Application Insights; OTLP is for other receivers",
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
    # every file, none excluded (alerts.bicep included: issue 24 reported that pycep could not parse it; it
    # parses with the pycep-parser checkov 3.3.30 brings, 0.5.1, and with 0.7.1, and checkov's parser)
    assert set(parsed) == {str(path) for path in INFRA.rglob("*.bicep")}
    assert {f: r["error"] for f, r in parsed.items() if not r["ok"]} == {}
    assert parsed[str(INFRA / "app" / "alerts.bicep")]["checkov_resources"] == ["alerts", "insights"]
    declared = {t for r in parsed.values() for t in r["resources"]}
    assert {
        "Microsoft.Web/sites",
        "Microsoft.Web/serverfarms",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Communication/communicationServices",
        "Microsoft.EventGrid/systemTopics",
        "Microsoft.Insights/components",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.Insights/scheduledQueryRules",
    } <= {t.split("@")[0] for t in declared}
    # The subscription needs the deployed function: the postdeploy hook creates it, Bicep does not.
    assert not any("eventSubscriptions" in t for t in declared)


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


def hook_texts(stem: str) -> dict[str, str]:
    """The POSIX and PowerShell versions of one azd hook, by file name."""
    return {p.name: p.read_text() for p in (HOOKS / f"{stem}.sh", HOOKS / f"{stem}.ps1")}


def bicep_outputs() -> set[str]:
    return set(re.findall(r"^output (\w+) ", (INFRA / "main.bicep").read_text(), flags=re.MULTILINE))


def test_azure_yaml_runs_each_hook_in_both_shells_and_each_file_exists() -> None:
    azure_yaml = (ROOT / "azure.yaml").read_text()
    runs = re.findall(r"run: \./infra/hooks/(\S+)", azure_yaml)
    assert sorted(runs) == ["postdeploy.ps1", "postdeploy.sh", "preprovision.ps1", "preprovision.sh"]
    assert all((HOOKS / name).is_file() for name in runs)
    for name in runs:
        if name.endswith(".sh"):
            subprocess.run(["sh", "-n", str(HOOKS / name)], check=True, timeout=30)


def test_both_postdeploy_hooks_write_the_subscription_main_bicep_used_to_declare() -> None:
    outputs = bicep_outputs()
    for name, text in hook_texts("postdeploy").items():
        assert "az rest --method put" in text and "/eventSubscriptions/" in text, name
        event_types = set(re.findall(r"Microsoft\.Communication\.[A-Za-z]+DeliveryReportReceived", text))
        assert event_types and event_types <= REPORT_EVENT_TYPES, name
        targets = set(re.findall(r"(on_delivery_report|receive_delivery_reports)", text))
        assert targets == {"on_delivery_report", "receive_delivery_reports"} <= EXPECTED_FUNCTIONS, name
        assert "AzureFunction" in text and "/api/events/delivery-reports?code=" in text, name
        assert re.search(r"maxDeliveryAttempts.{0,4}30", text), name
        assert re.search(r"eventTimeToLiveInMinutes.{0,4}1440", text), name
        assert "deadLetterWithResourceIdentity" in text and "UserAssigned" in text, name
        read = set(re.findall(r"(?:value|Get-AzdValue) '?([A-Z][A-Z0-9_]+)", text))
        assert read - {"AZURE_SUBSCRIPTION_ID"} <= outputs, name  # azd sets the subscription itself
        assert {"EVENT_GRID_SYSTEM_TOPIC_NAME", "AZURE_FUNCTION_APP_ID"} <= read, name


def test_main_bicep_declares_the_system_topic_and_the_subscription_switch_is_gone() -> None:
    main = (INFRA / "main.bicep").read_text()
    assert "module systemTopic 'app/system-topic.bicep' = if (empty(existingSystemTopicName))" in main
    assert "param existingSystemTopicName string = ''" in main
    assert "@allowed(['trigger', 'batchedWebhook'])" in main
    for path in [*INFRA.rglob("*"), ROOT / "azure.yaml", ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        if path.is_file():
            text = path.read_text().lower()
            assert "deploy_event_subscription" not in text and "deployeventsubscription" not in text, path


def test_an_existing_acs_resource_is_checked_before_anything_is_created() -> None:
    for name, text in hook_texts("preprovision").items():
        assert "EXISTING_ACS_RESOURCE_ID" in text and "AZURE_SUBSCRIPTION_ID" in text, name
        assert "EXISTING_SYSTEM_TOPIC_NAME" in text and "az eventgrid system-topic list" in text, name


def test_the_deploying_principal_type_is_a_parameter() -> None:
    main = (INFRA / "main.bicep").read_text()
    rbac = (INFRA / "app" / "rbac.bicep").read_text()
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert "param principalType string = 'User'" in main
    assert parameters["principalType"] == {"value": "${AZURE_PRINCIPAL_TYPE=User}"}
    assert "principalType: deployerPrincipalType" in rbac and "principalType: 'User'" not in rbac


def test_the_continuation_token_key_never_changes_with_a_provision() -> None:
    # Unset in Azure: the app makes a random key once and keeps it in its own storage, which every
    # instance shares; nothing in infra can regenerate it (no newGuid(), no key parameter).
    assert not any("newGuid(" in p.read_text() for p in INFRA.rglob("*.bicep"))
    assert "QUERY_TOKEN_KEY" not in app_settings_in_infra()
    assert "queryTokenKey" not in (INFRA / "main.parameters.json").read_text()


def test_no_hook_runs_azd() -> None:
    """azd passes its environment to hooks; a hook that ran azd (nested in azd) can hang, so none does.
    An azd command may only appear inside a message to the user."""
    for path in sorted(HOOKS.iterdir()):
        code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        commands = [line for line in code if re.search(r"(^|[\s;(|&$])azd\s", line) and "azd hooks run" not in line]
        assert [c for c in commands if not re.search(r'"[^"]*azd [^"]*"', c)] == [], path.name


def test_every_setting_the_code_reads_is_set_by_infra() -> None:
    read = settings_the_code_reads()
    assert {"ACS_ENDPOINT", "MMS_SENDERS", "TRACKING_STORAGE_TABLE_ENDPOINT"} <= read
    missing = read - app_settings_in_infra() - set(NOT_SET_IN_AZURE)
    assert missing == set()


def test_no_key_or_connection_string_is_set_by_infra() -> None:
    text = "\n".join(p.read_text() for p in INFRA.rglob("*.bicep"))
    assert "AccountKey=" not in text and "accesskey=" not in text.lower()
    assert "listKeys(" not in text  # the batched webhook's function key is read by the postdeploy hook
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


def test_infra_creates_exactly_the_tables_the_app_uses() -> None:
    text = (INFRA / "app" / "storage.bicep").read_text()
    [names] = re.findall(r"var tableNames = \[([^\]]*)\]", text)
    assert tuple(re.findall(r"'([A-Za-z0-9]+)'", names)) == (*TABLES, CAMPAIGN_TABLE)


def test_alert_rules_query_the_metrics_and_attributes_the_app_records() -> None:
    alerts = (INFRA / "app" / "alerts.bicep").read_text()
    source = (ROOT / "mms_tracker" / "telemetry" / "__init__.py").read_text()
    queried = set(re.findall(r'name == "(mms\.[a-z.]+)"', alerts))
    assert queried == {"mms.reports", "mms.poison", "mms.ingest.lag"}
    assert queried <= set(re.findall(r'create_(?:counter|histogram)\(\s*"(mms\.[a-z.]+)"', source))
    dimensions = set(re.findall(r'customDimensions\["([a-z_.]+)"\]', alerts))
    assert dimensions == {"mms.outcome", "mms.delivery_status", "mms.reason"}
    assert all(f'"{name}"' in source for name in dimensions)
    assert "module alerts 'app/alerts.bicep'" in (INFRA / "main.bicep").read_text()


def test_host_json_sends_the_hosts_own_telemetry_through_opentelemetry() -> None:
    # A root "telemetryMode": "OpenTelemetry" in host.json, as the Functions docs give it
    # (learn.microsoft.com azure-functions/opentelemetry-howto, "Enable OpenTelemetry in the Functions host").
    assert json.loads((ROOT / "host.json").read_text())["telemetryMode"] == "OpenTelemetry"


def test_infra_creates_the_campaign_queue_its_poison_queue_and_the_attachment_container() -> None:
    text = (INFRA / "app" / "storage.bicep").read_text()
    queues = re.findall(r"queueServices/queues@[^']+' = \[for queue in \[([^\]]*)\]", text)
    assert queues and set(re.findall(r"'([a-z0-9-]+)'", queues[0])) == {CAMPAIGN_QUEUE, CAMPAIGN_POISON_QUEUE}
    assert f"name: '{CAMPAIGN_CONTAINER}'" in text


# Built-in role ids as published: MicrosoftDocs/azure-docs,
# articles/role-based-access-control/built-in-roles/storage.md ("Storage Queue Data Contributor":
# read, write and delete queues and messages; "Storage Blob Data Owner": full access to blob containers
# and data, a superset of "Storage Blob Data Contributor" ba92f5b4-2d11-453d-a403-e96b0029c9fe).
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"


def test_the_identity_may_use_the_campaign_queue_and_blobs() -> None:
    text = (INFRA / "app" / "rbac.bicep").read_text()
    assert f"storageQueueDataContributor: '{STORAGE_QUEUE_DATA_CONTRIBUTOR}'" in text
    assert f"storageBlobDataOwner: '{STORAGE_BLOB_DATA_OWNER}'" in text
    assert "roles.storageQueueDataContributor)" in text and "roles.storageBlobDataOwner)" in text


# Flex Consumption: site properties and app settings that are deprecated and "shouldn't be used when
# creating function app resources". MicrosoftDocs/azure-docs, articles/azure-functions/functions-app-settings.md,
# "Flex Consumption plan deprecations" (the table gives site properties as `properties.<name>`; they are
# set under properties or properties.siteConfig, so both are checked).
FLEX_DEPRECATED_APP_SETTINGS = {
    "ENABLE_ORYX_BUILD", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT", "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE", "WEBSITE_DNS_SERVER", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_VNET_ROUTE_ALL",
}  # fmt: skip
FLEX_DEPRECATED_SITE_PROPERTIES = {
    "alwaysOn", "containerSize", "dnsConfiguration", "ftpsState", "isReserved", "IsXenon", "javaVersion",
    "LinuxFxVersion", "netFrameworkVersion", "powerShellVersion", "functionAppScaleLimit", "preWarmedInstanceCount",
    "use32BitWorkerProcess", "vnetBackupRestoreEnabled", "vnetContentShareEnabled", "vnetImagePullEnabled",
    "vnetRouteAllEnabled", "windowsFxVersion",
}  # fmt: skip


def site_properties_and_settings(text: str) -> tuple[set[str], set[str]]:
    """The keys set under properties and properties.siteConfig of every Microsoft.Web/sites resource, and the
    names of its app settings, read with the offline Bicep parser."""
    reporter = bicep_check.Reporter("function-app.bicep")
    keys: set[str] = set()
    settings: set[str] = set()
    for statement in bicep_check.parse(text, reporter):
        if statement.resource_type is None or not (statement.resource_type.literal or "").startswith(
            "Microsoft.Web/sites@"
        ):
            continue
        assert isinstance(statement.value, bicep_check.Object)
        for prop in statement.value.properties:
            if prop.key == "properties" and isinstance(prop.value, bicep_check.Object):
                for inner in prop.value.properties:
                    keys.add(inner.key or "")
                    if inner.key == "siteConfig" and isinstance(inner.value, bicep_check.Object):
                        for config in inner.value.properties:
                            keys.add(config.key or "")
                            if config.key == "appSettings" and isinstance(config.value, bicep_check.Array):
                                for item in config.value.items:
                                    assert isinstance(item, bicep_check.Object)
                                    settings |= {
                                        str(bicep_check.literal_value(p.value))
                                        for p in item.properties
                                        if p.key == "name"
                                    }
    assert reporter.diagnostics == []
    return keys, settings


def test_the_function_app_sets_no_site_property_or_setting_flex_consumption_deprecates() -> None:
    keys, settings = site_properties_and_settings((INFRA / "app" / "function-app.bicep").read_text())
    assert {"siteConfig", "functionAppConfig", "minTlsVersion"} <= keys and "ACS_ENDPOINT" in settings
    deprecated = {name.lower() for name in FLEX_DEPRECATED_SITE_PROPERTIES}
    assert sorted(key for key in keys if key.lower() in deprecated) == []
    assert sorted(settings & FLEX_DEPRECATED_APP_SETTINGS) == []


def test_the_flex_check_finds_a_deprecated_property_where_it_stands() -> None:
    bad = """
resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'x'
  properties: {
    vnetRouteAllEnabled: true
    siteConfig: {
      ftpsState: 'Disabled'
      appSettings: [
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
      ]
    }
  }
}
"""
    keys, settings = site_properties_and_settings(bad)
    assert {"ftpsState", "vnetRouteAllEnabled"} <= keys and "FUNCTIONS_WORKER_RUNTIME" in settings


def ignore_patterns(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """gitignore matching as both files use it: a pattern with no slash matches any path component."""
    assert all("/" not in pattern for pattern in patterns), "a pattern with a slash needs a real matcher"
    return any(fnmatch.fnmatchcase(part, pattern) for part in relative.split("/") for pattern in patterns)


def test_funcignore_leaves_out_everything_git_ignores_and_azds_environments() -> None:
    funcignore, gitignore = ignore_patterns(ROOT / ".funcignore"), ignore_patterns(ROOT / ".gitignore")
    # every pattern git ignores is left out of the package (by the same pattern or a wider one)
    assert [p for p in gitignore if not any(fnmatch.fnmatchcase(p, f) for f in funcignore)] == []
    never_deployed = [
        ".azure/mms-prod/.env",
        ".azure/config.json",
        ".python_packages/lib/site-packages/httpx/__init__.py",
        "mms_tracker/__pycache__/app.cpython-311.pyc",
        "mms_tracker/stale.pyc",
        ".coverage",
        "mutants/mms_tracker/domain.py",
        ".venv/bin/python",
        ".venv-infra/bin/checkov",
        "local.settings.json",
        "tests/unit/test_x.py",
        "infra/main.bicep",
        "localdev/host/server.py",
        "node_modules/azurite/package.json",
        ".github/workflows/ci.yml",
    ]
    assert [path for path in never_deployed if not ignored(path, funcignore)] == []
    deployed = [
        "function_app.py",
        "host.json",
        "requirements.txt",
        "mms_tracker/api/messages.py",
        "mms_tracker/py.typed",
    ]
    assert [path for path in deployed if ignored(path, funcignore)] == []
    # and the app's own files are all in the package
    for path in (ROOT / "mms_tracker").rglob("*.py"):
        assert not ignored(path.relative_to(ROOT).as_posix(), funcignore), path


def test_infra_never_creates_the_acs_resource_so_azd_down_cannot_delete_it() -> None:
    """azd down deletes rg-<env>; an ACS resource created there would go with the numbers bought on it. So
    infra only references one (`existing`), and both preprovision hooks refuse none or one in rg-<env>."""
    declared: list[tuple[str, bool]] = []
    for path in INFRA.rglob("*.bicep"):
        reporter = bicep_check.Reporter(str(path))
        for statement in bicep_check.parse(path.read_text(), reporter):
            kind = statement.resource_type.literal if statement.resource_type else None
            if kind and kind.startswith("Microsoft.Communication/communicationServices@"):
                declared.append((path.name, statement.existing))
    assert declared and all(existing for _, existing in declared), declared
    main = (INFRA / "main.bicep").read_text()
    assert "param existingAcsResourceId string\n" in main and "param acsDataLocation" not in main
    for name, text in hook_texts("preprovision").items():
        assert "EXISTING_ACS_RESOURCE_ID is not set" in text and "rg-" in text and "AZURE_ENV_NAME" in text, name


ACS_PROVIDER = "/providers/Microsoft.Communication/communicationServices/my-acs"


@pytest.mark.parametrize(
    ("environment", "refused"),
    [
        ({}, "EXISTING_ACS_RESOURCE_ID is not set"),
        (
            {"EXISTING_ACS_RESOURCE_ID": f"/subscriptions/s1/resourceGroups/RG-Prod{ACS_PROVIDER}"},
            "rg-prod, the resource group this environment creates",
        ),
        (
            {"EXISTING_ACS_RESOURCE_ID": f"/subscriptions/s2/resourceGroups/rg-acs{ACS_PROVIDER}"},
            "is in subscription s2",
        ),
        (
            {"EXISTING_ACS_RESOURCE_ID": "/subscriptions/s1/resourceGroups/rg-acs/providers/Microsoft.Web/sites/a"},
            "is not an ACS resource id",
        ),
        (
            {"EXISTING_ACS_RESOURCE_ID": f"/subscriptions/s1/resourceGroups/rg-acs{ACS_PROVIDER}"},
            None,
        ),
    ],
)
def test_the_posix_preprovision_hook_refuses_a_missing_or_doomed_acs_resource(
    environment: dict[str, str], refused: str | None
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "AZURE_ENV_NAME": "prod", "AZURE_SUBSCRIPTION_ID": "s1"}
    env |= {"EXISTING_SYSTEM_TOPIC_NAME": "topic"} | environment  # a named topic: no az call
    out = subprocess.run(["sh", str(HOOKS / "preprovision.sh")], env=env, capture_output=True, text=True, timeout=30)
    if refused is None:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode == 1 and refused in out.stderr, out.stderr


def test_the_func_publish_section_lists_every_setting_infra_sets_and_says_init_indexing_is_needed() -> None:
    readme = (ROOT / "docs" / "deploy.md").read_text()  # the README's deploy section moved there
    section = readme[readme.index("## With the func CLI") : readme.index("## Calling the deployed API")]
    text = (INFRA / "app" / "function-app.bicep").read_text()
    knobs = set(re.findall(r"\{ name: '([A-Za-z0-9_]+)', value: '[0-9.]+' \}", text)) - {"PYTHON_ENABLE_INIT_INDEXING"}
    assert knobs and "PYTHON_ENABLE_INIT_INDEXING" in app_settings_in_infra()
    missing = sorted(name for name in app_settings_in_infra() - knobs if f"`{name}" not in section)
    assert missing == []
    row = next(line for line in section.splitlines() if line.startswith("| `PYTHON_ENABLE_INIT_INDEXING`"))
    assert "**yes**" in row and "`1`" in row and "indexes no function" in row
    assert "func azure functionapp publish" in section
