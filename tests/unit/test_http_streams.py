"""The app is indexable by the real Python worker in HTTP-streams mode.

With ``azurefunctions.extensions.http.fastapi`` imported, the worker (azure-functions-python-worker,
``azure_functions_worker/http_v2.py``: ``HttpV2Registry._check_http_v2_enabled`` calls the base
extension's ``HttpV2FeatureChecker.http_v2_enabled()``) serves *every* HTTP function through its
ASGI server, and at indexing (``azure_functions_worker/bindings/meta.py``,
``_check_http_input_type_annotation`` / ``_check_http_output_type_annotation``) accepts an HTTP
function only if ``typing.get_type_hints`` of it (``functions.py``) gives a trigger parameter the
extension's ``RequestTrackerMeta.check_type`` takes and a return type its
``ResponseTrackerMeta.check_type`` takes. These are the worker's own checks, run on our functions.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing

import azurefunctions.extensions.base as ext_base

import function_app
from tests.support import ROOT


def http_functions() -> list[tuple[str, typing.Any, str]]:
    found = []
    app = importlib.reload(function_app).app  # a fresh app: get_functions() may be called once per app
    for function in app.get_functions():
        bindings = json.loads(function.get_function_json())["bindings"]
        trigger = next((b for b in bindings if b["type"] == "httpTrigger"), None)
        if trigger is not None:
            found.append((function.get_function_name(), function.get_user_function(), trigger["name"]))
    return found


def test_the_extension_is_imported_so_the_worker_turns_http_streams_on() -> None:
    assert ext_base.HttpV2FeatureChecker.http_v2_enabled()
    assert ext_base.ModuleTrackerMeta.get_module() == "azurefunctions.extensions.http.fastapi.web"


def test_every_http_function_passes_the_workers_http_streams_type_checks() -> None:
    functions = http_functions()
    assert len(functions) >= 12, [name for name, _, _ in functions]
    for name, user_function, param in functions:
        hints = typing.get_type_hints(user_function)
        assert ext_base.RequestTrackerMeta.check_type(hints[param]), (name, hints[param])
        assert ext_base.ResponseTrackerMeta.check_type(hints["return"]), (name, hints["return"])
        assert inspect.iscoroutinefunction(user_function), name


# azure_functions_worker/utils/common.py, is_true_like: what the worker reads as true.
TRUE_LIKE = {"1", "true", "t", "yes", "y"}


def test_init_indexing_is_on_wherever_the_app_runs() -> None:
    # Without PYTHON_ENABLE_INIT_INDEXING the worker starts no HTTP server (dispatcher.py,
    # _handle__worker_init_request), yet still takes every HTTP function for an HTTP-streams one
    # (http_v2.py: only an explicit false turns it off) and waits for a request that never comes:
    # every route would hang until the function timeout. Azure (infra) and Core Tools
    # (local.settings.example.json) must both set it.
    bicep = (ROOT / "infra" / "app" / "function-app.bicep").read_text()
    [in_azure] = re.findall(r"\{ name: 'PYTHON_ENABLE_INIT_INDEXING', value: '([^']*)' \}", bicep)
    local = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert in_azure.strip().lower() in TRUE_LIKE
    assert str(local["PYTHON_ENABLE_INIT_INDEXING"]).strip().lower() in TRUE_LIKE
