"""The OpenAPI document and the functions the app indexes describe the same routes.

Every HTTP function the Functions host indexes is an operation of the document at its path and
methods, with every problem status its declaration (``mms_tracker/api/routes.py``) says it can
answer; every documented operation is an indexed function. The statuses the issue found missing
(409 on the two creating POSTs, 413 on both bodies, 503 on every route) are pinned by hand.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from mms_tracker.api.blueprints import BLUEPRINTS
from mms_tracker.api.openapi import openapi_document
from mms_tracker.api.routes import BY_FUNCTION, ROUTES

DOCUMENT = openapi_document()
# What Microsoft's host takes as a method of an HTTP trigger but the document lists no operation for:
# the CloudEvents abuse-protection handshake (CloudEvents webhook spec, section 4) answered by
# POST /events/delivery-reports' OPTIONS.
HANDSHAKE_METHODS = {"OPTIONS"}


def indexed_http_triggers() -> dict[str, dict[str, Any]]:
    """Each indexed HTTP function's trigger binding (route, methods, authLevel), by function name."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in BLUEPRINTS:
        app.register_functions(blueprint)
    triggers = {}
    for function in app.get_functions():
        bindings = json.loads(function.get_function_json())["bindings"]
        trigger = next((b for b in bindings if b["type"] == "httpTrigger"), None)
        if trigger is not None:
            triggers[function.get_function_name()] = trigger
    return triggers


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, operations in DOCUMENT["paths"].items() for method in operations}


def test_every_indexed_http_function_is_declared_as_it_is_registered() -> None:
    triggers = indexed_http_triggers()
    assert set(triggers) == set(BY_FUNCTION)
    for name, trigger in triggers.items():
        route = BY_FUNCTION[name]
        assert trigger["route"] == route.path, name
        assert sorted(trigger["methods"]) == sorted(route.methods), name
        assert trigger["authLevel"] == route.auth.name, name


def test_every_indexed_http_function_is_documented_with_every_status_it_can_answer() -> None:
    for name, trigger in indexed_http_triggers().items():
        for method in set(trigger["methods"]) - HANDSHAKE_METHODS:
            operation = DOCUMENT["paths"]["/" + trigger["route"]][method.lower()]
            answered = {int(status) for status in operation["responses"]}
            assert BY_FUNCTION[name].problems <= answered, (name, method)
            for status in BY_FUNCTION[name].problems:
                [media_type] = operation["responses"][str(status)]["content"]
                assert media_type == "application/problem+json", (name, status)


def test_every_documented_operation_is_an_indexed_function() -> None:
    indexed = {
        ("/" + trigger["route"], method)
        for trigger in indexed_http_triggers().values()
        for method in set(trigger["methods"]) - HANDSHAKE_METHODS
    }
    assert documented_operations() == indexed


def test_the_statuses_the_document_was_missing_are_there() -> None:
    def answered(path: str, method: str) -> set[str]:
        return set(DOCUMENT["paths"][path][method]["responses"])

    # A reused repeatabilityRequestId (POST /messages) or Idempotency-Key (POST /campaigns) with a
    # different request is 409; a body over its byte limit is 413.
    assert {"409", "413"} <= answered("/messages", "post")
    assert {"409", "413"} <= answered("/campaigns", "post")
    # A misconfigured app answers 503 on every route (README, Settings), the anonymous ones included.
    for path, method in documented_operations():
        assert "503" in answered(path, method.lower()), (path, method)


def test_function_level_routes_document_the_hosts_401_and_anonymous_ones_do_not() -> None:
    for route in ROUTES:
        keyed = route.auth == func.AuthLevel.FUNCTION
        for method in route.documented_methods:
            operation = DOCUMENT["paths"]["/" + route.path][method.lower()]
            assert ("401" in operation["responses"]) == keyed, route.function
            assert bool(operation["security"]) == keyed, route.function
