"""The lean entity-group transaction sends the SDK's own ``$batch`` bytes and answers as the SDK.

Requests are compared byte for byte with what ``TableClient.submit_transaction`` sends for the
same operations (a recording transport answering a canned 202), once the two uuid4 boundaries,
the dates and the signature derived from them are normalised. Results and errors are compared
on a real Azurite. The batch format (one changeset of ``application/http`` parts with
``Content-ID``, ``HTTP/1.1`` status lines per part in the response) is the one documented in
"Performing entity group transactions",
https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import EdmType, RequestTooLargeError, TableEntity, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from mms_tracker.adapters.tables.transaction import submit_transaction
from tests.support import Azurite

PK = "p'/\\#?é中😀"  # quote, slash, backslash, hash, question mark; BMP and astral planes


class Colour(enum.Enum):
    RED = "red"


def _entity(row: str, **values: Any) -> dict[str, Any]:
    return {"PartitionKey": PK, "RowKey": row, **values}


# Every EDM type the SDK serialises (azure/data/tables/_serialize.py _PYTHON_TO_ENTITY_CONVERSIONS,
# _EDM_TO_ENTITY_CONVERSIONS): plain Python values and explicit (value, EdmType) tuples.
VALUES: dict[str, Any] = {
    "text": "é中😀\U0010fffd'\"\\/#?\n\t",
    "int32": 2**31 - 1,
    "negative": -(2**31),
    "int64": (2**40, EdmType.INT64),
    "int64_str": ("-9223372036854775808", "Edm.Int64"),
    "float": 1.5,
    "nan": float("nan"),
    "inf": float("inf"),
    "minus_inf": float("-inf"),
    "flag": True,
    "off": False,
    "naive": dt.datetime(2026, 12, 4, 6, 30, 1, 123456),
    "aware": dt.datetime(2026, 12, 4, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "utc": dt.datetime(2026, 12, 4, tzinfo=dt.UTC),
    "blob": b"\x00\xff binary",
    "guid": uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833"),
    "colour": Colour.RED,
    "nothing": None,
    "typed_bool": (True, EdmType.BOOLEAN),
    "typed_int32": (7, EdmType.INT32),
    "typed_double": (2.0, EdmType.DOUBLE),
}

ETAG = "W/\"datetime'2026-12-04T05%3A00%3A00.0000000Z'\""
ENTITY_WITH_ETAG = TableEntity(PartitionKey=PK, RowKey="meta")
ENTITY_WITH_ETAG._metadata = {"etag": ETAG}  # as a read returns it

CASES: dict[str, list[tuple[Any, ...]]] = {
    "create every type": [("create", _entity("c😀/\\#?'", **VALUES))],
    "upsert merge": [("upsert", _entity("u", **VALUES))],
    "upsert replace": [("upsert", _entity("u"), {"mode": UpdateMode.REPLACE})],
    "upsert mode as text": [("upsert", _entity("u"), {"mode": "replace"})],
    "update merge no etag": [("update", _entity("m", a=1))],
    "update replace etag": [
        (
            "update",
            _entity("r", a=1),
            {"mode": "replace", "etag": ETAG, "match_condition": MatchConditions.IfNotModified},
        )
    ],
    "update merge etag": [("update", _entity("r"), {"etag": ETAG, "match_condition": MatchConditions.IfNotModified})],
    "update etag from entity metadata": [  # the SDK raises: its update drops the metadata first
        ("update", ENTITY_WITH_ETAG, {"match_condition": MatchConditions.IfNotModified})
    ],
    "delete etag from entity metadata": [
        ("delete", ENTITY_WITH_ETAG, {"match_condition": MatchConditions.IfNotModified})
    ],
    "two partitions": [("upsert", _entity("a")), ("upsert", {"PartitionKey": "other", "RowKey": "b"})],
    "unknown kind": [("upsert", _entity("a")), ("merge", {"PartitionKey": "other", "RowKey": "b"})],
    "missing key": [("upsert", {"PartitionKey": PK})],
    "int64 too large": [("upsert", _entity("a", n=2**40))],
    "delete no etag": [("delete", _entity("d"))],
    "delete etag": [("delete", _entity("d"), {"etag": ETAG, "match_condition": MatchConditions.IfNotModified})],
    "every kind": [
        ("create", _entity("1", n=1)),
        ("upsert", _entity("2", n=2)),
        ("update", _entity("3", n=3), {"mode": "replace"}),
        ("delete", _entity("4")),
    ],
    "100 operations": [
        (("create", "upsert", "update", "delete")[i % 4], _entity(f"row{i}", n=i, text="x" * (i % 7)))
        for i in range(100)
    ],
}

REFUSED_BEFORE_SENDING = {
    "update etag from entity metadata",
    "two partitions",
    "unknown kind",
    "missing key",
    "int64 too large",
}

_VOLATILE = re.compile(
    rb"(batch|changeset)_[0-9a-f-]{36}|(?<=[Dd]ate: )[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"
)
_SKIPPED_HEADERS = {"x-ms-client-request-id", "x-ms-date", "date", "authorization"}


def _normalised(request: Any) -> tuple[dict[str, str], bytes]:
    headers = {
        name: _VOLATILE.sub(rb"\1_X", value.encode()).decode()
        for name, value in request.headers.items()
        if name.lower() not in _SKIPPED_HEADERS
    }
    return headers, _VOLATILE.sub(lambda m: (m.group(1) or b"date") + b"_X", request.body)


def _error(exc: BaseException) -> tuple[Any, ...]:
    """What a caller sees of an error, with the service's request id and time taken out."""
    message = re.sub(r"RequestId:\S+|Time:\S+", "", str(getattr(exc, "message", exc)))
    return (
        type(exc),
        getattr(exc, "status_code", None),
        getattr(exc, "error_code", None),
        getattr(exc, "index", None),
        message,
    )


class _Recorder(AioHttpTransport):
    """Azure-core's own aiohttp transport, keeping each request it forwards to Azurite."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Any] = []

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        return await super().send(request, **kwargs)


@pytest.fixture
async def recorded(azurite: Azurite) -> AsyncIterator[Callable[[], tuple[TableClient, _Recorder]]]:
    clients: list[TableClient] = []

    def client() -> tuple[TableClient, _Recorder]:
        recorder = _Recorder()
        made = TableClient.from_connection_string(azurite.connection_string, "Missing", transport=recorder)
        clients.append(made)
        return made, recorder

    yield client
    for made in clients:
        await made.close()


@pytest.mark.parametrize("case", list(CASES))
async def test_lean_request_is_the_sdks_byte_for_byte(
    case: str, recorded: Callable[[], tuple[TableClient, _Recorder]]
) -> None:
    operations = CASES[case]
    (sdk, sdk_sent), (lean, lean_sent) = recorded(), recorded()
    # The table does not exist, so neither request changes anything and both fail alike.
    with pytest.raises((HttpResponseError, ValueError, TypeError)) as sdk_error:
        await sdk.submit_transaction(operations)
    with pytest.raises((HttpResponseError, ValueError, TypeError)) as lean_error:
        await submit_transaction(lean, operations)

    assert len(sdk_sent.requests) == len(lean_sent.requests) == (0 if case in REFUSED_BEFORE_SENDING else 1)
    assert [_normalised(r) for r in lean_sent.requests] == [_normalised(r) for r in sdk_sent.requests]
    assert _error(lean_error.value) == _error(sdk_error.value)


@pytest.fixture
async def twin_tables(azurite: Azurite) -> AsyncIterator[tuple[TableClient, TableClient]]:
    """Two fresh tables on the real Azurite: one for the SDK, one for the lean transaction."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    names = [f"lean{uuid.uuid4().hex[:12]}" for _ in range(2)]
    tables = [await service.create_table(name) for name in names]
    yield tables[0], tables[1]
    for name in names:
        await service.delete_table(name)
    await service.close()


def _stored(entity: TableEntity) -> dict[str, Any]:
    return dict(entity)


async def _both(
    tables: tuple[TableClient, TableClient],
    setup: list[tuple[Any, ...]],
    operations: Callable[[list[dict[str, Any]]], list[tuple[Any, ...]]],
) -> tuple[Any, Any]:
    """Run ``setup`` with the SDK on both tables, then ``operations`` (built from the setup's
    results) with the SDK on one and the lean transaction on the other; each outcome is its
    results' keys or its error."""
    outcomes = []
    for table, submit in zip(tables, (lambda t, o: t.submit_transaction(o), submit_transaction), strict=True):
        prepared = await table.submit_transaction(setup) if setup else []
        try:
            results = await submit(table, operations(prepared))
        except (HttpResponseError, ValueError) as exc:
            outcomes.append(_error(exc))
        else:
            assert all(re.fullmatch(r'W/"datetime\'[^\']+\'"', r["etag"]) for r in results if "etag" in r)
            outcomes.append([sorted(r) for r in results])
    stored = [sorted((_stored(e) for e in [x async for x in t.list_entities()]), key=str) for t in tables]
    assert stored[0] == stored[1]
    return outcomes[0], outcomes[1]


def _row(row: str, **values: Any) -> dict[str, Any]:
    return {"PartitionKey": "p", "RowKey": row, **values}


SETUP = [("create", _row("a", n=1)), ("create", _row("b", n=2)), ("create", _row("c", n=3))]


async def test_a_committed_transaction_answers_each_operations_etag_as_the_sdk(
    twin_tables: tuple[TableClient, TableClient],
) -> None:
    def operations(prepared: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                "update",
                _row("a", n=10),
                {"etag": prepared[0]["etag"], "match_condition": MatchConditions.IfNotModified},
            ),
            ("upsert", _row("b", text="é😀"), {"mode": "replace"}),
            ("delete", _row("c"), {"etag": prepared[2]["etag"], "match_condition": MatchConditions.IfNotModified}),
            ("create", _row("d", when=dt.datetime(2026, 12, 4, tzinfo=dt.UTC), big=(2**40, EdmType.INT64))),
            ("upsert", _row("e", blob=b"\x00\x01")),
        ]

    sdk, lean = await _both(twin_tables, SETUP, operations)
    assert lean == sdk == [["etag"], ["etag"], [], ["etag"], ["etag"]]  # a delete answers no ETag


@pytest.mark.parametrize("failing", [0, 2])
async def test_a_stale_etag_on_operation_n_raises_the_sdks_412_naming_n(
    failing: int, twin_tables: tuple[TableClient, TableClient]
) -> None:
    def operations(prepared: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        etags = [r["etag"] for r in prepared]
        etags[failing] = "W/\"datetime'2000-01-01T00%3A00%3A00.0000000Z'\""
        return [
            ("update", _row(row, n=0), {"etag": etag, "match_condition": MatchConditions.IfNotModified})
            for row, etag in zip("abc", etags, strict=True)
        ]

    sdk, lean = await _both(twin_tables, SETUP, operations)
    assert lean == sdk
    assert sdk[0] is TableTransactionError
    assert sdk[1:4] == (412, "UpdateConditionNotSatisfied", failing)


@pytest.mark.parametrize(
    ("case", "operations", "status"),
    [
        ("create of an existing entity", [("upsert", _row("x")), ("create", _row("a"))], 409),
        ("update of a missing entity", [("upsert", _row("x")), ("update", _row("missing"))], 404),
        ("delete of a missing entity", [("delete", _row("missing"))], 404),
        ("too large", [("upsert", _row(f"r{i}", a="x" * 30_000, b="y" * 30_000)) for i in range(100)], 413),
    ],
)
async def test_a_refused_transaction_raises_what_the_sdk_raises(
    case: str, operations: list[tuple[Any, ...]], status: int, twin_tables: tuple[TableClient, TableClient]
) -> None:
    sdk, lean = await _both(twin_tables, SETUP, lambda _: operations)
    assert lean == sdk
    assert sdk[1] == status, case
    assert sdk[0] is (RequestTooLargeError if status == 413 else TableTransactionError)


async def test_a_missing_table_raises_what_the_sdk_raises(azurite: Azurite) -> None:
    table = TableClient.from_connection_string(azurite.connection_string, f"gone{uuid.uuid4().hex[:12]}")
    operations: list[tuple[Any, ...]] = [("upsert", _row("a")), ("delete", _row("b"))]
    async with table:
        with pytest.raises(HttpResponseError) as sdk_error:
            await table.submit_transaction(operations)
        with pytest.raises(HttpResponseError) as lean_error:
            await submit_transaction(table, operations)
    assert _error(lean_error.value) == _error(sdk_error.value)
    assert _error(sdk_error.value)[1:3] == (404, "TableNotFound")
