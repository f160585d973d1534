"""The models and the OpenAPI document judge every instance the same way.

For each model, Hypothesis mutates a valid instance (a field replaced by a value near its
limits, its pattern, or of another type; a field removed) and asserts that the model accepts it
exactly when the document's schema (``jsonschema``, Draft 2020-12) does. A mutant model (a limit
raised, a pattern loosened, a case-sensitive enum) or a hand edit of the document fails here.

Two things no JSON Schema can say are left out of the generated values, by design: strings with
lone surrogates (the models refuse them as not unicode) and integer-valued floats (JSON Schema
counts ``1.0`` as an integer; the models, strict, do not). JSON Schema patterns are ECMA-262,
where ``$`` ends the input; Python's ``re`` also lets ``$`` match before a final newline, so the
schema check here reads ``$`` as ``\\Z``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mms_tracker.api import models
from mms_tracker.api.openapi import openapi_document

DOCUMENT = openapi_document()
REGISTRY = Registry().with_resource("urn:doc", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})


def schema_accepts(model: type[BaseModel], instance: Any) -> bool:
    validator = Validator({"$ref": f"urn:doc#/components/schemas/{model.__name__}"}, registry=REGISTRY)
    return validator.is_valid(instance)


def model_accepts(model: type[BaseModel], instance: Any, *, json_mode: bool) -> bool:
    try:
        if json_mode:
            model.model_validate_json(json.dumps(instance), strict=True)
        else:
            model.model_validate(instance)
    except ValidationError:
        return False
    return True


UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CANDIDATES: list[Any] = [
    None,
    True,
    0,
    1,
    10,
    1000,
    1001,
    -1,
    [],
    {},
    [1],
    {"x": 1},
    "",
    " ",
    "x",
    "+18004567891",
    "+18004567891\n",
    "+1800456789",
    "18004567891",
    "+0800456789",
    "+١٨٠٠٤٥٦٧٨٩١",
    UUID,
    UUID.upper(),
    UUID + "\n",
    UUID[:-1],
    "{" + UUID + "}",
    "Tue, 26 Mar 2019 16:06:51 GMT",
    "Wed, 26 Mar 2019 16:06:51 GMT",
    "tue, 26 Mar 2019 16:06:51 GMT",
    "Tue, 26 Mar 2019 16:06:51 +0000",
    "2019-03-26T16:06:51Z",
    "image/png",
    "IMAGE/PNG",
    "Audio/X-Wav",
    "video/x-msvideo",
    "application/pdf",
    "image/jpg",
    "image/png ",
    "iVBORw0KGgo=",
    "iVBORw0KGgo",
    "iVBO Rw0K",
    "====",
    "Delivered",
    "Accepted",
    "accepted",
    "rejected",
    "x" * 256,
    "x" * 257,
    "x" * 1000,
    "x" * 1001,
    "é" * 256,
    "é" * 257,
    "2026-11-29T09:00:00Z",
]
TEXT = st.sampled_from([c for c in CANDIDATES if isinstance(c, str)])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 1002),
    st.sampled_from([2**40, -(2**40)]),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    TEXT,
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6
)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def mutants(seed: dict[str, Any], extra_keys: list[str]) -> st.SearchStrategy[Any]:
    """The seed with one to three values replaced by anything (nested values too), or keys removed."""
    paths = _paths(seed) + [(k,) for k in extra_keys]
    one = st.tuples(st.sampled_from(paths), VALUES, st.booleans())
    return st.lists(one, min_size=1, max_size=3).map(lambda changes: _apply_all(seed, changes))


def _change(document: Any, path: tuple[Any, ...], value: Any, remove: bool) -> Any:
    document = copy.deepcopy(document)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if remove and isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    return document


def _apply_all(seed: Any, changes: list[tuple[Any, ...]]) -> Any:
    document = seed
    for path, value, remove in changes:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier change removed the path's parent
            document = _change(document, path, value, remove)
    return document


SEND = {
    "from": "+18004567891",
    "recipients": [
        {
            "to": "+18335852071",
            "repeatabilityRequestId": UUID,
            "repeatabilityFirstSent": "Tue, 26 Mar 2019 16:06:51 GMT",
        },
        {"to": "+112345678910abc"},
    ],
    "message": "Hello",
    "attachments": [{"contentType": "image/png", "contentInBase64": "iVBORw0KGgo="}],
    "sendOptions": {"enableDeliveryReport": True, "tag": "CustomerId"},
}
TIME = "2026-11-29T09:00:00Z"
SUMMARY = {
    "messageId": "m-1",
    "to": "+18335852071",
    "from": "+18004567891",
    "tag": "t",
    "status": "Delivered",
    "statusDetails": "No error.",
    "createdAt": TIME,
    "updatedAt": TIME,
    "completedAt": TIME,
    "deliveryAttempts": [{"timestamp": TIME, "segmentsSucceeded": 1, "segmentsFailed": 0}],
}
EVENT = {
    "eventId": "e",
    "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
    "deliveryStatus": "Delivered",
    "deliveryStatusDetails": None,
    "receivedTimestamp": TIME,
    "recordedAt": TIME,
    "tag": None,
}
BY_STATUS = {"Accepted": 1, "Delivered": 0, "Failed": 0, "Rejected": 0, "Expired": 0}
CASES: list[tuple[type[BaseModel], dict[str, Any], bool]] = [
    (models.MmsSendMessageRequest, SEND, False),
    (models.ListMessagesQuery, {"tag": "t", "status": "Failed", "pageSize": 10, "continuationToken": "abc"}, True),
    (
        models.MmsSendResult,
        {"value": [{"to": "+1", "messageId": "m", "httpStatusCode": 202, "successful": True}]},
        True,
    ),
    (models.MessageRecord, SUMMARY | {"events": [EVENT]}, True),
    (models.MessagePage, {"items": [SUMMARY], "continuationToken": None}, True),
    (
        models.TagSummary,
        {
            "tag": "t",
            "total": 1,
            "byStatus": BY_STATUS,
            "latency": {
                "p50Seconds": 2.0,
                "p90Seconds": None,
                "p99Seconds": 5.0,
                "count": 1,
                "histogram": [{"upToSeconds": 1, "count": 0}, {"upToSeconds": None, "count": 1}],
            },
            "failureReasons": {"Carrier rejected": 3},
        },
        True,
    ),
    (
        models.TagPage,
        {
            "items": [{"tag": "t", "total": 1, "byStatus": BY_STATUS, "lastActivityAt": "2026-11-27T09:00:00Z"}],
            "continuationToken": None,
        },
        True,
    ),
    (
        models.PoisonPage,
        {
            "items": [
                {
                    "eventId": "e",
                    "eventType": "t",
                    "reason": "r",
                    "recordedAt": "2026-11-27T09:00:00Z",
                    "payload": "{}",
                }
            ],
            "continuationToken": "abc",
        },
        True,
    ),
    (models.ListTagsQuery, {"pageSize": 10, "continuationToken": "abc"}, True),
    (models.PoisonQuery, {"since": "2026-11-27", "pageSize": 10, "continuationToken": "abc"}, True),
    (models.DashboardQuery, {"tag": "t", "view": "poison"}, True),
    (models.Problem, {"type": "about:blank", "title": "x", "status": 400, "detail": "d", "errors": []}, True),
]


@pytest.mark.parametrize(("model", "seed", "json_mode"), CASES, ids=[c[0].__name__ for c in CASES])
def test_every_single_change_of_a_valid_instance_is_judged_alike(
    model: type[BaseModel], seed: dict[str, Any], json_mode: bool
) -> None:
    """Exhaustively: each field replaced by each candidate value, and each field removed."""
    judged = {True: 0, False: 0}
    for path in [*_paths(seed), ("unknown",)]:
        for value, remove in [*((c, False) for c in CANDIDATES), (None, True)]:
            instance = _apply_all(seed, [(path, value, remove)])
            verdict = model_accepts(model, instance, json_mode=json_mode)
            assert verdict == schema_accepts(model, instance), (path, value, remove)
            judged[verdict] += 1
    assert judged[True] and judged[False]


@pytest.mark.parametrize(("model", "seed", "json_mode"), CASES, ids=[c[0].__name__ for c in CASES])
def test_the_model_and_the_document_agree_on_every_instance(
    model: type[BaseModel], seed: dict[str, Any], json_mode: bool
) -> None:
    assert model_accepts(model, seed, json_mode=json_mode) and schema_accepts(model, seed)
    judged = {True: 0, False: 0}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(mutants(seed, extra_keys=["unknown"]))
    def agree(instance: Any) -> None:
        verdict = model_accepts(model, instance, json_mode=json_mode)
        assert verdict == schema_accepts(model, instance), instance
        judged[verdict] += 1

    agree()
    assert judged[True] and judged[False]  # both kinds were generated and judged
